"""Intervals that hold for bounded rewards at small effective sample sizes.

The CLT / delta-method interval ``V ± z·se`` (:mod:`bandits.ope.estimate`) is right for large
samples, but clicks are rare: with 0–20 successes on the rows a target policy would have
chosen the sample variance is 0 or badly underestimated (zero successes give a zero-width
interval at 0), and the normal approximation of a sum of rare events undercovers.

The ``"bounded"`` interval (the estimators' default) is therefore

    hull( CLT interval,  Wilson-type score interval of the reward-weighted successes )
    ∩ [r_min, r_max]

* **The score floor.** An estimator's value depends on the rewards through
  ``m = (1/n) Σ_i ω_i r'_i`` where ``r' = (r - r_min) / (r_max - r_min)`` in [0, 1] and ``ω_i``
  is the estimator's *reward weight* (IPS ``min(w, clip)``; SNIPS ``n w / Σw``; DR ``w``;
  Switch-DR ``w 1[w <= λ]``; DRos the shrunk weight). For 0/1 rewards
  ``Var(ω r') = E[ω² r'] - m²``; writing ``E[ω² r'] = c·m`` with ``c`` the mean weight of a
  success gives the score (Wilson 1927) variance ``v(μ) = c μ - μ²``. The floor is the set
  ``{μ : (m - μ)² <= z² v(μ) / n}``, a quadratic in μ solved in closed form
  (:func:`score_half_widths`); its half-widths, scaled back by ``r_max - r_min``, are placed
  around the estimator's value. Unlike the plug-in variance it never collapses to 0 at zero
  successes (upper end ``≈ z² c / n``, the analogue of the "rule of three"), and it is
  asymmetric like the exact binomial interval at small counts. ``c`` is the larger of the
  observed mean weight of the successes, ``Σω²r' / Σωr'``, and the weight a success would
  carry if rewards were independent of the weights, ``Σω² / Σω`` (so one lucky low-weight
  success cannot shrink it).
* **When.** The floor applies while the effective number of successes ``k = Σωr' / c`` is
  below :data:`CLT_MIN_SUCCESSES`; above it the CLT interval is used alone, so where evidence
  is plentiful the interval is the usual one (no width is bought for coverage there).
* **Clipping.** A policy's value lies in the reward range, so the interval is intersected
  with it (never wider than the range, never a ±inf interval for a bounded reward).

Why not empirical Bernstein (Maurer & Pontil 2009) or betting confidence sequences
(Waudby-Smith & Ramdas 2023)? Both are valid in finite samples, but empirical Bernstein
grows with the largest possible weight (``1 / floor``) and is several times the CLT width at
the sample sizes teams have, and betting intervals need a pass over the rows per candidate
mean, which the mergeable sufficient statistics (partitions, streaming) cannot provide. The
score floor keeps estimates mergeable (it needs four sums) and its coverage is tested on
simulated rare-click logs (``tests/ope/test_ope_coverage.py``,
``experiments/benchmarks/coverage.py``).
"""

from __future__ import annotations

import math

__all__ = [
    "CLT_MIN_SUCCESSES",
    "INTERVALS",
    "clip_to_range",
    "hull",
    "score_half_widths",
    "weighted_success_floor",
]

INTERVALS = ("bounded", "analytic", "bootstrap")
"""``bounded`` (default): CLT ∪ score floor, clipped to the reward range; ``analytic``: the
plain CLT / delta-method interval (no floor, no clipping: for reference and by-hand checks);
``bootstrap``: Poisson bootstrap percentile interval ∪ score floor, clipped."""

CLT_MIN_SUCCESSES = 50.0
"""Below this many effective successes the score floor is applied (see module docstring)."""


def score_half_widths(m: float, c: float, n: int, z: float) -> tuple[float, float]:
    """Half-widths ``(m - lo, hi - m)`` of ``{μ >= 0 : (m - μ)² <= z² (c μ - μ²) / n}``.

    ``m`` is the observed mean of ``ω r'`` (>= 0), ``c > 0`` the weight per success, ``n``
    the number of rows. With ``a = 1 + z²/n`` and ``b = 2m + z² c / n`` the roots are
    ``μ = (b ± sqrt(b² - 4 a m²)) / (2a)``.
    """
    if n <= 0 or not (c > 0.0) or not math.isfinite(c):
        return math.inf, math.inf
    z2n = z * z / n
    a = 1.0 + z2n
    b = 2.0 * m + z2n * c
    disc = max(b * b - 4.0 * a * m * m, 0.0)
    root = math.sqrt(disc)
    lo = max((b - root) / (2.0 * a), 0.0)
    hi = (b + root) / (2.0 * a)
    return max(m - lo, 0.0), max(hi - m, 0.0)


def weighted_success_floor(
    sums: tuple[float, float, float, float],
    n: int,
    reward_range: tuple[float, float],
    z: float,
    max_weight: float,
) -> tuple[float, float, float] | None:
    """Score-floor half-widths ``(down, up)`` in reward units and the effective successes.

    ``sums = (Σω, Σω², Σωr, Σω²r)`` over the rows (raw rewards ``r``), ``reward_range =
    (r_min, r_max)``, ``max_weight`` the weight a success would carry if nothing else is known
    (used when no row has a positive weight). Returns ``None`` when the rewards carry no
    weight at all (e.g. DM) or the range is degenerate.
    """
    s_w, s_w2, s_wr, s_w2r = sums
    r_min, r_max = reward_range
    span = r_max - r_min
    if not (span > 0.0) or n <= 0:
        return None
    succ = (s_wr - r_min * s_w) / span  # Σ ω r'
    succ2 = (s_w2r - r_min * s_w2) / span  # Σ ω² r'
    succ, succ2 = max(succ, 0.0), max(succ2, 0.0)
    candidates = []
    if s_w > 0.0:
        candidates.append(s_w2 / s_w)
    if succ > 0.0:
        candidates.append(succ2 / succ)
    c = max(candidates) if candidates else float(max_weight)
    if not (c > 0.0 and math.isfinite(c)):
        return None
    down, up = score_half_widths(succ / n, c, n, z)
    return down * span, up * span, succ / c


def hull(*intervals: tuple[float, float]) -> tuple[float, float]:
    """Smallest interval containing every ``(low, high)`` given."""
    return min(lo for lo, _ in intervals), max(hi for _, hi in intervals)


def clip_to_range(
    low: float, high: float, reward_range: tuple[float, float]
) -> tuple[float, float]:
    """``[low, high] ∩ [r_min, r_max]`` (an empty intersection collapses onto the nearer end)."""
    r_min, r_max = reward_range
    lo, hi = max(low, r_min), min(high, r_max)
    if lo > hi:  # interval entirely outside the range: the nearest feasible point
        lo = hi = r_min if high < r_min else r_max
    return lo, hi
