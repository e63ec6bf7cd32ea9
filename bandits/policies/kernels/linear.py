"""The loops of the disjoint linear bandits, one compiled function per scoring mode.

Scoring modes: **UCB** (LinUCB, Li et al. 2010): greedy on ``x·θ_k + α·sqrt(xᵀA_k⁻¹x)``
with ties split equally (:func:`ucb_probs`); **TS** (linear Thompson sampling, Agrawal &
Goyal 2013): the probability that arm k's posterior score draw ``N(x·θ_k, v²·xᵀA_k⁻¹x)`` is
the largest (:func:`bandits.policies.kernels.linear_ts.ts_probs`).

For each mode: ``batch_probs_<mode>`` (probabilities under the current state),
``play_<mode>`` (the online loop) and ``replay_<mode>`` (rejection-sampling replay through a
log). Each is written once, as an inlined generic loop (``_batch_probs``, ``_play``,
``_replay``) that the per-mode functions call with their mode as a compile-time constant, so
every entry point is compiled (and cached) for its mode alone. Draws, ε-mixing and
``update_every`` blocks come from :mod:`bandits.policies.sampling`; the state's layout from
:mod:`.linear_layout`, its updates from :mod:`.sherman_morrison`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bandits.policies.kernels.linear_layout import (
    ax_one,
    from_work,
    score_arms,
    to_work,
)
from bandits.policies.kernels.linear_ts import (
    BOUND_SLACK,
    ts_probs,
    ts_win_bounds,
    weight_below,
)
from bandits.policies.kernels.sherman_morrison import sm_apply
from bandits.policies.sampling import TIE_TOL, block_stop, draw, mix_one, mix_row

__all__ = [
    "batch_probs_ts",
    "batch_probs_ucb",
    "play_ts",
    "play_ucb",
    "replay_ts",
    "replay_ucb",
    "ucb_probs",
]

MODE_UCB = 0
MODE_TS = 1


@njit(cache=True)
def ucb_probs(means, sds, out):
    """Greedy on ``means + sds`` with ties (within ``TIE_TOL``) split equally (branch-free);
    all ``(K,)``."""
    K = means.shape[0]
    best = -np.inf
    for k in range(K):
        s = means[k] + sds[k]
        out[k] = s
        best = s if s > best else best
    thr = best - TIE_TOL
    n_ties = 0
    for k in range(K):
        n_ties += 1 if out[k] >= thr else 0
    share = 1.0 / n_ties
    for k in range(K):
        out[k] = share if out[k] >= thr else 0.0


@njit(cache=True, inline="always")
def _probs(mode, means, sds, nodes, weights, wbelow, members, ws, out):
    if mode == MODE_UCB:
        ucb_probs(means, sds, out)
    else:
        ts_probs(means, sds, nodes, weights, wbelow, members, ws, out)


@njit(cache=True, inline="always")
def _batch_probs(mode, X, A_inv, b, width, nodes, weights, eps):
    n, d = X.shape
    K = b.shape[0]
    V, bT = to_work(A_inv, b)
    out = np.empty((n, K))
    Y = np.empty(K * d)
    means = np.empty(K)
    sds = np.empty(K)
    quads = np.empty(K)
    members = np.empty(K, np.int64)
    ws = np.empty((6, K))
    wbelow = weight_below(weights)
    for t in range(n):
        score_arms(X[t], V, bT, width, Y, means, sds, quads)
        _probs(mode, means, sds, nodes, weights, wbelow, members, ws, out[t])
        mix_row(out[t], eps)
    return out


@njit(cache=True, inline="always")
def _play(mode, X, potential, uniforms, A_inv, b, theta, width, nodes, weights, eps, step):
    n, d = X.shape
    K = b.shape[0]
    V, bT = to_work(A_inv, b)
    actions = np.empty(n, np.int64)
    props = np.empty(n)
    probs = np.empty((n, K))
    Y = np.empty(K * d)
    means = np.empty(K)
    sds = np.empty(K)
    quads = np.empty(K)
    members = np.empty(K, np.int64)
    ws = np.empty((6, K))
    wbelow = weight_below(weights)
    y = np.empty(d)
    if step == 1:
        for t in range(n):
            x = X[t]
            score_arms(x, V, bT, width, Y, means, sds, quads)
            _probs(mode, means, sds, nodes, weights, wbelow, members, ws, probs[t])
            mix_row(probs[t], eps)
            a = draw(probs[t], uniforms[t])
            actions[t] = a
            props[t] = probs[t, a]
            # A_a⁻¹ x and xᵀA_a⁻¹x from scoring are exactly what ax_one would compute
            for i in range(d):
                y[i] = Y[a * d + i]
            sm_apply(x, a, potential[t, a], y, quads[a], V, bT)
    else:
        start = 0
        while start < n:
            stop = block_stop(start, step, n)
            for t in range(start, stop):
                score_arms(X[t], V, bT, width, Y, means, sds, quads)
                _probs(mode, means, sds, nodes, weights, wbelow, members, ws, probs[t])
                mix_row(probs[t], eps)
                a = draw(probs[t], uniforms[t])
                actions[t] = a
                props[t] = probs[t, a]
            for t in range(start, stop):
                a = actions[t]
                quad = ax_one(X[t], V, a, y)
                sm_apply(X[t], a, potential[t, a], y, quad, V, bT)
            start = stop
    from_work(V, bT, A_inv, b, theta)
    return actions, props, probs


@njit(cache=True, inline="always")
def _replay(
    mode, X, logged, rewards, mu, uniforms, c, A_inv, b, theta, width, nodes, weights, eps, exact
):
    n, d = X.shape
    K = b.shape[0]
    V, bT = to_work(A_inv, b)
    accepted = np.zeros(n, np.bool_)
    pi_logged = np.empty(n)
    out = np.empty(K)
    Y = np.empty(K * d)
    means = np.empty(K)
    sds = np.empty(K)
    quads = np.empty(K)
    members = np.empty(K, np.int64)
    ws = np.empty((6, K))
    wbelow = weight_below(weights)
    y = np.empty(d)
    use_bounds = mode == MODE_TS and not exact
    for t in range(n):
        x = X[t]
        score_arms(x, V, bT, width, Y, means, sds, quads)
        a = logged[t]
        decided = False
        if use_bounds:
            lower, upper = ts_win_bounds(means, sds, a)
            upper = min(upper + BOUND_SLACK, 1.0)
            lower = max(lower - BOUND_SLACK, 0.0)
            if uniforms[t] >= mix_one(upper, eps, K) * c / mu[t]:
                pi_logged[t] = np.nan
                continue  # rejected: the computed π_t(a_t) could not exceed the bound
            if uniforms[t] < mix_one(lower, eps, K) * c / mu[t]:
                pi_logged[t] = np.nan
                decided = True  # accepted: the computed π_t(a_t) is at least the bound
        if not decided:
            _probs(mode, means, sds, nodes, weights, wbelow, members, ws, out)
            mix_row(out, eps)
            pa = out[a]
            pi_logged[t] = pa
            decided = uniforms[t] < pa * c / mu[t]
        if decided:
            accepted[t] = True
            for i in range(d):
                y[i] = Y[a * d + i]
            sm_apply(x, a, rewards[t], y, quads[a], V, bT)
    from_work(V, bT, A_inv, b, theta)
    return accepted, pi_logged


@njit(cache=True)
def batch_probs_ucb(X, A_inv, b, alpha, epsilon):
    """LinUCB probabilities ``(n, K)`` for contexts ``X (n, d)`` under the current state,
    ε-mixed (``epsilon = 0``: none)."""
    return _batch_probs(MODE_UCB, X, A_inv, b, alpha, np.ones(1), np.ones(1), epsilon)


@njit(cache=True)
def batch_probs_ts(X, A_inv, b, v, nodes, weights, epsilon):
    """LinTS probabilities ``(n, K)``, ε-mixed; ``nodes, weights`` Gauss–Hermite
    (:func:`~.linear_ts.gauss_hermite_normal`, used only when some widths are 0)."""
    return _batch_probs(MODE_TS, X, A_inv, b, v, nodes, weights, epsilon)


@njit(cache=True)
def play_ucb(X, potential, uniforms, A_inv, b, theta, alpha, epsilon, update_every):
    """LinUCB online: act on rounds ``X (n, d)`` in order, drawing with ``uniforms (n,)``
    from the ε-mixed probabilities, and learn the chosen action's reward from
    ``potential (n, K)`` every ``update_every`` rounds (1 = exact per-round updates).

    Returns ``actions (n,)``, ``propensities (n,)`` and ``probs (n, K)``; the state ends
    bit-for-bit where :func:`batch_probs_ucb` on each block followed by
    :func:`~.sherman_morrison.sm_update` would leave it, with the same decisions."""
    return _play(
        MODE_UCB,
        X,
        potential,
        uniforms,
        A_inv,
        b,
        theta,
        alpha,
        np.ones(1),
        np.ones(1),
        epsilon,
        update_every,
    )


@njit(cache=True)
def play_ts(X, potential, uniforms, A_inv, b, theta, v, nodes, weights, epsilon, update_every):
    """LinTS online, as :func:`play_ucb` with Thompson-sampling probabilities."""
    return _play(
        MODE_TS, X, potential, uniforms, A_inv, b, theta, v, nodes, weights, epsilon, update_every
    )


@njit(cache=True)
def replay_ucb(X, logged, rewards, mu, uniforms, c, A_inv, b, theta, alpha, epsilon):
    """LinUCB replay through a log by rejection sampling (Li et al. 2011, generalised):
    event ``t`` is accepted when ``uniforms[t] < π_t(a_t) · c / μ_t`` with ``π_t`` the
    current ε-mixed probabilities, and an accepted event updates the state with the logged
    reward at once.

    Returns ``accepted (n,) bool`` and ``pi_logged (n,)`` (= ``π_t(a_t)``, the policy's
    probability of the logged action when the event was visited): the acceptances and
    state of the reference loop :meth:`bandits.policies.base.Policy.replay` with
    ``reference=True`` given the same uniforms."""
    return _replay(
        MODE_UCB,
        X,
        logged,
        rewards,
        mu,
        uniforms,
        c,
        A_inv,
        b,
        theta,
        alpha,
        np.ones(1),
        np.ones(1),
        epsilon,
        True,
    )


@njit(cache=True)
def replay_ts(X, logged, rewards, mu, uniforms, c, A_inv, b, theta, v, nodes, weights, eps, exact):
    """LinTS replay, as :func:`replay_ucb`. With ``exact`` false, an event whose acceptance
    is already decided by :func:`~.linear_ts.ts_win_bounds` (plus
    :data:`~.linear_ts.BOUND_SLACK`) skips computing ``π_t(a_t)`` (``pi_logged`` is NaN
    there): the acceptances and the state are unchanged, and most events of a long,
    uncertain start are rejected this way without integrating."""
    return _replay(
        MODE_TS, X, logged, rewards, mu, uniforms, c, A_inv, b, theta, v, nodes, weights, eps, exact
    )
