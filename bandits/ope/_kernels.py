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
    rows with ``mu[i, k] > 0`` (K,), in one pass over both (n, K) matrices."""
    n, k = target_probs.shape
    u = np.empty(n)
    covered = np.zeros(k, dtype=np.int64)
    for i in range(n):
        s = 0.0
        for j in range(k):
            m = logging_probs[i, j]
            if m < floor:
                s += target_probs[i, j]
            if m > 0.0:
                covered[j] += 1
        u[i] = s
    return u, covered
