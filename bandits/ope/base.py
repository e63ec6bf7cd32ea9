"""Common machinery of all off-policy estimators: settings, validation, partial/finalize.

An estimator subclass only implements :meth:`OffPolicyEstimator._columns`, which maps validated
data to the per-round ``(D, C, B)`` of the common form ``V = mean(D) + mean(C) / mean(B)``
(see :mod:`bandits.ope.estimate`). Everything else -- statistics, merging, analytic and
bootstrap intervals, diagnostics -- is shared, so ``estimate(...)`` is literally
``finalize(partial(...))`` for analytic intervals.
"""

from __future__ import annotations

import abc
import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bandits.ope.bootstrap import bootstrap_replicates
from bandits.ope.estimate import Estimate, Stats, normal_quantile, percentile_interval
from bandits.ope.validation import LoggedData, validate_logged_data

__all__ = ["Columns", "OffPolicyEstimator", "estimate_many", "partial_many"]

Columns = tuple[NDArray[np.float64] | None, NDArray[np.float64] | None, NDArray[np.float64] | None]
"""Per-round ``(D, C, B)``, each (n,) or ``None`` for the constants 0, 0, 1."""

INTERVALS = ("analytic", "bootstrap")
_INTERVAL_PARAMS = frozenset({"level", "interval", "n_bootstrap", "seed"})


class OffPolicyEstimator(abc.ABC):
    """Base class: estimate the expected reward of a target policy from a logged bandit log.

    Settings (constructor only stores them, sklearn-style; validated when used):

    level : float, default 0.95
        Confidence level of the interval.
    interval : {"analytic", "bootstrap"}, default "analytic"
        ``"analytic"``: CLT / delta-method normal interval ``value +- z stderr``.
        ``"bootstrap"``: Poisson(1) bootstrap percentile interval with ``n_bootstrap``
        replicates, ``stderr`` = standard deviation of the replicates
        (see :mod:`bandits.ope.bootstrap`).
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

    Edge cases: ``n == 0`` raises ``ValueError``; ``n == 1`` returns the (finite) value with
    ``stderr = inf`` and interval ``(-inf, inf)`` -- one round says nothing about the spread;
    self-normalised estimators whose weights are all 0 (no support) also get the infinite
    interval, with the ratio part defined as 0. Valid input never yields NaN.

    Class attributes: ``name`` (registry name), ``requires_reward_hat``,
    ``requires_propensity``, ``flag_name`` (diagnostic reported as a fraction of rounds).
    """

    name: ClassVar[str] = "base"
    requires_reward_hat: ClassVar[bool] = False
    requires_propensity: ClassVar[bool] = True
    flag_name: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "analytic",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.level = level
        self.interval = interval
        self.n_bootstrap = n_bootstrap
        self.seed = seed

    # ------------------------------------------------------------------ settings
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor settings as a flat dict (``type(est)(**est.get_params())`` clones)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor settings by name; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no setting {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        """Validate settings (called by estimate / partial / finalize). Subclasses extend."""
        normal_quantile(self.level)  # raises for level outside (0, 1)
        if self.interval not in INTERVALS:
            raise ValueError(f"interval must be one of {INTERVALS}, got {self.interval!r}")
        if (
            isinstance(self.n_bootstrap, bool)
            or not isinstance(self.n_bootstrap, numbers.Integral)
            or self.n_bootstrap < 2
        ):
            raise ValueError(f"n_bootstrap must be an integer >= 2, got {self.n_bootstrap!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
        ):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    def _term_params(self) -> tuple[tuple[str, Any], ...]:
        """Settings that change the per-round terms (stored in and checked against Stats)."""
        return tuple(
            (k, v) for k, v in sorted(self.get_params().items()) if k not in _INTERVAL_PARAMS
        )

    # ------------------------------------------------------------------ per-round terms
    @abc.abstractmethod
    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        """Per-round ``(D, C, B)`` and the number of rounds whose weight was modified."""

    # ------------------------------------------------------------------ public API
    def _validate(
        self,
        reward: ArrayLike,
        action: ArrayLike,
        propensity: ArrayLike | None,
        target_probs: ArrayLike,
        reward_hat: ArrayLike | None,
        logging_probs: ArrayLike | None,
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
        action_counts = data.action_counts
        target_mass = np.zeros(k)
        unsupported = 0.0
        if data.logging_probs is None:
            absent = np.flatnonzero(action_counts == 0)  # usually empty: no pass over pi
            if absent.size:
                target_mass[absent] = data.target_probs[:, absent].sum(axis=0)
        else:
            unsupported = data.unsupported_mass
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
            action_counts=action_counts.copy(),
            target_mass=target_mass,
            unsupported_mass=unsupported,
            flag_name=self.flag_name,
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
    ) -> tuple[Stats, Columns]:
        data = self._validate(reward, action, propensity, target_probs, reward_hat, logging_probs)
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
    ) -> Stats:
        """Mergeable sufficient statistics of this partition of the log (same data arguments
        as :meth:`estimate`). Combine partitions with ``Stats.merge`` / ``+`` / ``sum``."""
        stats, _ = self._prepare(
            reward, action, propensity, target_probs, reward_hat, logging_probs
        )
        return stats

    def finalize(self, stats: Stats) -> Estimate:
        """Estimate with an analytic interval from (merged) statistics of this estimator."""
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
        return Estimate(
            estimator=self.name,
            value=value,
            stderr=stderr,
            ci_low=ci_low,
            ci_high=ci_high,
            n=stats.n,
            level=float(self.level),
            interval="analytic",
            diagnostics=stats.diagnostics(),
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
    ) -> Estimate:
        """Estimate the target policy's value with an interval (see class docstring).

        Raises ``ValueError`` (one line naming the argument and first offending rows) for
        invalid data or settings.
        """
        stats, columns = self._prepare(
            reward, action, propensity, target_probs, reward_hat, logging_probs
        )
        return self._estimate_from(stats, columns)

    def _estimate_from(self, stats: Stats, columns: Columns) -> Estimate:
        result = self.finalize(stats)
        if self.interval == "analytic":
            return result
        stderr, ci_low, ci_high = math.inf, -math.inf, math.inf
        if stats.n >= 2 and stats.means[2] != 0.0:
            rng = np.random.default_rng(self.seed)
            reps = bootstrap_replicates(columns, stats.n, int(self.n_bootstrap), rng)
            reps = reps[np.isfinite(reps)]
            if reps.size >= 2:
                stderr = float(np.std(reps, ddof=1))
                ci_low, ci_high = percentile_interval(reps, float(self.level))
        return Estimate(
            estimator=result.estimator,
            value=result.value,
            stderr=stderr,
            ci_low=ci_low,
            ci_high=ci_high,
            n=result.n,
            level=result.level,
            interval="bootstrap",
            diagnostics=result.diagnostics,
        )


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
        ),
    )
    return [est._stats(data)[0] for est in ests]
