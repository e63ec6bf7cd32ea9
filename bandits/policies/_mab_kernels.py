"""Compiled (numba) online loops for (grouped) context-free bandits.

State: ``counts (G, K)`` and ``sums (G, K)`` of rewards scaled to [0, 1], one row per group
(a single group for context-free policies, one per segment for segment-level ones).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from bandits.policies._linear_kernels import TIE_TOL, _draw

MODE_GREEDY = 0  # epsilon-greedy (epsilon applied as mixing)
MODE_UCB1 = 1
MODE_BETA_TS = 2


@njit(cache=True)
def group_probs(counts, sums, g, mode, c, prior_a, prior_b, n_draws, epsilon, rng, out):
    """Fill ``out (K,)`` with the action probabilities of group ``g``."""
    K = counts.shape[1]
    if mode == MODE_BETA_TS:
        for k in range(K):
            out[k] = 0.0
        for _ in range(n_draws):
            best = 0
            best_v = -1.0
            for k in range(K):
                v = rng.beta(prior_a + sums[g, k], prior_b + counts[g, k] - sums[g, k])
                if v > best_v:
                    best_v = v
                    best = k
            out[best] += 1.0
        for k in range(K):
            out[k] /= n_draws
    else:
        total = 0.0
        for k in range(K):
            total += counts[g, k]
        t = max(total, 1.0)
        best = -np.inf
        for k in range(K):
            if counts[g, k] == 0:
                s = np.inf
            else:
                s = sums[g, k] / counts[g, k]
                if mode == MODE_UCB1:
                    s += c * math.sqrt(2.0 * math.log(t) / counts[g, k])
            out[k] = s
            if s > best:
                best = s
        n_ties = 0
        for k in range(K):
            if out[k] >= best - TIE_TOL or (best == np.inf and out[k] == np.inf):
                n_ties += 1
        for k in range(K):
            hit = out[k] >= best - TIE_TOL or (best == np.inf and out[k] == np.inf)
            out[k] = 1.0 / n_ties if hit else 0.0
    if epsilon > 0.0:
        for k in range(K):
            out[k] = (1.0 - epsilon) * out[k] + epsilon / K


@njit(cache=True)
def play(
    groups,
    potential,
    uniforms,
    counts,
    sums,
    mode,
    c,
    prior_a,
    prior_b,
    n_draws,
    epsilon,
    reward_scale,
    update_every,
    rng,
):
    """Act on ``n`` rounds in order (group index per round ``groups (n,)``), updating the
    statistics every ``update_every`` rounds. Returns actions, propensities, probs."""
    n = groups.shape[0]
    K = counts.shape[1]
    actions = np.empty(n, np.int64)
    props = np.empty(n)
    probs = np.empty((n, K))
    start = 0
    while start < n:
        stop = min(start + update_every, n)
        for t in range(start, stop):
            group_probs(
                counts, sums, groups[t], mode, c, prior_a, prior_b, n_draws, epsilon, rng, probs[t]
            )
            a = _draw(probs[t], uniforms[t])
            actions[t] = a
            props[t] = probs[t, a]
        for t in range(start, stop):
            r = potential[t, actions[t]] / reward_scale
            r = min(max(r, 0.0), 1.0)
            counts[groups[t], actions[t]] += 1.0
            sums[groups[t], actions[t]] += r
        start = stop
    return actions, props, probs


@njit(cache=True)
def batch_probs(groups, counts, sums, mode, c, prior_a, prior_b, n_draws, epsilon, rng):
    """Probabilities ``(n, K)`` under the current state; computed once per distinct group
    present (Monte-Carlo policies draw once per group, so equal groups share probabilities)."""
    n = groups.shape[0]
    G, K = counts.shape
    cache = np.empty((G, K))
    done = np.zeros(G, np.bool_)
    out = np.empty((n, K))
    for t in range(n):
        g = groups[t]
        if not done[g]:
            group_probs(counts, sums, g, mode, c, prior_a, prior_b, n_draws, epsilon, rng, cache[g])
            done[g] = True
        out[t] = cache[g]
    return out
