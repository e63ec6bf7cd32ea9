"""Result (:class:`Estimate`) and mergeable sufficient statistics (:class:`Stats`).

Every estimator in :mod:`bandits.ope.estimators` is written in one common form. Per logged
round ``i`` it produces three numbers ``(D_i, C_i, B_i)`` and its value is::

    V = mean(D) + mean(C) / mean(B)

* mean-type estimators (DM, IPS, DR, SwitchDR, DRos): ``D_i`` = the per-round term,
  ``C_i = 0``, ``B_i = 1``, so ``V = mean(D)``;
* self-normalised estimators: SNIPS has ``D = 0, C = w r, B = w``; SNDR has
  ``D = sum_k pi q``, ``C = w (r - q_a)``, ``B = w``.

Analytic interval (delta method / CLT). The influence function of ``V`` is
``psi_i = D_i + (C_i - R B_i) / mean(B)`` with ``R = mean(C) / mean(B)``, so::

    stderr^2 = Var(psi) / n
             = g' S g / n,   g = (1, 1/mean(B), -R/mean(B)),  S = sample covariance of (D, C, B)

with ``ddof = 1``. For mean-type estimators this is ``std(D, ddof=1)^2 / n``; for SNIPS it is the
ratio-of-means formula ``Var(A - V B) / (n mean(B)^2)`` with ``A = w r``. The interval is
``V +- z * stderr`` with ``z = NormalDist().inv_cdf((1 + level) / 2)``.

Edge cases (documented behaviour, never NaN for valid input):

* ``n == 1``: the value is reported, ``stderr = inf`` and the interval is ``(-inf, inf)``
  (one round carries no information about the spread);
* ``sum(B) == 0`` (SNIPS/SNDR when the target policy gives probability 0 to every logged
  action): the ratio part is defined as 0, ``stderr = inf``, interval ``(-inf, inf)``.

:class:`Stats` keeps, instead of raw power sums, the count, the means of ``(D, C, B)`` and the
centred co-moment matrix ``sum_i (x_i - mean)(x_i - mean)'``; two partitions are merged with the
exact pairwise update of Chan, Golub & LeVeque (1979). This is algebraically the same as adding
``n, sum x, sum x x'`` but does not lose precision when the means are large relative to the
spread. ``Stats.sums`` and ``Stats.sums_of_products`` expose the raw-sum view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bandits.errors import ConfigError
from bandits.ope.support import SupportStats

__all__ = ["Estimate", "Stats", "normal_quantile", "percentile_interval"]

COLUMNS = ("D", "C", "B")
"""Names of the three per-round quantities, in the order used by ``Stats.means``."""

_CONSTANT_COLUMN_VALUES = (0.0, 0.0, 1.0)
"""Values of D, C, B when an estimator does not use the column."""

_MOMENT_BLOCK = 1 << 16
"""Rows per block when accumulating centred co-moments."""


def normal_quantile(level: float) -> float:
    """Two-sided standard-normal critical value ``z`` with ``P(|Z| <= z) = level``."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def percentile_interval(replicates: NDArray[np.float64], level: float) -> tuple[float, float]:
    """Percentile interval ``(q_{(1-level)/2}, q_{(1+level)/2})`` of bootstrap replicates."""
    alpha = 1.0 - level
    lo, hi = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Estimate:
    """Point estimate of a target policy's value with an interval and diagnostics.

    Attributes
    ----------
    estimator : registry name of the estimator (e.g. ``"snips"``)
    value : point estimate of the target policy's expected reward per round
    stderr : standard error (analytic: delta method / CLT; bootstrap: std of the replicates)
    ci_low, ci_high : interval at confidence ``level``; ``(-inf, inf)`` when not estimable
    n : number of logged rounds
    level : confidence level of the interval
    interval : ``"bounded"``, ``"analytic"`` or ``"bootstrap"`` (see
        :mod:`bandits.ope.intervals`)
    diagnostics : ``ess``, ``max_weight``, ``mean_weight``, ``unsupported_target_mass``,
        ``matched_rows``, ``matched_successes``, ``effective_successes`` and
        estimator-specific extras (see :meth:`Stats.diagnostics`). Treat as read-only.
    method_ci_low, method_ci_high : the estimator's own interval (sampling only) before it was
        widened to the support bound; equal to ``ci_low, ci_high`` when ``identified``
    bound_low, bound_high : the partial-identification interval: worst and best case over the
        rewards the log cannot show (:mod:`bandits.ope.support`), with sampling error
    identified : False when a material share of the target is unsupported, so ``ci_low,
        ci_high`` were widened to contain the bound (the point ``value`` is then an
        extrapolation)
    evidence, evidence_reason : ``sufficient`` / ``weak`` / ``insufficient`` and why
    model_dependent : the interval covers sampling noise only, not the reward model's bias
        (DM always; Switch-DR and DRos, which lean on the model for large weights)
    reward_range : ``(r_min, r_max)`` the interval was clipped to
    warnings : one-line warnings about the data (e.g. the propensity check)
    """

    estimator: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    level: float
    interval: str = "analytic"
    diagnostics: dict[str, float] = field(default_factory=dict)
    method_ci_low: float | None = None
    method_ci_high: float | None = None
    bound_low: float | None = None
    bound_high: float | None = None
    identified: bool = True
    evidence: str = "sufficient"
    evidence_reason: str = ""
    model_dependent: bool = False
    reward_range: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of all fields; diagnostics are merged in at the top level."""
        out: dict[str, Any] = {
            "estimator": self.estimator,
            "value": self.value,
            "stderr": self.stderr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "level": self.level,
            "interval": self.interval,
            "method_ci_low": self.method_ci_low,
            "method_ci_high": self.method_ci_high,
            "bound_low": self.bound_low,
            "bound_high": self.bound_high,
            "identified": self.identified,
            "evidence": self.evidence,
            "evidence_reason": self.evidence_reason,
            "model_dependent": self.model_dependent,
        }
        clash = out.keys() & self.diagnostics.keys()
        if clash:
            raise ValueError(f"diagnostic names clash with Estimate fields: {sorted(clash)}")
        out.update(self.diagnostics)
        return out

    def to_metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Numeric entries of :meth:`to_dict` with keys ``f"{prefix}{key}"``.

        ``prefix`` defaults to ``f"{estimator}/"`` (e.g. ``"ips/value"``), handy for
        ``mlflow.log_metrics``.
        """
        prefix = f"{self.estimator}/" if prefix is None else prefix
        return {
            f"{prefix}{key}": float(val)
            for key, val in self.to_dict().items()
            if isinstance(val, int | float) and not isinstance(val, bool)
        }


@dataclass(frozen=True, eq=False)
class Stats:
    """Mergeable sufficient statistics of one estimator on one partition of a log.

    Build with ``estimator.partial(...)``, combine with :meth:`merge` (or ``a + b``,
    ``sum(parts)``), turn into an :class:`Estimate` with ``estimator.finalize(stats)``.

    Attributes
    ----------
    estimator : registry name of the estimator that produced the statistics
    params : the estimator settings that change the per-round terms (merge/finalize check them)
    n : number of rounds
    n_actions : ``K``
    means : (3,) means of the per-round ``(D, C, B)``
    comoments : (3, 3) centred sums of products ``sum_i (x_i - mean)(x_i - mean)'``
    n_weighted : rounds with a logged propensity (all of them unless DM got none)
    sum_w, sum_w2, max_w : ``sum w``, ``sum w^2``, ``max w`` of the raw importance weights
        ``w_i = pi[i, a_i] / p_i`` over those rounds (``max_w = 0`` if there are none)
    n_flagged : rounds whose weight the estimator modified (IPS: clipped; SwitchDR: switched to
        the model); reported as ``diagnostics[flag_name]``
    action_counts : (K,) how often each action was logged
    reward_weight_sums : (4,) ``(Σω, Σω², Σωr, Σω²r)`` of the estimator's reward weights
        ``ω`` (the coefficient of ``r_i`` in its per-round term; for self-normalised estimators
        the raw ``w``, rescaled by ``n / Σw`` when finalised), or ``None`` if rewards do not
        enter the value (DM)
    support : :class:`~bandits.ope.support.SupportStats` of the target on this partition
        (shared by every estimator on the same data)
    flag_name : diagnostics key for ``n_flagged / n`` or ``None``
    reward_range : the declared reward range, or ``None`` (inferred when finalised)
    """

    estimator: str
    params: tuple[tuple[str, Any], ...]
    n: int
    n_actions: int
    means: NDArray[np.float64]
    comoments: NDArray[np.float64]
    n_weighted: int
    sum_w: float
    sum_w2: float
    max_w: float
    n_flagged: int
    action_counts: NDArray[np.int64]
    reward_weight_sums: NDArray[np.float64] | None
    support: SupportStats | None
    flag_name: str | None = None
    reward_range: tuple[float, float] | None = None

    # ------------------------------------------------------------------ construction
    @staticmethod
    def column_moments(
        n: int, columns: tuple[NDArray[np.float64] | None, ...]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Means (3,) and centred co-moments (3, 3) of ``(D, C, B)``.

        A ``None`` column stands for its constant value (D = 0, C = 0, B = 1): exact mean, zero
        co-moments. Two passes: the means (pairwise summation), then the centred cross-products,
        accumulated over cache-sized row blocks so no (n,) temporaries are allocated.
        """
        means = np.array(_CONSTANT_COLUMN_VALUES, dtype=np.float64)
        comoments = np.zeros((3, 3), dtype=np.float64)
        used = [j for j, col in enumerate(columns) if col is not None]
        for j in used:
            means[j] = np.sum(columns[j]) / n  # type: ignore[arg-type]
        block = np.empty((len(used), min(n, _MOMENT_BLOCK)), dtype=np.float64)
        for r0 in range(0, n, _MOMENT_BLOCK):
            r1 = min(r0 + _MOMENT_BLOCK, n)
            xc = block[:, : r1 - r0]
            for t, j in enumerate(used):
                np.subtract(columns[j][r0:r1], means[j], out=xc[t])  # type: ignore[index]
            # einsum, not BLAS: many small multithreaded BLAS calls stall on a busy machine
            comoments[np.ix_(used, used)] += np.einsum("ij,kj->ik", xc, xc)
        return means, comoments

    # ------------------------------------------------------------------ merging
    def merge(self, other: Stats) -> Stats:
        """Statistics of the union of two disjoint partitions (exact, order-independent up to
        float rounding)."""
        if not isinstance(other, Stats):
            raise TypeError(f"can only merge Stats with Stats, got {type(other).__name__}")
        if (self.estimator, self.params) != (other.estimator, other.params):
            raise ValueError(
                "cannot merge Stats of different estimators/settings: "
                f"{self.estimator}{dict(self.params)} vs {other.estimator}{dict(other.params)}"
            )
        if self.reward_range != other.reward_range:
            raise ValueError(
                f"cannot merge Stats with different declared reward ranges "
                f"({self.reward_range} vs {other.reward_range})"
            )
        if self.n_actions != other.n_actions:
            raise ValueError(
                f"cannot merge Stats with different numbers of actions "
                f"({self.n_actions} vs {other.n_actions})"
            )
        n = self.n + other.n
        delta = other.means - self.means
        means = self.means + delta * (other.n / n)
        comoments = (
            self.comoments + other.comoments + np.outer(delta, delta) * (self.n * other.n / n)
        )
        return Stats(
            estimator=self.estimator,
            params=self.params,
            n=n,
            n_actions=self.n_actions,
            means=means,
            comoments=comoments,
            n_weighted=self.n_weighted + other.n_weighted,
            sum_w=self.sum_w + other.sum_w,
            sum_w2=self.sum_w2 + other.sum_w2,
            max_w=max(self.max_w, other.max_w),
            n_flagged=self.n_flagged + other.n_flagged,
            action_counts=self.action_counts + other.action_counts,
            reward_weight_sums=None
            if self.reward_weight_sums is None or other.reward_weight_sums is None
            else self.reward_weight_sums + other.reward_weight_sums,
            support=None
            if self.support is None or other.support is None
            else self.support.merge(other.support),
            flag_name=self.flag_name,
            reward_range=self.reward_range,
        )

    def __add__(self, other: object) -> Stats:
        if not isinstance(other, Stats):
            return NotImplemented
        return self.merge(other)

    def __radd__(self, other: object) -> Stats:
        if isinstance(other, int) and other == 0:  # lets sum(list_of_stats) work
            return self
        return NotImplemented

    @staticmethod
    def merge_all(parts: Iterable[Stats]) -> Stats:
        """Merge a non-empty iterable of partition statistics."""
        it = iter(parts)
        try:
            total = next(it)
        except StopIteration:
            raise ValueError("merge_all needs at least one Stats") from None
        for part in it:
            total = total.merge(part)
        return total

    # ------------------------------------------------------------------ raw-sum view
    @property
    def sums(self) -> NDArray[np.float64]:
        """(3,) ``(sum D, sum C, sum B)``."""
        return self.means * self.n

    @property
    def sums_of_products(self) -> NDArray[np.float64]:
        """(3, 3) ``sum_i x_i x_i'`` for ``x = (D, C, B)``."""
        return self.comoments + np.outer(self.means, self.means) * self.n

    # ------------------------------------------------------------------ results
    @property
    def value(self) -> float:
        """``mean(D) + mean(C) / mean(B)`` (ratio part 0 when ``mean(B) == 0``)."""
        d_bar, c_bar, b_bar = self.means
        ratio = c_bar / b_bar if b_bar != 0.0 else 0.0
        return float(d_bar + ratio)

    @property
    def stderr(self) -> float:
        """Delta-method standard error (see module docstring); ``inf`` if not estimable."""
        _, c_bar, b_bar = self.means
        if self.n < 2 or b_bar == 0.0:
            return math.inf
        ratio = c_bar / b_bar
        grad = np.array([1.0, 1.0 / b_bar, -ratio / b_bar])
        var_psi = float(grad @ (self.comoments / (self.n - 1)) @ grad)
        if not math.isfinite(var_psi):
            return math.inf
        return math.sqrt(max(var_psi, 0.0) / self.n)

    def diagnostics(self) -> dict[str, float]:
        """Weight and support diagnostics.

        * ``ess`` = ``(sum w)^2 / sum w^2`` (Kish effective sample size of the raw importance
          weights ``w = pi[a] / p``; 0 if all weights are 0),
        * ``max_weight``, ``mean_weight`` (≈ 1 when the log and propensities are correct and the
          target policy is supported),
        * ``unsupported_target_mass`` = mean over rounds of the target probability on actions
          the logger (almost) never takes there, ``sum_k pi[i, k] 1[logging_probs[i, k] <
          floor]``, for rounds given with ``logging_probs``; otherwise what is visible
          without them: actions never in the (merged) log's action array, every other action
          on rows whose logged propensity is ``>= 1 - floor``, and logged actions with a
          propensity below the floor (see :mod:`bandits.ope.support`),
        * ``unsupported_mass_is`` (without ``logging_probs``): the importance-sampling
          estimate ``1 - mean(w_s)`` of the same mass, which also sees coverage holes,
        * ``supported_value`` = ``mean(w_s r)``, the value of the supported part,
        * ``matched_rows`` (rounds with ``pi[i, a_i] > 0``), ``matched_successes`` (their
          summed reward above the declared minimum, 0 by default: clicks for 0/1 rewards),
        * ``flag_name`` (e.g. ``clipped_fraction``) = ``n_flagged / n`` when defined.

        The weight and support entries are omitted only when no round had a propensity (DM
        without one).
        """
        out: dict[str, float] = {}
        if self.n_weighted > 0:
            out["ess"] = self.sum_w**2 / self.sum_w2 if self.sum_w2 > 0.0 else 0.0
            out["max_weight"] = float(self.max_w)
            out["mean_weight"] = self.sum_w / self.n_weighted
        sup = self.support
        if sup is not None:
            out["unsupported_target_mass"] = sup.visible_unsupported_mass()
            if not sup.exact:
                out["unsupported_mass_is"] = float(1.0 - sup.weight_sums[0] / sup.n)
            out["supported_value"] = sup.supported_value
            out["matched_rows"] = float(sup.matched_rows)
            out["matched_successes"] = sup.matched_successes
        if self.flag_name is not None:
            out[self.flag_name] = self.n_flagged / self.n
        return out
