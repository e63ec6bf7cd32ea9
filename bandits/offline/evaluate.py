"""Off-policy evaluation of a fixed policy on a decision log.

The target policy's probabilities on every logged context, ``pi (n, K)``, go to each
estimator together with the logged ``reward``, ``action`` and ``propensity`` and, for the
model-based estimators, a reward model's predictions ``q (n, K)`` (cross-fitted by default).
The full logging distribution for the support diagnostics is the log's ``action_probs`` when
it has them, else :func:`bandits.ope.support.logging_support` built from the propensities
(and an estimated logging policy when the propensities themselves were estimated); which one
is recorded as ``support_source``. When the log carries the simulator's ground truth
(``true_expected_reward``), the target's true value ``mean_i Σ_k pi[i, k] q*[i, k]`` is
reported next to the estimates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bandits.data.contract import LoggedData
from bandits.errors import ConfigError, DataError
from bandits.ope import ESTIMATORS, Estimate, OffPolicyEstimator, Stats, make_estimator
from bandits.ope.base import partial_many
from bandits.ope.reward_models import (
    LogisticRewardModel,
    PooledLogisticRewardModel,
    RewardModel,
    RidgeRewardModel,
    action_feature_matrix,
    cross_fit,
)
from bandits.ope.support import EVIDENCE_LEVELS, logging_support
from bandits.policies.base import Contexts, Policy

TRUTH_COLUMN = "true_expected_reward"
REWARD_MODELS: dict[str, type] = {
    "ridge": RidgeRewardModel,
    "logistic": LogisticRewardModel,
    "pooled_logistic": PooledLogisticRewardModel,
}
BOUNDED_MODELS = ("logistic", "pooled_logistic")
SUPPORT_SOURCES = ("action_probs", "propensities", "estimated")


@dataclass
class PolicyEvaluation:
    """Estimates of one target policy's value on one log.

    ``estimates`` maps estimator name to its :class:`~bandits.ope.Estimate`; ``true_value``
    is the exact value when the log has simulator ground truth, else None.
    """

    policy: str
    n: int
    estimates: dict[str, Estimate]
    true_value: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    support_source: str = "action_probs"

    @property
    def evidence(self) -> tuple[str, str]:
        """The weakest ``(level, reason)`` over the estimates (they share the log's support)."""
        worst = max(
            self.estimates.values(),
            key=lambda e: EVIDENCE_LEVELS.index(e.evidence),
            default=None,
        )
        if worst is None:
            return "insufficient", "no estimates"
        return worst.evidence, worst.evidence_reason

    @property
    def warnings(self) -> list[str]:
        """Distinct data warnings raised by the estimates (e.g. the propensity check)."""
        seen: dict[str, None] = {}
        for est in self.estimates.values():
            seen.update(dict.fromkeys(est.warnings))
        return list(seen)

    def table(self) -> pl.DataFrame:
        """One row per estimator: value, stderr, interval and diagnostics."""
        rows = []
        for name, est in self.estimates.items():
            rows.append(
                {
                    "policy": self.policy,
                    "estimator": name,
                    "value": est.value,
                    "stderr": est.stderr,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "interval": est.interval,
                    "method_ci_low": est.method_ci_low,
                    "method_ci_high": est.method_ci_high,
                    "bound_low": est.bound_low,
                    "bound_high": est.bound_high,
                    "identified": est.identified,
                    "model_dependent": est.model_dependent,
                    "evidence": est.evidence,
                    "n": est.n,
                    **{k: float(v) for k, v in est.diagnostics.items()},
                    "true_value": self.true_value,
                }
            )
        return pl.DataFrame(rows)

    def metrics(self) -> dict[str, float]:
        """Flat metrics for tracking: ``<estimator>.value``, ``.ci_low``, ``.ess``, …"""
        out: dict[str, float] = {}
        for name, est in self.estimates.items():
            out.update(
                {
                    f"{name}.value": est.value,
                    f"{name}.stderr": est.stderr,
                    f"{name}.ci_low": est.ci_low,
                    f"{name}.ci_high": est.ci_high,
                    f"{name}.identified": float(est.identified),
                }
            )
            for key in ("method_ci_low", "method_ci_high", "bound_low", "bound_high"):
                if getattr(est, key) is not None:
                    out[f"{name}.{key}"] = float(getattr(est, key))
            out.update({f"{name}.{k}": float(v) for k, v in est.diagnostics.items()})
        if self.true_value is not None:
            out["true_value"] = self.true_value
        out.update({f"seconds.{k}": v for k, v in self.timings.items()})
        return out


def logger_tags(data: LoggedData) -> dict[str, str]:
    """What the log says about its logger, as run tags: whether it looks deterministic given
    a few context columns (:func:`bandits.ope.propensity.detect_deterministic`; the words go
    to ``logger``), and where the propensities came from (``propensity_source``, plus the
    fitted model when they were estimated)."""
    from bandits.ope.propensity import detect_deterministic

    report = detect_deterministic(data.frame, data.action, data.context_columns)
    tags = {
        "logger": report.message,
        "logger.deterministic": str(bool(report.is_deterministic)).lower(),
        "propensity_source": str(getattr(data, "propensity_source", "logged")),
    }
    model = getattr(data, "propensity_model", None)
    if model:
        tags["propensity_model"] = str(model)[:5000]
    return tags


def describe_estimate(est: Estimate, *, bound: bool = True) -> str:
    """One console line: value, interval (with what it rests on), and the support
    diagnostics ESS, max / mean weight, unsupported mass and the evidence level.
    ``bound=False`` leaves out the support-bound label (when the caller says it once)."""
    d = est.diagnostics
    nan = float("nan")
    labels = []
    if not est.identified and bound:
        labels.append(
            f"widened to the support bound [{est.bound_low:.4f}, {est.bound_high:.4f}]: the "
            f"value {est.value:.4f} is an extrapolation"
        )
    if est.model_dependent:
        labels.append("model-dependent: the interval leaves out the reward model's bias")
    for key in ("switched_fraction", "clipped_fraction"):
        if d.get(key, 0.0) > 0:
            labels.append(f"{key.removesuffix('_fraction')} {100 * d[key]:.0f}% of rows")
    support = (
        f"ess {d.get('ess', nan):,.0f}, max w {d.get('max_weight', nan):,.1f}, "
        f"mean w {d.get('mean_weight', nan):.2f}, "
        f"unsupported {100 * d.get('unsupported_target_mass', 0.0):.1f}%"
    )
    line = (
        f"{est.estimator:<10} {est.value:.4f}  [{est.ci_low:.4f}, {est.ci_high:.4f}]  "
        f"{support}; evidence {est.evidence}"
    )
    return line + (f"  ({'; '.join(labels)})" if labels else "")


#: Fewest rows any part of a log may have for an estimate (intervals need a spread).
MIN_ROWS = 10


def require_rows(n: int, part: str, cross_fit_folds: int = 0) -> None:
    """DataError when ``part`` of a log (``n`` rows) is too small for an estimate: fewer
    than :data:`MIN_ROWS`, or fewer than 2 rows per fold when the reward model is
    cross-fitted with ``cross_fit_folds ≥ 2``."""
    folds = cross_fit_folds if cross_fit_folds >= 2 else 0
    need = max(MIN_ROWS, 2 * folds)
    if n < need:
        why = (
            f" (cross-fitting {folds} folds needs 2 rows per fold)" if 2 * folds > MIN_ROWS else ""
        )
        raise DataError(
            f"{part} has {n:,} row{'s' if n != 1 else ''}; at least {need} are needed{why}"
        )


def make_estimators(
    names: Sequence[str], level: float = 0.95, interval: str = "bounded", seed: int = 0
) -> list[OffPolicyEstimator]:
    """Estimators by registry name (``ips``, ``snips``, ``dm``, ``dr``, …)."""
    out = []
    for name in names:
        key = str(name).lower()
        if key not in ESTIMATORS:
            raise ConfigError(
                f"unknown estimator '{name}' (known: {', '.join(sorted(ESTIMATORS))})"
            )
        out.append(make_estimator(key, level=level, interval=interval, seed=seed))
    return out


def contexts_of(data: LoggedData) -> Contexts:
    """The log's contexts bound to its feature matrix ``X (n, d)``."""
    return data.problem_spec().contexts(data.frame)


def true_q(data: LoggedData) -> np.ndarray | None:
    """``(n, K)`` ground-truth expected rewards if the log has them (simulated logs)."""
    if TRUTH_COLUMN not in data.frame.columns:
        return None
    q = data.frame[TRUTH_COLUMN].to_numpy()
    return np.asarray(q, dtype=np.float64).reshape(data.n, data.n_actions)


def support_probs(data: LoggedData) -> tuple[np.ndarray, str]:
    """The full logging distribution the support diagnostics use, ``(n, K)``, and its source
    (one of :data:`SUPPORT_SOURCES`): the log's ``action_probs``; else built from the logged
    propensities (:func:`bandits.ope.support.logging_support`), spread by the estimated
    logging policy when the propensities were estimated."""
    if data.logging_probs is not None:
        source = getattr(data, "propensity_source", "logged")
        return data.logging_probs, "estimated" if source == "estimated" else "action_probs"
    return logging_support(data.action, data.propensity, data.n_actions), "propensities"


def resolve_reward_model(kind: str, reward: np.ndarray) -> str:
    """``auto`` → ``pooled_logistic`` (bounded predictions, one model over all variants with
    the catalog's variant features, so a rarely shown variant borrows strength) when every
    reward is in [0, 1] (clicks, conversions), else ``ridge``; other names are checked
    against :data:`REWARD_MODELS`."""
    bounded = reward.min() >= 0.0 and reward.max() <= 1.0
    if kind == "auto":
        return "pooled_logistic" if bounded else "ridge"
    if kind not in REWARD_MODELS:
        raise ConfigError(
            f"unknown reward model '{kind}' (known: auto, {', '.join(REWARD_MODELS)})"
        )
    if kind in BOUNDED_MODELS and not bounded:
        raise ConfigError(
            f"reward_model.kind={kind} needs rewards in [0, 1]; this log's range is "
            f"[{reward.min():g}, {reward.max():g}] (use ridge or auto)"
        )
    return kind


def reward_model_factory(
    data: LoggedData, model: str = "auto", alpha: float = 1.0
) -> Callable[[], RewardModel]:
    """A factory of unfitted reward models of kind ``model`` (resolved on ``data``'s
    rewards) for the log's catalog: the pooled model gets the catalog's variant features."""
    kind = resolve_reward_model(model, data.reward)
    if kind == "pooled_logistic":
        features = action_feature_matrix(data.catalog)
        action_features = features if features.shape[1] else None
        return lambda: PooledLogisticRewardModel(action_features=action_features, alpha=alpha)
    cls = REWARD_MODELS[kind]
    return lambda: cls(alpha=alpha)


def fit_reward_model(
    data: LoggedData,
    X: np.ndarray,
    model: str = "auto",
    alpha: float = 1.0,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Predictions ``q_hat (n, K)`` of a reward model on the log's features; ``folds ≥ 2``
    cross-fits (each fold predicted by a model fitted on the others). ``model="auto"``: see
    :func:`resolve_reward_model`."""
    if folds and folds >= 2:
        factory = reward_model_factory(data, model, alpha)
        return cross_fit(
            factory, X, data.action, data.reward, data.n_actions, n_folds=folds, seed=seed
        )
    return fitted_reward_model(data, X, model, alpha).predict(X)


def fitted_reward_model(
    data: LoggedData, X: np.ndarray, model: str = "auto", alpha: float = 1.0
) -> RewardModel:
    """A reward model of kind ``model`` (:func:`reward_model_factory`) fitted on every row
    of ``data`` (features ``X (n, d)``, the logged actions and rewards)."""
    factory = reward_model_factory(data, model, alpha)
    return factory().fit(X, data.action, data.reward, data.n_actions)


def evaluate_policy(
    data: LoggedData,
    policy: Policy,
    estimators: Sequence[OffPolicyEstimator],
    *,
    reward_model: str = "auto",
    reward_model_alpha: float = 1.0,
    cross_fit_folds: int = 5,
    seed: int = 0,
    ctx: Contexts | None = None,
    reward_hat: np.ndarray | None = None,
) -> PolicyEvaluation:
    """Estimate the value of ``policy`` (already bound to ``data.problem_spec()``; trained
    or not) on ``data`` with every estimator. ``ctx`` and ``reward_hat`` may be passed to
    share them across several target policies."""
    timings: dict[str, float] = {}
    ctx = ctx if ctx is not None else contexts_of(data)
    t0 = time.perf_counter()
    pi = policy.action_probs(ctx)
    timings["target_probs"] = time.perf_counter() - t0
    needs_q = any(type(e).requires_reward_hat for e in estimators)
    if needs_q and reward_hat is None:
        t0 = time.perf_counter()
        reward_hat = fit_reward_model(
            data, ctx.X, reward_model, reward_model_alpha, cross_fit_folds, seed
        )
        timings["reward_model"] = time.perf_counter() - t0
    estimates: dict[str, Estimate] = {}
    t0 = time.perf_counter()
    mu, source = support_probs(data)
    for est in estimators:
        kwargs: dict[str, Any] = {"reward_hat": reward_hat} if type(est).requires_reward_hat else {}
        estimates[type(est).name] = est.estimate(
            reward=data.reward,
            action=data.action,
            propensity=data.propensity,
            target_probs=pi,
            logging_probs=mu,
            check_propensities=source != "estimated",
            reward_range=data.reward_range,
            **kwargs,
        )
    timings["estimators"] = time.perf_counter() - t0
    q_star = true_q(data)
    true_value = None if q_star is None else float((pi * q_star).sum(axis=1).mean())
    return PolicyEvaluation(policy.name, data.n, estimates, true_value, timings, source)


def batch_stats(
    estimators: Sequence[OffPolicyEstimator],
    batch: LoggedData,
    pi: np.ndarray,
    q: np.ndarray | None,
) -> list[Stats]:
    """Every estimator's sufficient statistics on one batch of a log (``pi (b, K)`` the
    target's probabilities, ``q (b, K)`` the reward model's predictions or None), the
    per-round work shared (:func:`bandits.ope.base.partial_many`)."""
    return partial_many(
        estimators,
        reward=batch.reward,
        action=batch.action,
        propensity=batch.propensity,
        target_probs=pi,
        reward_hat=q,
        logging_probs=batch.logging_probs,
        reward_range=batch.reward_range,
    )


@dataclass
class StreamTotals:
    """Running totals of a log evaluated batch by batch: ``stats[j]`` estimator ``j``'s
    statistics merged over the batches (``Stats.merge``, in batch order), ``n`` rows, and
    ``truth_sum = Σ_i Σ_k pi[i, k] q*[i, k]`` over the ``truth_n`` rows that carry the
    simulator's truth (:func:`true_q`)."""

    stats: list[Stats] | None = None
    n: int = 0
    truth_sum: float = 0.0
    truth_n: int = 0

    def add(self, batch: LoggedData, pi: np.ndarray, parts: Sequence[Stats]) -> None:
        """Count ``batch`` (target probabilities ``pi (b, K)``) with its statistics
        ``parts`` (one per estimator, in estimator order)."""
        merged = self.stats
        self.stats = (
            list(parts)
            if merged is None
            else [a.merge(b) for a, b in zip(merged, parts, strict=True)]
        )
        q_star = true_q(batch)
        if q_star is not None:
            self.truth_sum += float((pi * q_star).sum())
            self.truth_n += batch.n
        self.n += batch.n

    @property
    def true_value(self) -> float | None:
        """``truth_sum / n`` when every row carried the truth, else None."""
        return self.truth_sum / self.truth_n if self.truth_n == self.n else None


def evaluate_stream(
    batches: Iterable[LoggedData],
    policy: Policy,
    estimators: Sequence[OffPolicyEstimator],
    *,
    reward_model: RewardModel | None = None,
    reward_model_kind: str = "auto",
    reward_model_alpha: float = 1.0,
) -> PolicyEvaluation:
    """Evaluate a fixed ``policy`` on a log too large for memory, batch by batch.

    Each batch contributes every estimator's mergeable sufficient statistics, the per-round
    work shared (:func:`batch_stats`: the numbers of ``estimator.partial`` one by one), which
    are merged (:class:`StreamTotals`) and finalised into the same estimates (analytic
    intervals) as on the whole log. ``policy`` must already be bound
    (``policy.reset(first_batch.problem_spec(), seed)``). The reward model for the
    model-based estimators is ``reward_model`` if given, else fitted on the first batch.
    Memory is bounded by the batch size.
    """
    totals = StreamTotals()
    needs_q = any(type(e).requires_reward_hat for e in estimators)
    timings = {"target_probs": 0.0, "reward_model": 0.0, "estimators": 0.0}
    for batch in batches:
        ctx = contexts_of(batch)
        t0 = time.perf_counter()
        pi = policy.action_probs(ctx)
        timings["target_probs"] += time.perf_counter() - t0
        q = None
        if needs_q:
            t0 = time.perf_counter()
            if reward_model is None:
                reward_model = fitted_reward_model(
                    batch, ctx.X, reward_model_kind, reward_model_alpha
                )
            q = reward_model.predict(ctx.X)
            timings["reward_model"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        source = "action_probs" if batch.logging_probs is not None else "propensities"
        parts = batch_stats(estimators, batch, pi, q)
        timings["estimators"] += time.perf_counter() - t0
        totals.add(batch, pi, parts)
    if totals.n == 0 or totals.stats is None:
        raise ConfigError("the log stream yielded no rows")
    estimates = {type(e).name: e.finalize(s) for e, s in zip(estimators, totals.stats, strict=True)}
    # without action_probs a stream cannot build the full distribution before it has seen
    # every action, so the support comes from the importance-sampling identity
    return PolicyEvaluation(policy.name, totals.n, estimates, totals.true_value, timings, source)
