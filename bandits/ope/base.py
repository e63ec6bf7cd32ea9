"""Common machinery of all off-policy estimators: settings, validation, partial/finalize.

An estimator subclass only implements :meth:`OffPolicyEstimator._columns`, which maps validated
data to the per-round ``(D, C, B)`` of the common form ``V = mean(D) + mean(C) / mean(B)``
(see :mod:`bandits.ope.estimate`). Everything else -- statistics, merging, analytic and
bootstrap intervals, diagnostics -- is shared, so ``estimate(...)`` is literally
``finalize(partial(...))`` for analytic intervals.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bandits.errors import ConfigError
from bandits.ope.bootstrap import bootstrap_replicates
from bandits.ope.estimate import Estimate, Stats, normal_quantile, percentile_interval
from bandits.ope.intervals import (
    CLT_MIN_SUCCESSES,
    INTERVALS,
    clip_to_range,
    hull,
    weighted_success_floor,
)
from bandits.ope.support import assess_evidence
from bandits.ope.validation import LoggedData, resolve_reward_range, validate_logged_data
from bandits.settings import Settings

__all__ = ["Columns", "OffPolicyEstimator", "estimate_many", "partial_many"]

Columns = tuple[NDArray[np.float64] | None, NDArray[np.float64] | None, NDArray[np.float64] | None]
"""Per-round ``(D, C, B)``, each (n,) or ``None`` for the constants 0, 0, 1."""

_INTERVAL_PARAMS = frozenset({"level", "interval", "n_bootstrap", "seed"})


class OffPolicyEstimator(Settings, abc.ABC):
    """Base class: estimate the expected reward of a target policy from a logged bandit log.

    Settings (explicit keyword arguments that the constructor only stores, sklearn-style,
    validated when used; ``get_settings()``, ``set_params``, ``clone(seed=...)`` from
    :class:`bandits.settings.Settings`):

    level : float, default 0.95
        Confidence level of the interval.
    interval : {"bounded", "analytic", "bootstrap"}, default "bounded"
        ``"bounded"``: the CLT / delta-method interval ``value +- z stderr`` joined with a
        Wilson-type score interval of the reward-weighted successes while they are few, and
        clipped to the reward range (:mod:`bandits.ope.intervals`).
        ``"analytic"``: the plain CLT / delta-method interval (no floor, no clipping).
        ``"bootstrap"``: Poisson(1) bootstrap percentile interval with ``n_bootstrap``
        replicates, ``stderr`` = standard deviation of the replicates
        (see :mod:`bandits.ope.bootstrap`), with the same floor and clipping as ``bounded``.
        Whatever the method, when a material share of the target's probability is on
        actions the log does not support, the interval is widened to contain the
        partial-identification bound (:mod:`bandits.ope.support`), ``identified`` is False
        and ``evidence`` says so.
    n_bootstrap : int, default 1000
    seed : int or None, default None
        Seed of ``numpy.random.default_rng`` for the bootstrap; the same seed gives the same
        interval for the same data.

    Data go to :meth:`estimate` / :meth:`partial` only. Shapes: ``reward``, ``action``,
    ``propensity`` (n,) -- ``propensity[i]`` is the logging probability of the logged action
    ``action[i]``; ``target_probs`` (n, K) = ``pi[i, k]``, the target policy's probability of
    action k in round i; ``reward_hat`` (n, K) = ``q[i, k]``, a reward model's prediction;
    ``logging_probs`` (n, K), optional full logging distribution (used for the
    ``unsupported_target_mass`` diagnostic, and as the propensity source when ``propensity`` is
    omitted).

    Data-level options of :meth:`estimate` / :meth:`partial`: ``reward_range`` ``(r_min,
    r_max)`` (default: [0, 1] if every reward is in it, else the observed range) and
    ``support_floor`` (default ``0.1 / K``); ``check_propensities=False`` skips the per-action
    propensity check (for propensities estimated from the same log, which it cannot test).

    Edge cases: ``n == 0`` raises ``ValueError``; ``n == 1`` returns the (finite) value with
    ``stderr = inf`` and interval ``(-inf, inf)`` (``analytic``; the reward range otherwise)
    -- one round says nothing about the spread; self-normalised estimators whose weights are
    all 0 (no support) also get the infinite interval, with the ratio part defined as 0.
    Valid input never yields NaN.

    Class attributes: ``name`` (registry name), ``requires_reward_hat``,
    ``requires_propensity``, ``flag_name`` (diagnostic reported as a fraction of rounds),
    ``self_normalised`` (reward weights are rescaled by ``n / Σw``), ``model_dependent``
    (the interval does not cover the reward model's bias).
    """

    name: ClassVar[str] = "base"
    requires_reward_hat: ClassVar[bool] = False
    requires_propensity: ClassVar[bool] = True
    flag_name: ClassVar[str | None] = None
    self_normalised: ClassVar[bool] = False
    model_dependent: ClassVar[bool] = False

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.level = level
        self.interval = interval
        self.n_bootstrap = n_bootstrap
        self.seed = seed

    # ------------------------------------------------------------------ settings
    # get_settings / get_params, set_params, clone and repr come from bandits.settings.Settings
    def _owner(self) -> str:
        return f"estimator '{self.name}'"

    def _is_fitted(self) -> bool:
        return True  # an estimator learns nothing: a missing attribute is a plain AttributeError

    def _check_params(self) -> None:
        """Validate settings (called by estimate / partial / finalize). Subclasses extend."""
        normal_quantile(self.level)  # raises for level outside (0, 1)
        if self.interval not in INTERVALS:
            raise ConfigError(f"interval must be one of {INTERVALS}, got {self.interval!r}")
        if (
            isinstance(self.n_bootstrap, bool)
            or not isinstance(self.n_bootstrap, numbers.Integral)
            or self.n_bootstrap < 2
        ):
            raise ConfigError(f"n_bootstrap must be an integer >= 2, got {self.n_bootstrap!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
        ):
            raise ConfigError(f"seed must be an int or None, got {self.seed!r}")

    def _term_params(self) -> tuple[tuple[str, Any], ...]:
        """Settings that change the per-round terms (stored in and checked against Stats)."""
        return tuple(
            (k, v) for k, v in sorted(self.get_params().items()) if k not in _INTERVAL_PARAMS
        )

    # ------------------------------------------------------------------ per-round terms
    @abc.abstractmethod
    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        """Per-round ``(D, C, B)`` and the number of rounds whose weight was modified."""

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64] | None:
        """``ω`` (n,): the coefficient of ``r_i`` in the per-round term (raw ``w`` for
        self-normalised estimators), or ``None`` when rewards do not enter the value."""
        return None

    # ------------------------------------------------------------------ public API
    def _validate(
        self,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None,
        logging_probs: ArrayLike | None,
        **options: Any,
    ) -> LoggedData:
        self._check_params()
        return validate_logged_data(
            reward=reward,
            action=action,
            propensity=propensity,
            target_probs=target_probs,
            reward_hat=reward_hat,
            logging_probs=logging_probs,
            require_propensity=self.requires_propensity,
            require_reward_hat=self.requires_reward_hat,
            estimator=type(self).__name__,
            **options,
        )

    def _stats(self, data: LoggedData) -> tuple[Stats, Columns]:
        """Statistics and per-round columns of validated data. The shared per-round
        quantities (weights, ``sum_k pi q``, gathers) are cached on ``data``, so several
        estimators on the same ``data`` compute them once (see :func:`estimate_many`)."""
        columns, n_flagged = self._columns(data)
        n, k = data.n, data.n_actions
        means, comoments = Stats.column_moments(n, columns)
        if data.propensity is not None:
            n_weighted, sum_w, sum_w2, max_w = n, *data.weight_sums
        else:
            n_weighted, sum_w, sum_w2, max_w = 0, 0.0, 0.0, 0.0
        omega = self._reward_weights(data)
        reward_weight_sums = None
        if omega is None:
            pass
        elif omega is data.importance_weights:  # IPS, SNIPS, DR, SNDR: shared
            reward_weight_sums = data.weight_reward_sums
        else:
            omega_r = omega * data.reward
            reward_weight_sums = np.array(
                [np.sum(omega), np.dot(omega, omega), np.sum(omega_r), np.dot(omega, omega_r)]
            )
        stats = Stats(
            estimator=self.name,
            params=self._term_params(),
            n=n,
            n_actions=k,
            means=means,
            comoments=comoments,
            n_weighted=n_weighted,
            sum_w=sum_w,
            sum_w2=sum_w2,
            max_w=float(max_w),
            n_flagged=int(n_flagged),
            action_counts=data.action_counts.copy(),
            reward_weight_sums=reward_weight_sums,
            support=data.support if data.propensity is not None else None,
            flag_name=self.flag_name,
            reward_range=data.reward_range,
        )
        return stats, columns

    def _prepare(
        self,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None,
        logging_probs: ArrayLike | None,
        **options: Any,
    ) -> tuple[Stats, Columns]:
        data = self._validate(
            reward, action, propensity, target_probs, reward_hat, logging_probs, **options
        )
        return self._stats(data)

    def partial(
        self,
        *,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None = None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None = None,
        logging_probs: ArrayLike | None = None,
        reward_range: tuple[float, float] | None = None,
        support_floor: float | None = None,
        check_propensities: bool = True,
    ) -> Stats:
        """Mergeable sufficient statistics of this partition of the log (same data arguments
        as :meth:`estimate`). Combine partitions with ``Stats.merge`` / ``+`` / ``sum``."""
        stats, _ = self._prepare(
            reward,
            action,
            propensity,
            target_probs,
            reward_hat,
            logging_probs,
            reward_range=reward_range,
            support_floor=support_floor,
            check_propensities=check_propensities,
        )
        return stats

    def finalize(self, stats: Stats) -> Estimate:
        """Estimate with an analytic (``analytic``) or bounded (otherwise) interval from
        (merged) statistics of this estimator."""
        self._check_params()
        if stats.estimator != self.name or stats.params != self._term_params():
            raise ValueError(
                f"Stats come from {stats.estimator}{dict(stats.params)}, "
                f"not from {self.name}{dict(self._term_params())}"
            )
        value, stderr = stats.value, stats.stderr
        if math.isinf(stderr):
            ci_low, ci_high = -math.inf, math.inf
        else:
            half = normal_quantile(self.level) * stderr
            ci_low, ci_high = value - half, value + half
        kind = "analytic" if self.interval == "analytic" else "bounded"
        return self._complete(stats, value, stderr, ci_low, ci_high, kind)

    def _score_floor(
        self, stats: Stats, reward_range: tuple[float, float], z: float
    ) -> tuple[float, float, float] | None:
        """Score-floor half-widths and effective successes of this estimator's rewards."""
        raw = stats.reward_weight_sums
        if raw is None:
            return None
        s_w, s_w2, s_wr, s_w2r = (float(v) for v in raw)
        if self.self_normalised:
            if s_w <= 0.0:
                return None
            scale = stats.n / s_w
            s_w, s_w2, s_wr, s_w2r = stats.n, s_w2 * scale**2, s_wr * scale, s_w2r * scale**2
        max_weight = 1.0 / stats.support.floor if stats.support is not None else 1.0
        sums = (s_w, s_w2, s_wr, s_w2r)
        return weighted_success_floor(sums, stats.n, reward_range, z, max_weight)

    def _complete(
        self,
        stats: Stats,
        value: float,
        stderr: float,
        ci_low: float,
        ci_high: float,
        kind: str,
    ) -> Estimate:
        """The method's interval → score floor and clipping (unless ``analytic``) → widened to
        the support bound when the unsupported mass is material → evidence."""
        z = normal_quantile(self.level)
        sup = stats.support
        observed = (
            (sup.reward_min, sup.reward_max)
            if sup is not None
            else (stats.means[0], stats.means[0])  # DM without propensities: no reward range
        )
        reward_range = resolve_reward_range(stats.reward_range, *observed)
        diagnostics = stats.diagnostics()
        floor = self._score_floor(stats, reward_range, z)
        if floor is not None:
            diagnostics["effective_successes"] = floor[2]
        if kind != "analytic":
            if floor is not None and floor[2] < CLT_MIN_SUCCESSES:
                ci_low, ci_high = hull((ci_low, ci_high), (value - floor[0], value + floor[1]))
                diagnostics["score_floor_low"] = floor[0]
                diagnostics["score_floor_high"] = floor[1]
            if reward_range[1] > reward_range[0]:
                ci_low, ci_high = clip_to_range(ci_low, ci_high, reward_range)
        method_low, method_high = ci_low, ci_high
        bound_low = bound_high = None
        identified = True
        warnings: tuple[str, ...] = ()
        if sup is not None:
            unsupported = sup.material_unsupported_mass(z)
            bound_low, bound_high = sup.bound(z, reward_range)
            half = 0.5 * (ci_high - ci_low)
            span = reward_range[1] - reward_range[0]
            if math.isfinite(half) and unsupported * span > 0.25 * half:
                ci_low, ci_high = hull((ci_low, ci_high), (bound_low, bound_high))
                identified = False
            check = sup.propensity_check()
            warnings = (check,) if check else ()
            binary = reward_range[0] >= 0.0 and reward_range[1] <= 1.0
            evidence = assess_evidence(
                unsupported=unsupported,
                ess=diagnostics.get("ess"),
                n=stats.n,
                matched_successes=sup.matched_successes if binary else None,
                propensity_warning=check,
                floor=sup.floor,
            )
            level, reason = evidence.level, evidence.reason
        else:
            level, reason = "weak", "no propensities: the log's support for the target is unknown"
        return Estimate(
            estimator=self.name,
            value=value,
            stderr=stderr,
            ci_low=ci_low,
            ci_high=ci_high,
            n=stats.n,
            level=float(self.level),
            interval=kind,
            diagnostics=diagnostics,
            method_ci_low=method_low,
            method_ci_high=method_high,
            bound_low=bound_low,
            bound_high=bound_high,
            identified=identified,
            evidence=level,
            evidence_reason=reason,
            model_dependent=type(self).model_dependent,
            reward_range=reward_range,
            warnings=warnings,
        )

    def estimate(
        self,
        *,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None = None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None = None,
        logging_probs: ArrayLike | None = None,
        reward_range: tuple[float, float] | None = None,
        support_floor: float | None = None,
        check_propensities: bool = True,
    ) -> Estimate:
        """Estimate the target policy's value with an interval (see class docstring).

        Raises ``ValueError`` (one line naming the argument and first offending rows) for
        invalid data or settings.
        """
        stats, columns = self._prepare(
            reward,
            action,
            propensity,
            target_probs,
            reward_hat,
            logging_probs,
            reward_range=reward_range,
            support_floor=support_floor,
            check_propensities=check_propensities,
        )
        return self._estimate_from(stats, columns)

    def estimate_with_terms(
        self,
        *,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None = None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None = None,
        logging_probs: ArrayLike | None = None,
        reward_range: tuple[float, float] | None = None,
        support_floor: float | None = None,
        check_propensities: bool = True,
    ) -> tuple[Estimate, NDArray[np.float64]]:
        """:meth:`estimate` and the per-round influence terms ``psi`` (n,) whose mean is the
        value: ``psi_i = D_i + (C_i - R B_i) / mean(B)`` with ``R = mean(C) / mean(B)``
        (``D_i`` itself for mean-type estimators). Paired comparisons of several targets on
        the same rows difference these terms (:mod:`bandits.offline.ladder`)."""
        stats, columns = self._prepare(
            reward,
            action,
            propensity,
            target_probs,
            reward_hat,
            logging_probs,
            reward_range=reward_range,
            support_floor=support_floor,
            check_propensities=check_propensities,
        )
        d, c, b = columns
        n = stats.n
        psi = np.zeros(n) if d is None else np.array(d, dtype=np.float64, copy=True)
        if c is not None:
            b_bar = float(stats.means[2])
            if b_bar != 0.0:
                ratio = float(stats.means[1]) / b_bar
                b_col = np.ones(n) if b is None else b
                psi += ratio + (c - ratio * b_col) / b_bar
        return self._estimate_from(stats, columns), psi

    def _estimate_from(self, stats: Stats, columns: Columns) -> Estimate:
        if self.interval != "bootstrap":
            return self.finalize(stats)
        self._check_params()
        stderr, ci_low, ci_high = math.inf, -math.inf, math.inf
        if stats.n >= 2 and stats.means[2] != 0.0:
            rng = np.random.default_rng(self.seed)
            reps = bootstrap_replicates(columns, stats.n, int(self.n_bootstrap), rng)
            reps = reps[np.isfinite(reps)]
            if reps.size >= 2:
                stderr = float(np.std(reps, ddof=1))
                ci_low, ci_high = percentile_interval(reps, float(self.level))
        return self._complete(stats, stats.value, stderr, ci_low, ci_high, "bootstrap")


def _validate_many(ests: list[OffPolicyEstimator], data_kw: dict[str, Any]) -> LoggedData:
    for est in ests:
        if not isinstance(est, OffPolicyEstimator):
            raise TypeError(f"expected estimators, got {type(est).__name__}")
        est._check_params()
    needs_p = [e for e in ests if e.requires_propensity]
    needs_q = [e for e in ests if e.requires_reward_hat]
    if data_kw.get("reward_hat") is None and needs_q:
        named = type(needs_q[0]).__name__
    elif needs_p:
        named = type(needs_p[0]).__name__
    else:
        named = type(ests[0]).__name__
    return validate_logged_data(
        **data_kw,
        require_propensity=bool(needs_p),
        require_reward_hat=bool(needs_q),
        estimator=named,
    )


def estimate_many(
    estimators: Sequence[OffPolicyEstimator],
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike | None = None,
    target_probs: ArrayLike,
    reward_hat: ArrayLike | None = None,
    logging_probs: ArrayLike | None = None,
    reward_range: tuple[float, float] | None = None,
    support_floor: float | None = None,
    check_propensities: bool = True,
) -> list[Estimate]:
    """Several estimators on the same logged data, sharing the per-round work.

    Returns ``[est.estimate(...) for est in estimators]`` -- the very same numbers, since every
    estimator runs its own code on one validated :class:`~bandits.ope.validation.LoggedData`
    -- but the data are validated once and the quantities estimators have in common
    (importance weights ``w = pi[i, a_i] / p_i``, ``sum_k pi[i, k] q[i, k]``, ``w r``,
    ``w (r - q[i, a_i])``, weight sums, action counts) are computed once instead of once per
    estimator.

    Requirements are the union over ``estimators``: ``propensity`` (or ``logging_probs``)
    if any estimator needs it, ``reward_hat`` if any needs it; errors name the first
    estimator that needs the missing argument. Settings are checked before any data work.
    """
    ests = list(estimators)
    if not ests:
        return []
    data = _validate_many(
        ests,
        dict(
            reward=reward,
            action=action,
            propensity=propensity,
            target_probs=target_probs,
            reward_hat=reward_hat,
            logging_probs=logging_probs,
            reward_range=reward_range,
            support_floor=support_floor,
            check_propensities=check_propensities,
        ),
    )
    out = []
    for est in ests:
        stats, columns = est._stats(data)
        out.append(est._estimate_from(stats, columns))
    return out


def partial_many(
    estimators: Sequence[OffPolicyEstimator],
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike | None = None,
    target_probs: ArrayLike,
    reward_hat: ArrayLike | None = None,
    logging_probs: ArrayLike | None = None,
    reward_range: tuple[float, float] | None = None,
    support_floor: float | None = None,
    check_propensities: bool = True,
) -> list[Stats]:
    """``[est.partial(...) for est in estimators]`` on one partition of a log, sharing the
    per-round work as :func:`estimate_many` does (same numbers). Merge each estimator's list
    of partition statistics with ``Stats.merge`` / ``sum`` and call ``est.finalize``."""
    ests = list(estimators)
    if not ests:
        return []
    data = _validate_many(
        ests,
        dict(
            reward=reward,
            action=action,
            propensity=propensity,
            target_probs=target_probs,
            reward_hat=reward_hat,
            logging_probs=logging_probs,
            reward_range=reward_range,
            support_floor=support_floor,
            check_propensities=check_propensities,
        ),
    )
    return [est._stats(data)[0] for est in ests]
