"""Compiled (numba) loops for disjoint linear bandits.

State per arm k: ``A_inv[k] (d, d)`` = (ridge·I + Σ x xᵀ)⁻¹ kept by Sherman–Morrison,
``b[k] (d,)`` = Σ r x and ``theta[k] = A_inv[k] @ b[k]``. All arrays are C-contiguous float64.

Scoring modes: ``MODE_UCB`` (LinUCB, Li et al. 2010): greedy on ``x·θ_k + α·sqrt(xᵀA_k⁻¹x)``
with ties split equally; ``MODE_TS`` (linear Thompson sampling, Agrawal & Goyal 2013): the
probability that arm k's posterior score draw ``N(x·θ_k, v²·xᵀA_k⁻¹x)`` is the largest,
computed by Gauss–Hermite quadrature
``P_k = Σ_q w_q Π_{j≠k} Φ((m_k + s_k z_q − m_j) / s_j)`` (normalised to sum to one).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MODE_UCB = 0
MODE_TS = 1
TIE_TOL = 1e-12


@njit(cache=True, fastmath=False)
def _mean_var(x, A_inv, theta, k):
    d = x.shape[0]
    mean = 0.0
    var = 0.0
    for i in range(d):
        mean += x[i] * theta[k, i]
        acc = 0.0
        for j in range(d):
            acc += A_inv[k, i, j] * x[j]
        var += x[i] * acc
    return mean, max(var, 0.0)


@njit(cache=True)
def _phi(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@njit(cache=True)
def _row_probs(x, A_inv, theta, mode, alpha, nodes, weights, epsilon, out):
    """Fill ``out (K,)`` with the action probabilities for one context ``x (d,)``."""
    K = theta.shape[0]
    means = np.empty(K)
    sds = np.empty(K)
    for k in range(K):
        m, v = _mean_var(x, A_inv, theta, k)
        means[k] = m
        sds[k] = math.sqrt(v)
    if mode == MODE_UCB:
        best = -np.inf
        for k in range(K):
            s = means[k] + alpha * sds[k]
            out[k] = s
            if s > best:
                best = s
        n_ties = 0
        for k in range(K):
            if out[k] >= best - TIE_TOL:
                n_ties += 1
        for k in range(K):
            out[k] = 1.0 / n_ties if out[k] >= best - TIE_TOL else 0.0
    else:
        total = 0.0
        for k in range(K):
            sk = alpha * sds[k]
            p = 0.0
            for q in range(nodes.shape[0]):
                val = means[k] + sk * nodes[q]
                prod = weights[q]
                for j in range(K):
                    if j != k:
                        sj = alpha * sds[j]
                        if sj > 0.0:
                            prod *= _phi((val - means[j]) / sj)
                        elif val < means[j]:
                            prod = 0.0
                        elif val == means[j]:
                            prod *= 0.5
                p += prod
            out[k] = p
            total += p
        if total > 0.0:
            for k in range(K):
                out[k] /= total
        else:
            for k in range(K):
                out[k] = 1.0 / K
    if epsilon > 0.0:
        for k in range(K):
            out[k] = (1.0 - epsilon) * out[k] + epsilon / K


@njit(cache=True)
def batch_probs(X, A_inv, theta, mode, alpha, nodes, weights, epsilon):
    """Probabilities ``(n, K)`` for contexts ``X (n, d)`` under the current state."""
    n = X.shape[0]
    K = theta.shape[0]
    out = np.empty((n, K))
    for t in range(n):
        _row_probs(X[t], A_inv, theta, mode, alpha, nodes, weights, epsilon, out[t])
    return out


@njit(cache=True)
def _sm_update_one(x, a, r, A_inv, b, theta):
    d = x.shape[0]
    Ax = np.empty(d)
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += A_inv[a, i, j] * x[j]
        Ax[i] = acc
    denom = 1.0
    for i in range(d):
        denom += x[i] * Ax[i]
    for i in range(d):
        for j in range(d):
            A_inv[a, i, j] -= Ax[i] * Ax[j] / denom
    for i in range(d):
        b[a, i] += r * x[i]
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += A_inv[a, i, j] * b[a, j]
        theta[a, i] = acc


@njit(cache=True)
def sm_update(X, actions, rewards, A_inv, b, theta):
    """Sequential, exact rank-one updates for rows ``X (n, d)`` in order (in place)."""
    for t in range(X.shape[0]):
        _sm_update_one(X[t], actions[t], rewards[t], A_inv, b, theta)


@njit(cache=True)
def _draw(probs, u):
    """Inverse-CDF draw identical to :func:`bandits.policies.base.sample_from`."""
    K = probs.shape[0]
    cdf = 0.0
    a = 0
    for k in range(K - 1):
        cdf += probs[k]
        if u >= cdf:
            a = k + 1
    if probs[a] <= 0.0:
        best = 0
        for k in range(K):
            if probs[k] > probs[best]:
                best = k
        a = best
    return a


@njit(cache=True)
def play(
    X, potential, uniforms, A_inv, b, theta, mode, alpha, nodes, weights, epsilon, update_every
):
    """Act on rounds ``X (n, d)`` in order; learn from the chosen action's reward every
    ``update_every`` rounds (1 = exact per-round updates).

    Returns ``actions (n,)``, ``propensities (n,)`` and ``probs (n, K)``.
    """
    n = X.shape[0]
    K = theta.shape[0]
    actions = np.empty(n, np.int64)
    props = np.empty(n)
    probs = np.empty((n, K))
    start = 0
    while start < n:
        stop = min(start + update_every, n)
        for t in range(start, stop):
            _row_probs(X[t], A_inv, theta, mode, alpha, nodes, weights, epsilon, probs[t])
            a = _draw(probs[t], uniforms[t])
            actions[t] = a
            props[t] = probs[t, a]
        for t in range(start, stop):
            _sm_update_one(X[t], actions[t], potential[t, actions[t]], A_inv, b, theta)
        start = stop
    return actions, props, probs


def gauss_hermite_normal(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` and weights ``w`` with ``Σ w f(z) ≈ E[f(Z)]`` for ``Z ~ N(0, 1)``."""
    t, w = np.polynomial.hermite.hermgauss(n_nodes)
    return np.sqrt(2.0) * t, w / np.sqrt(np.pi)
