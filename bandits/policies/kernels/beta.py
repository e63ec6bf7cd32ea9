"""Beta Thompson sampling's win probabilities by Gauss–Legendre quadrature, compiled.

Arm k's posterior is ``Beta(α_k, β_k)``, and its probability of having the largest posterior
draw is the one-dimensional integral

    p_k = ∫₀¹ f_k(x) Π_{j≠k} F_j(x) dx        (f_j, F_j: the Beta density and CDF of arm j)

computed by composite Gauss–Legendre quadrature on panels adapted to every arm's posterior
(see :func:`beta_win_probs` for the grid, the CDFs and the error terms).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["GL_NODES", "PROB_FLOOR", "beta_win_probs", "gauss_legendre_tables"]

#: Gauss–Legendre nodes per panel.
GL_NODES = 12
#: Panel width at an arm's mean, in posterior standard deviations of that arm; it grows by
#: ``PANEL_GROWTH`` sds per sd of distance from the mean (the density is smooth on a wider
#: scale in its tails). A panel's width is the smallest over the arms at its upper end.
PANEL_CORE = 2.0
PANEL_GROWTH = 0.25
#: The integration range leaves out at most ``TAIL_MASS`` of each arm's posterior on either
#: side: Beta(α, β) is sub-Gaussian with variance proxy ``1 / (4 (α + β + 1))`` (Marchal &
#: Arbel 2017), so ``P(|X − mean| ≥ TAIL_Z / (2 sqrt(α + β + 1))) ≤ 2 exp(−TAIL_Z² / 2)``.
TAIL_MASS = 1e-16
TAIL_Z = math.sqrt(2.0 * math.log(1.0 / TAIL_MASS))
#: The smallest normal float64. A win probability that underflows (its true value is then
#: below ~1e-300) is stored as this, so no arm is ever exactly 0.
PROB_FLOOR = float(np.finfo(np.float64).tiny)


def gauss_legendre_tables(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes ``ξ (m,)`` (ascending) and weights ``w (m,)`` of m-point Gauss–Legendre on
    [−1, 1], and the matrix ``U (m, m)`` of upper partial integrals: ``U[i, l] = ∫_{ξ_i}^{1}
    ℓ_l(ξ) dξ`` with ``ℓ_l`` the Lagrange basis polynomial of node l, so that
    ``∫_{ξ_i}^{1} g ≈ Σ_l U[i, l] g(ξ_l)`` (exact for polynomials of degree < m)."""
    xi, w = np.polynomial.legendre.leggauss(m)
    # ℓ_l = Σ_n C[n, l] P_n with C[n, l] = (2n + 1)/2 · w_l P_n(ξ_l) (discrete orthogonality)
    vander = np.polynomial.legendre.legvander(xi, m - 1)  # (m nodes, m degrees)
    coef = (2.0 * np.arange(m) + 1.0)[:, None] / 2.0 * (vander * w[:, None]).T
    upper = np.empty((m, m))
    for n in range(m):
        e = np.zeros(m)
        e[n] = 1.0
        anti = np.polynomial.legendre.legint(e)  # an antiderivative of P_n
        upper[:, n] = np.polynomial.legendre.legval(1.0, anti) - np.polynomial.legendre.legval(
            xi, anti
        )
    return xi, w, np.ascontiguousarray(upper @ coef)


GL_X, GL_W, GL_U = gauss_legendre_tables(GL_NODES)


@njit(cache=True)
def beta_win_probs(alpha, beta, out):
    """Thompson-sampling probabilities of independent ``Beta(alpha[k], beta[k])`` posteriors
    (``alpha, beta (K,) > 0``): ``out[k] = P(X_k > X_j ∀ j ≠ k)``, rows summing to 1.

    Integration range: ``[L, U] = [max_j lo_j, max_j hi_j]`` with ``lo_j, hi_j`` the
    sub-Gaussian bounds of arm j (:data:`TAIL_Z`). Below ``L`` the arm attaining it has CDF
    ``≤ TAIL_MASS``, above ``U`` every density has tail mass ``≤ TAIL_MASS``, so each
    ``p_k`` loses at most ``2·TAIL_MASS`` to the truncation.

    Panels are laid from ``U`` down to ``L``; the width at upper end ``x`` is
    ``min_j sd_j (PANEL_CORE + PANEL_GROWTH |x − mean_j| / sd_j)``, so every posterior is
    resolved where it has mass (≤ 2 sds per panel near its mean). On each panel, with
    ``GL_NODES`` Gauss–Legendre nodes ``x_i``:

    * densities ``f_j(x_i) = exp((α_j−1) ln x + (β_j−1) ln(1−x) − ln B(α_j, β_j))``;
    * CDFs from the mass above: ``F_j(x_i) = 1 − S_j(x_i)``, ``S_j(x_i) = S_j(top of panel)
      + h/2 Σ_l U[i, l] f_j(x_l)`` (:func:`gauss_legendre_tables`), accumulated from ``U``
      downward, so no incomplete-beta function is evaluated;
    * ``p_k += h/2 · w_i f_k(x_i) Π_{j≠k} F_j(x_i)``, the leave-one-out products from prefix
      and suffix products (no division by a CDF that may be 0).

    Work is O(K · GL_NODES²) per panel and the number of panels grows like the log of the
    ratio of the widest to the narrowest posterior. The result is normalised to sum to 1;
    accuracy against an independent reference (SciPy's incomplete beta and adaptive
    quadrature) is tested in ``tests/policies/test_thompson_probs.py`` (absolute errors ≲ 1e-9 for
    posteriors with densities bounded at 0 and 1, i.e. α, β ≥ 1; lower where a prior below 1
    makes a density unbounded). Win probabilities that underflow become :data:`PROB_FLOOR`.
    """
    K = alpha.shape[0]
    if K == 1:
        out[0] = 1.0
        return
    m = GL_X.shape[0]
    mean = np.empty(K)
    sd = np.empty(K)
    log_b = np.empty(K)
    lo_all = -np.inf
    hi_all = -np.inf
    for j in range(K):
        a = alpha[j]
        b = beta[j]
        ab = a + b
        mean[j] = a / ab
        sd[j] = math.sqrt(a * b / (ab * ab * (ab + 1.0)))
        radius = TAIL_Z * 0.5 / math.sqrt(ab + 1.0)
        lo_all = max(lo_all, max(mean[j] - radius, 0.0))
        hi_all = max(hi_all, min(mean[j] + radius, 1.0))
        log_b[j] = math.lgamma(a) + math.lgamma(b) - math.lgamma(ab)
    f = np.empty((K, m))
    above = np.zeros(K)  # S_j at the top of the current panel
    acc = np.zeros(K)
    cdf = np.empty(K)
    pre = np.empty(K + 1)
    suf = np.empty(K + 1)
    top = hi_all
    while top > lo_all:
        width = np.inf
        for j in range(K):
            wj = sd[j] * PANEL_CORE + PANEL_GROWTH * abs(top - mean[j])
            width = min(width, wj)
        bottom = max(top - width, lo_all)
        if not bottom < top:  # a width below the float spacing at ``top``
            bottom = lo_all
        half = 0.5 * (top - bottom)
        mid = 0.5 * (top + bottom)
        for i in range(m):
            x = mid + half * GL_X[i]
            lx = math.log(x)
            l1x = math.log1p(-x)
            for j in range(K):
                f[j, i] = math.exp((alpha[j] - 1.0) * lx + (beta[j] - 1.0) * l1x - log_b[j])
        for i in range(m):
            for j in range(K):
                s = 0.0
                for q in range(m):
                    s += GL_U[i, q] * f[j, q]
                c = 1.0 - (above[j] + half * s)
                cdf[j] = min(max(c, 0.0), 1.0)
            pre[0] = 1.0
            for j in range(K):
                pre[j + 1] = pre[j] * cdf[j]
            suf[K] = 1.0
            for j in range(K - 1, -1, -1):
                suf[j] = suf[j + 1] * cdf[j]
            wi = half * GL_W[i]
            for k in range(K):
                acc[k] += wi * f[k, i] * (pre[k] * suf[k + 1])
        for j in range(K):
            s = 0.0
            for q in range(m):
                s += GL_W[q] * f[j, q]
            above[j] += half * s
        top = bottom
    total = 0.0
    for k in range(K):
        total += acc[k]
    for k in range(K):
        p = acc[k] / total
        out[k] = p if p > PROB_FLOOR else PROB_FLOOR
