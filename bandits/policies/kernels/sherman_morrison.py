"""Exact rank-one (Sherman–Morrison) updates of the disjoint linear bandits' state.

``A_a⁻¹ ← A_a⁻¹ − u uᵀ`` with ``u = A_a⁻¹ x / sqrt(1 + xᵀ A_a⁻¹ x)`` keeps ``A_a⁻¹`` exactly
symmetric (``u_i u_j == u_j u_i`` in floating point); ``b_a ← b_a + r x``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from bandits.policies.kernels.linear_layout import ax_one, from_work, to_work

__all__ = ["sm_apply", "sm_update"]


@njit(cache=True)
def sm_apply(x, a, r, y, quad, V, bT):
    """Update arm ``a`` in the working layout (:func:`~.linear_layout.to_work`) given
    ``y = A_a⁻¹ x`` and ``quad = xᵀ y``; ``y`` is overwritten with ``u``."""
    d = x.shape[0]
    scale = 1.0 / math.sqrt(1.0 + quad)
    for i in range(d):
        y[i] *= scale
    for j in range(d):
        uj = y[j]
        for i in range(d):
            V[j, a * d + i] -= uj * y[i]
    for i in range(d):
        bT[i, a] += r * x[i]


@njit(cache=True)
def sm_update(X, actions, rewards, A_inv, b, theta):
    """Sequential, exact rank-one updates for rows ``X (n, d)`` with ``actions (n,)`` and
    ``rewards (n,)``, in order, in place (``theta`` refreshed)."""
    n, d = X.shape
    V, bT = to_work(A_inv, b)
    y = np.empty(d)
    for t in range(n):
        a = actions[t]
        quad = ax_one(X[t], V, a, y)
        sm_apply(X[t], a, rewards[t], y, quad, V, bT)
    from_work(V, bT, A_inv, b, theta)
