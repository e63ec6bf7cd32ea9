"""Compiled (numba) single-pass helpers for the hot per-round quantities of the estimators.

Each replaces a chain of numpy calls that would allocate ``(n,)`` or ``(n, K)`` temporaries
(flat index arrays, boolean masks) with one pass over the data. They define the arithmetic
used by *every* path (single estimator, :func:`bandits.ope.estimate_many`, partitions), so
results do not depend on which path computed them.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def probability_rows_ok(x, lo, hi):
    """``True`` iff every entry of ``x (n, K)`` is ``>= 0`` (NaN fails) and every row sum
    (summed left to right) lies in ``[lo, hi]``. One pass, no temporaries."""
    n, k = x.shape
    for i in range(n):
        s = 0.0
        for j in range(k):
            v = x[i, j]
            if not v >= 0.0:
                return False
            s += v
        if not (s >= lo and s <= hi):
            return False
    return True


@njit(cache=True, nogil=True)
def take_logged(matrix, action):
    """``matrix[i, action[i]]`` for every row, shape ``(n,)``."""
    n = action.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = matrix[i, action[i]]
    return out


@njit(cache=True, nogil=True)
def row_dot(p, q):
    """``sum_k p[i, k] q[i, k]`` for every row (k summed left to right), shape ``(n,)``."""
    n, k = p.shape
    out = np.empty(n)
    for i in range(n):
        s = 0.0
        for j in range(k):
            s += p[i, j] * q[i, j]
        out[i] = s
    return out


@njit(cache=True, nogil=True)
def importance_weights(target_probs, action, propensity):
    """``w_i = pi[i, a_i] / p_i`` in one pass (no gathered temporary), shape ``(n,)``."""
    n = action.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = target_probs[i, action[i]] / propensity[i]
    return out


@njit(cache=True, nogil=True)
def residuals(reward, reward_hat, action):
    """``r_i - q[i, a_i]`` in one pass, shape ``(n,)``."""
    n = action.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = reward[i] - reward_hat[i, action[i]]
    return out


@njit(cache=True, nogil=True)
def weighted_residuals(weights, reward, reward_hat, action):
    """``w_i (r_i - q[i, a_i])`` in one pass, shape ``(n,)``."""
    n = action.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = weights[i] * (reward[i] - reward_hat[i, action[i]])
    return out


@njit(cache=True, nogil=True)
def doubly_robust_terms(dm, weights, reward, reward_hat, action):
    """``dm_i + w_i (r_i - q[i, a_i])`` in one pass (the same three roundings as the numpy
    expression ``dm + w * (r - q_a)``), shape ``(n,)``."""
    n = action.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = dm[i] + weights[i] * (reward[i] - reward_hat[i, action[i]])
    return out


@njit(cache=True, nogil=True)
def unsupported_mass_rows(target_probs, logging_probs, floor):
    """Per row ``u_i = sum_k pi[i, k] 1[mu[i, k] < floor]`` (n,) and per action the number of
    rows where the logger can take it, ``mu[i, k] >= floor / 1000`` (K,) — an estimated
    logging policy never gives an exact 0, so a probability a thousand times below the
    support floor counts as none — in one pass over both (n, K) matrices."""
    n, k = target_probs.shape
    u = np.empty(n)
    covered = np.zeros(k, dtype=np.int64)
    can_take = floor * 1e-3
    for i in range(n):
        s = 0.0
        for j in range(k):
            m = logging_probs[i, j]
            if m < floor:
                s += target_probs[i, j]
            if m >= can_take:
                covered[j] += 1
        u[i] = s
    return u, covered


@njit(cache=True, nogil=True)
def support_sums(reward, action, propensity, pi_logged, u_rows, floor, success_base, k):
    """One target's support sums over a partition (see :class:`bandits.ope.support.
    SupportStats`), in two passes over the rows and no (n,) temporaries.

    ``u_rows`` (n,) is the exact unsupported mass per row, or an empty array for the
    importance-sampling identity ``u_i = 1 - w_s,i``. Returns ``means (2,)`` and centred
    ``comoments (2, 2)`` of ``(S_i = w_s,i r_i, u_i)``; ``weight_sums (4,)`` = ``(Σ w_s,
    Σ w_s², Σ w_s r, Σ w_s² r)``; ``visible`` = Σ of the model-free unsupported mass per row
    (deterministic rows and logged actions below the floor); ``inv_p (K,)``, ``inv_p2 (K,)``;
    ``counts (K,)``; matched rows and successes; reward min / max; the largest raw weight.
    """
    n = reward.shape[0]
    exact = u_rows.shape[0] == n
    s_sum = 0.0
    u_sum = 0.0
    ws = np.zeros(4)
    visible = 0.0
    inv_p = np.zeros(k)
    inv_p2 = np.zeros(k)
    counts = np.zeros(k, dtype=np.int64)
    matched = 0
    successes = 0.0
    r_min = np.inf
    r_max = -np.inf
    w_max = 0.0
    for i in range(n):
        p = propensity[i]
        t = pi_logged[i]
        r = reward[i]
        w = t / p
        if w > w_max:
            w_max = w
        w_s = w if p >= floor else 0.0
        s = w_s * r
        u = u_rows[i] if exact else 1.0 - w_s
        s_sum += s
        u_sum += u
        ws[0] += w_s
        ws[1] += w_s * w_s
        ws[2] += s
        ws[3] += w_s * s
        if not exact:
            if p >= 1.0 - floor:
                visible += 1.0 - t
            if p < floor:
                visible += t
        a = action[i]
        ip = 1.0 / p
        inv_p[a] += ip
        inv_p2[a] += ip * ip
        counts[a] += 1
        if t > 0.0:
            matched += 1
            successes += r - success_base
        if r < r_min:
            r_min = r
        if r > r_max:
            r_max = r
    means = np.array([s_sum / n, u_sum / n])
    co = np.zeros((2, 2))
    for i in range(n):
        p = propensity[i]
        w_s = pi_logged[i] / p if p >= floor else 0.0
        ds = w_s * reward[i] - means[0]
        du = (u_rows[i] if exact else 1.0 - w_s) - means[1]
        co[0, 0] += ds * ds
        co[0, 1] += ds * du
        co[1, 1] += du * du
    co[1, 0] = co[0, 1]
    return (means, co, ws, visible, inv_p, inv_p2, counts, matched, successes, r_min, r_max, w_max)
