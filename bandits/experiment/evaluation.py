"""What a policy would have earned on a decision log, as a library call.

**Modes.** ``fixed``: the policy as given, scored on every row by the off-policy estimators;
``train``: a learning policy trained on the first ``train_fraction`` of the log (in time
order) and scored on the rest; ``replay``: a learning policy replayed through the log
(:func:`bandits.offline.replay`); ``auto``: ``train`` for a policy that learns, else
``fixed``. **Seeds.** ``SeedSequence(seed).spawn(2)`` gives the policy's seed and the
replay's; the reward model's cross-fitting folds use ``seed`` itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from bandits.data.contract import LoggedData
from bandits.errors import ConfigError
from bandits.experiment.results import EvaluationResult
from bandits.offline import (
    PolicyEvaluation,
    evaluate_policy,
    evaluate_stream,
    make_estimators,
    replay,
    require_rows,
    split_log,
    train_offline,
)
from bandits.ope import OffPolicyEstimator
from bandits.policies.base import Policy

MODES = ("auto", "fixed", "train", "replay")
#: The estimators of the ``evaluate`` app's default configuration.
DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros")

Estimators = Sequence[str | OffPolicyEstimator]


def resolve_mode(policy: Policy, mode: str = "auto") -> str:
    """The mode a policy is evaluated in: ``auto`` → ``train`` for a learning policy, else
    ``fixed``; ConfigError for an unknown mode or ``train`` / ``replay`` of a policy that
    does not learn."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    if mode == "auto":
        return "train" if type(policy).learns else "fixed"
    if mode in ("train", "replay") and not type(policy).learns:
        raise ConfigError(f"mode={mode} needs a learning policy; '{policy.name}' does not learn")
    return mode


def estimators_of(
    estimators: Estimators,
    *,
    level: float = 0.95,
    interval: str = "bounded",
    seed: int = 0,
    required: bool = False,
) -> list[OffPolicyEstimator]:
    """Estimator objects from registry names (``ips``, ``dr``, …) or ready ones;
    ``required``: a ConfigError when there is none (every mode but replay needs one)."""
    names = [e for e in estimators if isinstance(e, str)]
    made = iter(make_estimators(names, level=level, interval=interval, seed=seed))
    ests = [next(made) if isinstance(e, str) else e for e in estimators]
    if required and not ests:
        raise ConfigError("estimators is empty: name at least one (e.g. [ips, dr])")
    return ests


def fixed_on_first_batch(policy: Policy, first: LoggedData, seed: int) -> Policy:
    """A fresh copy of the fixed ``policy`` bound to the catalog of a streamed log's first
    batch ``first`` with ``seed`` (the given object is not touched)."""
    fitted = policy.clone()
    fitted.bind(first.problem_spec(), int(seed))
    return fitted


def streamed_result(
    first: LoggedData, fitted: Policy, evaluation: PolicyEvaluation
) -> EvaluationResult:
    """The result of the fixed policy ``fitted`` (:func:`fixed_on_first_batch`) evaluated
    on a log read in batches (``first`` its first batch, ``evaluation.n`` its rows)."""
    return EvaluationResult(
        policy=fitted.name,
        mode="fixed",
        params=fitted.get_params(),
        data=first,
        evaluated=first,
        log_rows=evaluation.n,
        evaluation=evaluation,
        streamed=True,
        fitted_policy=fitted,
    )


def check_rows(data: LoggedData, mode: str, train_fraction: float, cross_fit_folds: int) -> None:
    """DataError when the log (or the part of it a mode uses) is too small for an estimate
    (:func:`bandits.offline.require_rows`); ``cross_fit_folds`` 0 when no estimator fits a
    reward model."""
    if mode == "train":
        train, evaluated = split_log(data, float(train_fraction))
        require_rows(train.n, "the training part of the log")
        require_rows(evaluated.n, "the evaluation part of the log", cross_fit_folds)
    else:
        require_rows(data.n, "the log", cross_fit_folds if mode == "fixed" else 0)


def evaluate_log(
    data: LoggedData,
    policy: Policy,
    *,
    mode: str = "auto",
    estimators: Estimators = DEFAULT_ESTIMATORS,
    level: float = 0.95,
    interval: str = "bounded",
    train_fraction: float = 0.5,
    reward_model: str = "auto",
    reward_model_alpha: float = 1.0,
    cross_fit_folds: int = 5,
    min_accepted: int = 500,
    seed: int = 1,
) -> EvaluationResult:
    """Evaluate a fresh copy of ``policy`` (same settings; the given object is not touched)
    on ``data`` in ``mode`` (see the module docstring) with ``estimators`` at interval
    ``level`` (``interval``: ``bounded`` | ``analytic`` | ``bootstrap``), the reward model
    ``reward_model`` (``auto`` | ``ridge`` | ``logistic`` | ``pooled_logistic``, ridge
    penalty ``reward_model_alpha``) cross-fitted over ``cross_fit_folds`` folds; replay says
    it cannot support a verdict below ``min_accepted`` accepted events. The fitted policy
    is ``result.fitted_policy``."""
    mode = resolve_mode(policy, mode)
    ests = estimators_of(
        estimators, level=level, interval=interval, seed=int(seed), required=mode != "replay"
    )
    check_rows(data, mode, train_fraction, int(cross_fit_folds) if ests else 0)
    fitted = policy.clone()
    policy_ss, replay_ss = np.random.SeedSequence(int(seed)).spawn(2)
    evaluated, replayed, evaluation = data, None, None
    if mode == "fixed":
        fitted.bind(data.problem_spec(), policy_ss)
    elif mode == "train":
        train, evaluated = split_log(data, float(train_fraction))
        train_offline(fitted, train, policy_ss)
    else:
        fitted.bind(data.problem_spec(), policy_ss)
        replayed = replay(data, fitted, seed=replay_ss, min_accepted=int(min_accepted))
    if mode != "replay":
        evaluation = evaluate_policy(
            evaluated,
            fitted,
            ests,
            reward_model=str(reward_model),
            reward_model_alpha=float(reward_model_alpha),
            cross_fit_folds=int(cross_fit_folds),
            seed=int(seed),
        )
    return EvaluationResult(
        policy=fitted.name,
        mode=mode,
        params=fitted.get_params(),
        data=data,
        evaluated=evaluated,
        log_rows=data.n,
        evaluation=evaluation,
        replay=replayed,
        fitted_policy=fitted,
    )


def evaluate_log_stream(
    batches: Iterable[LoggedData],
    policy: Policy,
    *,
    estimators: Estimators = DEFAULT_ESTIMATORS,
    level: float = 0.95,
    interval: str = "bounded",
    reward_model: str = "auto",
    reward_model_alpha: float = 1.0,
    seed: int = 1,
) -> EvaluationResult:
    """A fixed ``policy`` evaluated on a log read in batches
    (:func:`bandits.data.iter_log_batches`; bounded memory): every estimator's mergeable
    statistics over the batches (:func:`bandits.offline.evaluate_stream`), the reward model
    fitted on the first batch, the policy bound to the first batch's catalog with ``seed``.
    """
    ests = estimators_of(estimators, level=level, interval=interval, seed=int(seed), required=True)
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ConfigError("logs: the log has no rows")
    fitted = fixed_on_first_batch(policy, first, seed)
    evaluation = evaluate_stream(
        itertools.chain([first], batches),
        fitted,
        ests,
        reward_model_kind=str(reward_model),
        reward_model_alpha=float(reward_model_alpha),
    )
    return streamed_result(first, fitted, evaluation)
