"""Compiled loops of the (grouped) context-free bandits.

State: ``counts (G, K)`` and ``sums (G, K)`` of rewards scaled to [0, 1], one row per group
(a single group for context-free policies, one per segment for segment-level ones). Every
probability here is a deterministic function of the state (no random draws), so the loops
compute a group's probabilities once and reuse them until that group is updated. Modes:
ε-greedy (``MODE_GREEDY``; ε applied as mixing), UCB1 (``MODE_UCB1``) and Beta Thompson
sampling (``MODE_BETA_TS``, :func:`bandits.policies.kernels.beta.beta_win_probs`). Draws,
ε-mixing and ``update_every`` blocks come from :mod:`bandits.policies.sampling`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from bandits.policies.kernels.beta import beta_win_probs
from bandits.policies.sampling import TIE_TOL, block_stop, draw, mix_row

__all__ = [
    "MODE_BETA_TS",
    "MODE_GREEDY",
    "MODE_UCB1",
    "batch_probs",
    "group_probs",
    "play",
    "replay",
]

MODE_GREEDY = 0  # epsilon-greedy (epsilon applied as mixing)
MODE_UCB1 = 1
MODE_BETA_TS = 2


@njit(cache=True)
def group_probs(counts, sums, g, mode, c, prior_a, prior_b, epsilon, out):
    """Fill ``out (K,)`` with the action probabilities of group ``g`` (a deterministic
    function of ``counts[g], sums[g]``)."""
    K = counts.shape[1]
    if mode == MODE_BETA_TS:
        alpha = np.empty(K)
        beta = np.empty(K)
        for k in range(K):
            alpha[k] = prior_a + sums[g, k]
            beta[k] = prior_b + max(counts[g, k] - sums[g, k], 0.0)
        beta_win_probs(alpha, beta, out)
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
    mix_row(out, epsilon)


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
    epsilon,
    reward_scale,
    update_every,
):
    """Act on ``n`` rounds in order (group index per round ``groups (n,)``), drawing each
    action from the current probabilities with ``uniforms (n,)`` (inverse CDF) and updating
    the statistics every ``update_every`` rounds. Returns actions ``(n,)``, propensities
    ``(n,)`` (= ``probs[t, actions[t]]``) and probs ``(n, K)``."""
    n = groups.shape[0]
    G, K = counts.shape
    actions = np.empty(n, np.int64)
    props = np.empty(n)
    probs = np.empty((n, K))
    cache = np.empty((G, K))
    stale = np.ones(G, np.bool_)
    start = 0
    while start < n:
        stop = block_stop(start, update_every, n)
        for t in range(start, stop):
            g = groups[t]
            if stale[g]:
                group_probs(counts, sums, g, mode, c, prior_a, prior_b, epsilon, cache[g])
                stale[g] = False
            probs[t] = cache[g]
            a = draw(probs[t], uniforms[t])
            actions[t] = a
            props[t] = probs[t, a]
        for t in range(start, stop):
            g = groups[t]
            r = potential[t, actions[t]] / reward_scale
            r = min(max(r, 0.0), 1.0)
            counts[g, actions[t]] += 1.0
            sums[g, actions[t]] += r
            stale[g] = True
        start = stop
    return actions, props, probs


@njit(cache=True)
def batch_probs(groups, counts, sums, mode, c, prior_a, prior_b, epsilon):
    """Probabilities ``(n, K)`` under the current state, computed once per distinct group
    present in ``groups (n,)``."""
    n = groups.shape[0]
    G, K = counts.shape
    cache = np.empty((G, K))
    done = np.zeros(G, np.bool_)
    out = np.empty((n, K))
    for t in range(n):
        g = groups[t]
        if not done[g]:
            group_probs(counts, sums, g, mode, c, prior_a, prior_b, epsilon, cache[g])
            done[g] = True
        out[t] = cache[g]
    return out


@njit(cache=True)
def replay(
    groups,
    logged,
    rewards,
    propensities,
    uniforms,
    c_accept,
    counts,
    sums,
    mode,
    c,
    prior_a,
    prior_b,
    epsilon,
    reward_scale,
):
    """Rejection-sampling replay through a log (Li et al. 2011, generalised): event ``t``
    (group ``groups[t]``, logged action ``logged[t]`` with propensity ``propensities[t]``) is
    accepted when ``uniforms[t] < π_t(a_t) · c_accept / μ_t`` with ``π_t`` the current
    probabilities (epsilon mixed in), and an accepted event updates the statistics with
    its logged reward at once. The same acceptances and state as
    :meth:`bandits.policies.base.Policy.replay`'s reference loop with the same uniforms.

    Returns ``accepted (n,) bool`` and ``pi_logged (n,)`` (``π_t(a_t)`` when visited)."""
    n = groups.shape[0]
    G, K = counts.shape
    accepted = np.zeros(n, np.bool_)
    pi_logged = np.empty(n)
    cache = np.empty((G, K))
    stale = np.ones(G, np.bool_)
    for t in range(n):
        g = groups[t]
        if stale[g]:
            group_probs(counts, sums, g, mode, c, prior_a, prior_b, epsilon, cache[g])
            stale[g] = False
        a = logged[t]
        pa = cache[g, a]
        pi_logged[t] = pa
        if uniforms[t] < pa * c_accept / propensities[t]:
            accepted[t] = True
            r = min(max(rewards[t] / reward_scale, 0.0), 1.0)
            counts[g, a] += 1.0
            sums[g, a] += r
            stale[g] = True
    return accepted, pi_logged
