"""The working memory layout of the disjoint linear bandits' state, and the products on it.

State per arm k: ``A_inv[k] (d, d)`` = (ridge·I + Σ x xᵀ)⁻¹, ``b[k] (d,)`` = Σ r x and
``theta[k] = A_inv[k] @ b[k]`` (C-contiguous float64). The loops work on copies in the layout
of :func:`to_work`, where ``A_k⁻¹ x`` for every arm is one long vectorised loop.

The inner loops run over independent accumulators, so LLVM vectorises them without
``fastmath``: the results do not depend on how a function was inlined, and a compiled loop is
bit-for-bit the step-by-step reference (scoring a batch, then updating); no arrays are
allocated per round.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["ax_all", "ax_one", "from_work", "score_arms", "to_work"]


@njit(cache=True)
def to_work(A_inv, b):
    """Working copies: ``V (d, K·d)`` with ``V[j, k·d + i] = A_inv[k, j, i]`` (row j holds
    column j of every arm's matrix, arm after arm) and ``bT (d, K)`` with
    ``bT[i, k] = b[k, i]``. For a fixed j the K·d entries are contiguous, so ``A_k⁻¹ x`` for
    every arm is one long vectorised loop; an arm's d entries in a row are contiguous too,
    so its Sherman–Morrison update is d contiguous row updates. Every entry and every per-arm
    sum sees the same operations in the same order in any layout, so the layout changes
    speed only, never a result."""
    K, d, _ = A_inv.shape
    V = np.empty((d, d * K))
    for k in range(K):
        for j in range(d):
            for i in range(d):
                V[j, k * d + i] = A_inv[k, j, i]
    bT = np.empty((d, K))
    for k in range(K):
        for i in range(d):
            bT[i, k] = b[k, i]
    return V, bT


@njit(cache=True)
def from_work(V, bT, A_inv, b, theta):
    """Write the working copies back into the state and refresh ``theta = A_inv b``."""
    K, d, _ = A_inv.shape
    for k in range(K):
        for j in range(d):
            for i in range(d):
                A_inv[k, j, i] = V[j, k * d + i]
    for k in range(K):
        for i in range(d):
            b[k, i] = bT[i, k]
    for k in range(K):
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc += A_inv[k, i, j] * b[k, j]
            theta[k, i] = acc


@njit(cache=True)
def ax_all(x, V, Y):
    """``Y[k·d + i] = (A_k⁻¹ x)_i`` for every arm (``Y (K·d,)``).

    ``A_k⁻¹`` is symmetric, so ``A_k⁻¹ x = Σ_j x_j A_k⁻¹[j, :]``: columns are added two at a
    time over all d·K entries. Every entry gets the same sequence of operations as in
    :func:`ax_one`.
    """
    d = x.shape[0]
    R = V.shape[1]
    x0 = x[0]
    for r in range(R):
        Y[r] = V[0, r] * x0
    j = 1
    while j + 2 <= d:
        xj = x[j]
        xj1 = x[j + 1]
        for r in range(R):
            Y[r] += V[j, r] * xj + V[j + 1, r] * xj1
        j += 2
    if j < d:
        xj = x[j]
        for r in range(R):
            Y[r] += V[j, r] * xj


@njit(cache=True)
def ax_one(x, V, a, y):
    """``y = A_a⁻¹ x`` for one arm, bit-for-bit the entries ``Y[a·d + i]`` of
    :func:`ax_all`; returns ``xᵀ y`` summed as in :func:`score_arms`."""
    d = x.shape[0]
    x0 = x[0]
    for i in range(d):
        y[i] = V[0, a * d + i] * x0
    j = 1
    while j + 2 <= d:
        xj = x[j]
        xj1 = x[j + 1]
        for i in range(d):
            y[i] += V[j, a * d + i] * xj + V[j + 1, a * d + i] * xj1
        j += 2
    if j < d:
        xj = x[j]
        for i in range(d):
            y[i] += V[j, a * d + i] * xj
    quad = x0 * y[0]
    for i in range(1, d):
        quad += x[i] * y[i]
    return quad


@njit(cache=True)
def score_arms(x, V, bT, width, Y, means, sds, quads):
    """Posterior means ``m_k = x·θ_k``, widths ``sds = width·sqrt(xᵀA_k⁻¹x)`` and the raw
    quadratic forms ``quads`` for every arm (all ``(K,)``); ``Y`` keeps ``A_k⁻¹ x`` for the
    update.

    ``x·θ_k = x·(A_k⁻¹ b_k) = (A_k⁻¹ x)·b_k``, so θ is not needed while acting.
    """
    d = x.shape[0]
    K = bT.shape[1]
    ax_all(x, V, Y)
    x0 = x[0]
    for k in range(K):
        o = k * d
        y = Y[o]
        q = x0 * y
        m = bT[0, k] * y
        for i in range(1, d):
            y = Y[o + i]
            q += x[i] * y
            m += bT[i, k] * y
        quads[k] = q
        means[k] = m
    for k in range(K):
        q = quads[k]
        sds[k] = width * math.sqrt(q if q > 0.0 else 0.0)
