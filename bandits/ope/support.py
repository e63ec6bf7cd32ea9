"""Support: what a log can and cannot say about a target policy.

An off-policy estimate is only as good as the overlap between the target policy ``pi`` and
the logging policy ``mu``. This module computes, from mergeable sums, for one target on one
log (shapes: ``pi``, ``mu`` (n, K); ``r, a, p`` (n,)):

* **Unsupported mass** ``u = mean_i u_i`` with ``u_i = Σ_k pi[i,k] 1[mu[i,k] < f]``: the
  target's probability on actions the logger (almost) never takes in that context. ``f`` is
  the *support floor* (default ``0.1 / K``: an action at least ten times less likely than
  under uniform logging is treated as unsupported; weights are then at most ``1/f``).
  With the full logging distribution (``logging_probs``) ``u_i`` is exact. Without it the
  estimator still knows the logged propensities: ``u`` is estimated by the importance-sampling
  identity ``E[w_s] = 1 - u`` (``w_s = pi[i,a_i] / p_i · 1[p_i >= f]``), i.e. ``u_i = 1 - w_s,i``
  — unbiased whatever the logger, if noisier — and the ``unsupported_target_mass`` diagnostic
  reports the part visible without a model: actions never logged, rows where the logged
  propensity is ``>= 1 - f`` (the logger was deterministic there, so every other action is
  unsupported) and logged actions with ``p_i < f``.
* **Bounds instead of guesses** (Manski-style partial identification). With
  ``S = E[w_s r]`` the supported part of the value, the value is identified only up to
  ``V ∈ [S + r_min u, S + r_max u]``; per row ``L_i = w_s,i r_i + r_min u_i`` and
  ``U_i = w_s,i r_i + r_max u_i`` are unbiased for the two ends. The reported bound is
  ``[mean(L) - z se(L), mean(U) + z se(U)]`` (each end at one-sided ``1 - alpha/2``, so the
  identified set, and hence the true value, is covered with probability ``>= 1 - alpha``),
  widened by the score floor of :mod:`bandits.ope.intervals` for rare rewards and clipped to
  the reward range.
* **Propensity check.** For each action ``k``, ``E[1[a = k] / p] = P_x(mu(k|x) > 0)``: the
  share of contexts in which the logger can take ``k`` (1 if it always can). The observed
  mean is compared with that share (exact with ``logging_probs``; without them only values
  above 1 are a contradiction) and flagged when off by more than ``z_K`` standard errors
  (Bonferroni over the ``K`` actions at 1%). Propensities that are too large (e.g. 1/3 logged
  for a uniform choice among 12) make every mean ≈ 0.25 and are flagged.
* **Evidence.** :func:`assess_evidence` turns the diagnostics into ``sufficient`` / ``weak``
  / ``insufficient`` with the reason in words (thresholds below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from bandits.ope import _kernels
from bandits.ope.intervals import CLT_MIN_SUCCESSES, clip_to_range, weighted_success_floor

__all__ = [
    "EVIDENCE_LEVELS",
    "INSUFFICIENT_ESS",
    "INSUFFICIENT_UNSUPPORTED",
    "WEAK_ESS",
    "WEAK_SUCCESSES",
    "WEAK_UNSUPPORTED",
    "Evidence",
    "SupportStats",
    "assess_evidence",
    "default_floor",
    "logging_support",
]

EVIDENCE_LEVELS = ("sufficient", "weak", "insufficient")
INSUFFICIENT_UNSUPPORTED = 0.10
"""Unsupported mass at or above which the log cannot identify the value (evidence insufficient)."""
WEAK_UNSUPPORTED = 0.01
"""Unsupported mass at or above which the evidence is at most weak."""
INSUFFICIENT_ESS = 10.0
WEAK_ESS = 100.0
WEAK_SUCCESSES = 10.0
"""Fewer successes (reward above the range minimum) on rows the target would have chosen:
the interval rests on very few events (weak)."""
PROPENSITY_CHECK_ALPHA = 0.01


def default_floor(n_actions: int) -> float:
    """Support floor ``0.1 / K``."""
    return 0.1 / max(int(n_actions), 1)


def logging_support(
    action: NDArray[np.integer],
    propensity: NDArray[np.float64],
    n_actions: int,
    estimated: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """A full logging distribution ``mu~`` (n, K) consistent with the logged propensities, for
    the support diagnostics when the log has no ``action_probs``.

    ``mu~[i, a_i] = p_i`` exactly; the remaining ``1 - p_i`` is spread over the other actions
    in proportion to ``estimated[i]`` (an estimated logging policy, e.g.
    :func:`bandits.ope.propensity.estimate_logging_policy`) or, without one, evenly over the
    actions that appear somewhere in the log. Actions never logged get 0, and a row logged
    with ``p_i = 1`` leaves nothing for the others — so a deterministic logger is seen as
    such without any model. Rows sum to 1.
    """
    n = action.shape[0]
    rows = np.arange(n)
    present = np.bincount(action, minlength=n_actions) > 0
    if estimated is None:
        other = np.broadcast_to(present.astype(np.float64), (n, n_actions)).copy()
    else:
        other = np.where(present, np.asarray(estimated, dtype=np.float64), 0.0)
    other[rows, action] = 0.0
    total = other.sum(axis=1)
    empty = total <= 0.0
    if empty.any():  # the estimate left nothing for the others: spread evenly instead
        fallback = np.broadcast_to(present.astype(np.float64), (n, n_actions)).copy()
        fallback[rows, action] = 0.0
        other[empty] = fallback[empty]
        total = other.sum(axis=1)
        still = total <= 0.0  # the logged action is the only one in the log
        other[still] = 1.0
        other[rows[still], action[still]] = 0.0
        total = other.sum(axis=1)
    residual = 1.0 - propensity
    scale = np.divide(residual, total, out=np.zeros(n), where=total > 0.0)
    out = other * scale[:, None]
    out[rows, action] = propensity
    return out


@dataclass(frozen=True, eq=False)
class SupportStats:
    """Mergeable support statistics of one target policy on one partition of a log.

    Attributes
    ----------
    n : rows
    floor : support floor ``f``
    exact : True when built with ``logging_probs`` (``u_i`` exact), False for the
        importance-sampling identity
    means : (2,) means of the per-row ``(S_i, u_i)``, ``S_i = w_s,i r_i``
    comoments : (2, 2) centred co-moments of ``(S, u)``
    weight_sums : (4,) ``(Σ w_s, Σ w_s², Σ w_s r, Σ w_s² r)`` (score floor of the bound)
    visible_row_mass : ``Σ_i`` of the model-free unsupported mass per row (see module
        docstring; without ``logging_probs``)
    absent_mass : (K,) ``Σ pi[i, k]`` over rows not counted in ``visible_row_mass``, for the
        actions absent from this partition (0 for the others)
    action_counts : (K,) logged actions
    inv_p_sums, inv_p2_sums : (K,) ``Σ 1[a_i = k] / p_i`` and ``Σ 1[a_i = k] / p_i²``
    covered : (K,) rows where the logger can take ``k``, ``mu[i, k] >= floor / 1000`` (with
        ``logging_probs``), else ``None``
    matched_rows : rows with ``pi[i, a_i] > 0``
    matched_successes : ``Σ 1[pi[i, a_i] > 0] (r_i - r_lo)`` with ``r_lo`` the lower end of
        the declared range if given, else 0 (successes for 0/1 rewards)
    reward_min, reward_max : observed range of ``r``
    max_weight : largest raw weight ``pi[i, a_i] / p_i``
    checked : whether :meth:`propensity_check` applies (False for estimated propensities)
    """

    n: int
    floor: float
    exact: bool
    means: NDArray[np.float64]
    comoments: NDArray[np.float64]
    weight_sums: NDArray[np.float64]
    visible_row_mass: float
    absent_mass: NDArray[np.float64]
    action_counts: NDArray[np.int64]
    inv_p_sums: NDArray[np.float64]
    inv_p2_sums: NDArray[np.float64]
    covered: NDArray[np.int64] | None
    matched_rows: int
    matched_successes: float
    reward_min: float
    reward_max: float
    max_weight: float
    checked: bool = True

    @staticmethod
    def compute(
        *,
        reward: NDArray[np.float64],
        action: NDArray[np.integer],
        propensity: NDArray[np.float64],
        target_probs: NDArray[np.float64],
        target_prob_logged: NDArray[np.float64],
        logging_probs: NDArray[np.float64] | None,
        floor: float,
        success_base: float = 0.0,
        check_propensities: bool = True,
    ) -> SupportStats:
        """Statistics of one partition (all arrays validated; shapes in the class docstring)."""
        n, k = target_probs.shape
        covered = None
        if logging_probs is not None:
            u_rows, covered = _kernels.unsupported_mass_rows(target_probs, logging_probs, floor)
            covered = covered.astype(np.int64)
        else:
            u_rows = np.empty(0)
        (
            means,
            comoments,
            weight_sums,
            visible,
            inv_p_sums,
            inv_p2_sums,
            counts,
            matched,
            successes,
            r_min,
            r_max,
            w_max,
        ) = _kernels.support_sums(
            reward,
            action,
            propensity,
            target_prob_logged,
            u_rows,
            float(floor),
            float(success_base),
            k,
        )
        absent_mass = np.zeros(k)
        if logging_probs is None:
            absent = np.flatnonzero(counts == 0)
            if absent.size:  # usually empty: no pass over pi
                rest = propensity < 1.0 - floor
                absent_mass[absent] = target_probs[rest][:, absent].sum(axis=0)
        return SupportStats(
            n=n,
            floor=float(floor),
            exact=logging_probs is not None,
            means=means,
            comoments=comoments,
            weight_sums=weight_sums,
            visible_row_mass=float(visible),
            absent_mass=absent_mass,
            action_counts=counts,
            inv_p_sums=inv_p_sums,
            inv_p2_sums=inv_p2_sums,
            covered=covered,
            matched_rows=int(matched),
            matched_successes=float(successes),
            reward_min=float(r_min),
            reward_max=float(r_max),
            max_weight=float(w_max),
            checked=check_propensities,
        )

    def merge(self, other: SupportStats) -> SupportStats:
        """Statistics of the union of two disjoint partitions."""
        if (self.floor, self.exact) != (other.floor, other.exact):
            raise ValueError("cannot merge support statistics with different floors/sources")
        n = self.n + other.n
        delta = other.means - self.means
        means = self.means + delta * (other.n / n)
        comoments = (
            self.comoments + other.comoments + np.outer(delta, delta) * (self.n * other.n / n)
        )
        # an action absent from one part but present in the other is present in the union
        counts = self.action_counts + other.action_counts
        absent = np.where(counts == 0, self.absent_mass + other.absent_mass, 0.0)
        covered = None
        if self.covered is not None and other.covered is not None:
            covered = self.covered + other.covered
        return SupportStats(
            n=n,
            floor=self.floor,
            exact=self.exact,
            means=means,
            comoments=comoments,
            weight_sums=self.weight_sums + other.weight_sums,
            visible_row_mass=self.visible_row_mass + other.visible_row_mass,
            absent_mass=absent,
            action_counts=counts,
            inv_p_sums=self.inv_p_sums + other.inv_p_sums,
            inv_p2_sums=self.inv_p2_sums + other.inv_p2_sums,
            covered=covered,
            matched_rows=self.matched_rows + other.matched_rows,
            matched_successes=self.matched_successes + other.matched_successes,
            reward_min=min(self.reward_min, other.reward_min),
            reward_max=max(self.reward_max, other.reward_max),
            max_weight=max(self.max_weight, other.max_weight),
            checked=self.checked and other.checked,
        )

    # ------------------------------------------------------------------ results
    def _se(self, j: int) -> float:
        return math.sqrt(max(self.comoments[j, j], 0.0) / (self.n - 1) / self.n)

    @property
    def supported_value(self) -> float:
        """``mean(S)``: the supported part of the value, ``E[Σ_k pi 1[mu >= f] q]``."""
        return float(self.means[0])

    @property
    def unsupported_mass(self) -> float:
        """``mean(u)`` (exact per row with ``logging_probs``; else the IS identity, >= 0)."""
        return max(float(self.means[1]), 0.0)

    @property
    def unsupported_mass_stderr(self) -> float:
        return self._se(1) if self.n >= 2 else math.inf

    def visible_unsupported_mass(self) -> float:
        """The model-free part of the unsupported mass (exact with ``logging_probs``)."""
        if self.exact:
            return self.unsupported_mass
        return (self.visible_row_mass + float(self.absent_mass.sum())) / self.n

    def material_unsupported_mass(self, z: float) -> float:
        """Unsupported mass that is there beyond doubt: exact with ``logging_probs``; else the
        larger of the visible part and the IS identity less ``z`` standard errors."""
        if self.exact:
            return self.unsupported_mass
        identity = float(self.means[1]) - z * self.unsupported_mass_stderr
        return max(self.visible_unsupported_mass(), identity, 0.0)

    def bound(self, z: float, reward_range: tuple[float, float]) -> tuple[float, float]:
        """``[mean(L) - z se(L), mean(U) + z se(U)]`` with ``L = S + r_min u``,
        ``U = S + r_max u``, widened by the score floor of ``S`` and clipped to the range."""
        r_min, r_max = reward_range
        if self.n < 2:
            return r_min, r_max
        c = self.comoments / (self.n - 1)

        def end(r: float) -> tuple[float, float]:
            mean = self.means[0] + r * self.means[1]
            var = c[0, 0] + r * r * c[1, 1] + 2.0 * r * c[0, 1]
            return float(mean), math.sqrt(max(var, 0.0) / self.n)

        (lo_mean, lo_se), (hi_mean, hi_se) = end(r_min), end(r_max)
        lo, hi = lo_mean - z * lo_se, hi_mean + z * hi_se
        floor = weighted_success_floor(
            tuple(float(v) for v in self.weight_sums),  # type: ignore[arg-type]
            self.n,
            reward_range,
            z,
            1.0 / self.floor,
        )
        if floor is not None and floor[2] < CLT_MIN_SUCCESSES:
            lo, hi = min(lo, lo_mean - floor[0]), max(hi, hi_mean + floor[1])
        return clip_to_range(lo, hi, reward_range)

    def propensity_check(self) -> str | None:
        """One-line warning when the logged propensities contradict the log, else ``None``."""
        if self.n < 2 or not self.checked:
            return None
        k = self.action_counts.shape[0]
        mean = self.inv_p_sums / self.n
        var = np.maximum(self.inv_p2_sums / self.n - mean * mean, 0.0)
        se = np.sqrt(var / self.n)
        z = NormalDist().inv_cdf(1.0 - PROPENSITY_CHECK_ALPHA / (2.0 * k))
        if self.covered is not None:
            expected = self.covered / self.n
            off = np.abs(mean - expected) > z * se + 1e-9
            off &= self.covered > 0
        else:
            expected = np.ones(k)
            off = mean - 1.0 > z * se + 1e-9
        off &= self.action_counts >= 5  # a handful of rows says nothing either way
        if not off.any():
            return None
        bad = np.flatnonzero(off)
        ratio = float(np.median(mean[bad] / np.maximum(expected[bad], 1e-12)))
        direction = "too large" if ratio < 1.0 else "too small"
        shown = ", ".join(f"{mean[j]:.2f}" for j in bad[:3])
        return (
            f"column 'propensity': the mean of 1[action = k] / propensity, which is 1 for an "
            f"action the logger can always take, is {shown} for {bad.size} of {k} actions "
            f"(expected {float(np.median(expected[bad])):.2f} ± {float(np.median(se[bad])):.2f})"
            f": the logged propensities look {direction} (median ratio {ratio:.2f})"
        )


@dataclass(frozen=True)
class Evidence:
    """``level`` in :data:`EVIDENCE_LEVELS` and the ``reason`` in words ("" if sufficient)."""

    level: str
    reason: str


def assess_evidence(
    *,
    unsupported: float,
    ess: float | None,
    n: int,
    matched_successes: float | None,
    propensity_warning: str | None,
    floor: float,
) -> Evidence:
    """Evidence level of an estimate (thresholds: module constants).

    * ``insufficient``: unsupported mass >= :data:`INSUFFICIENT_UNSUPPORTED`, or ESS <
      :data:`INSUFFICIENT_ESS`;
    * ``weak``: unsupported mass >= :data:`WEAK_UNSUPPORTED`, ESS < :data:`WEAK_ESS`, fewer
      than :data:`WEAK_SUCCESSES` successes on matched rows, or a failed propensity check;
    * ``sufficient`` otherwise.
    """
    insufficient, weak = [], []
    share = f"{100 * unsupported:.1f}%"
    if unsupported >= INSUFFICIENT_UNSUPPORTED:
        insufficient.append(
            f"{share} of the target's probability is on variants the logger (almost) never "
            f"chose in those contexts (propensity < {floor:.2g})"
        )
    elif unsupported >= WEAK_UNSUPPORTED:
        weak.append(f"{share} of the target's probability is on variants the log barely shows")
    if ess is not None:
        if ess < INSUFFICIENT_ESS:
            insufficient.append(f"effective sample size {ess:.0f} of {n:,} rows")
        elif ess < WEAK_ESS:
            weak.append(f"effective sample size {ess:.0f} of {n:,} rows")
    if matched_successes is not None and matched_successes < WEAK_SUCCESSES:
        weak.append(
            f"only {matched_successes:.0f} successes on the rows where the log took the "
            "target's choice"
        )
    if propensity_warning:
        weak.append("the logged propensities fail the per-action check")
    if insufficient:
        return Evidence("insufficient", "; ".join(insufficient + weak))
    if weak:
        return Evidence("weak", "; ".join(weak))
    return Evidence("sufficient", "")
