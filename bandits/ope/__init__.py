"""Off-policy evaluation (OPE) for contextual bandits: numpy estimators with intervals.

Quick use::

    from bandits.ope import IPS, DR
    IPS().estimate(reward=r, action=a, propensity=p, target_probs=pi)
    DR(interval="bootstrap", seed=0).estimate(
        reward=r, action=a, propensity=p, target_probs=pi, reward_hat=q
    )

Shapes: ``r, a, p`` (n,), ``pi, q`` (n, K). Every estimator returns an :class:`Estimate`
(value, stderr, interval, diagnostics) that also carries the log's support for the target:
the partial-identification bound (``bound_low``, ``bound_high``), whether the interval had to
be widened to it (``identified``), the ``evidence`` level with its reason, and whether the
interval leaves out a reward model's bias (``model_dependent``). Intervals default to
``"bounded"`` (valid for rare 0/1 rewards, clipped to the reward range); pass
``logging_probs`` (n, K) for exact support diagnostics.

Huge logs: ``stats = est.partial(...)`` per partition, ``est.finalize(sum(stats_list))``.
Several estimators on the same data: ``estimate_many([IPS(), SNIPS(), DR()], reward=r,
...)`` computes the shared per-round quantities once and returns the same estimates
(``partial_many`` likewise for partitions). All estimator classes are registered in
:data:`ESTIMATORS`.

Modules: :mod:`~bandits.ope.estimators` (DM, IPS, SNIPS, DR, SNDR, SwitchDR, DRos),
:mod:`~bandits.ope.base` (shared API), :mod:`~bandits.ope.estimate` (Estimate, Stats,
analytic intervals), :mod:`~bandits.ope.bootstrap`, :mod:`~bandits.ope.validation`,
:mod:`~bandits.ope.registry`, :mod:`~bandits.ope.reward_models` (ridge / logistic per-action
models, the pooled logistic model and cross-fitting), :mod:`~bandits.ope.intervals`
(bounded-reward intervals), :mod:`~bandits.ope.support` (support, bounds, propensity check,
evidence), :mod:`~bandits.ope.propensity` (estimating a logging policy).
"""

from bandits.ope.base import OffPolicyEstimator, estimate_many, partial_many
from bandits.ope.estimate import Estimate, Stats
from bandits.ope.estimators import DM, DR, IPS, SNDR, SNIPS, DRos, SwitchDR
from bandits.ope.intervals import INTERVALS
from bandits.ope.registry import (
    ESTIMATORS,
    available_estimators,
    make_estimator,
    register_estimator,
)
from bandits.ope.reward_models import (
    LogisticRewardModel,
    PooledLogisticRewardModel,
    RidgeRewardModel,
    cross_fit,
)
from bandits.ope.support import Evidence, SupportStats, assess_evidence, logging_support

__all__ = [
    "DM",
    "DR",
    "ESTIMATORS",
    "INTERVALS",
    "IPS",
    "SNDR",
    "SNIPS",
    "DRos",
    "Estimate",
    "Evidence",
    "LogisticRewardModel",
    "OffPolicyEstimator",
    "PooledLogisticRewardModel",
    "RidgeRewardModel",
    "Stats",
    "SupportStats",
    "SwitchDR",
    "assess_evidence",
    "available_estimators",
    "cross_fit",
    "estimate_many",
    "logging_support",
    "make_estimator",
    "partial_many",
    "register_estimator",
]
