"""Off-policy evaluation (OPE) for contextual bandits: numpy estimators with intervals.

Quick use::

    from bandits.ope import IPS, DR
    IPS().estimate(reward=r, action=a, propensity=p, target_probs=pi)
    DR(interval="bootstrap", seed=0).estimate(
        reward=r, action=a, propensity=p, target_probs=pi, reward_hat=q
    )

Shapes: ``r, a, p`` (n,), ``pi, q`` (n, K). Every estimator returns an :class:`Estimate`
(value, stderr, interval, diagnostics). Huge logs: ``stats = est.partial(...)`` per partition,
``est.finalize(sum(stats_list))``. Several estimators on the same data:
``estimate_many([IPS(), SNIPS(), DR()], reward=r, ...)`` computes the shared per-round
quantities once and returns the same estimates (``partial_many`` likewise for
partitions). All estimator classes are registered in :data:`ESTIMATORS`.

Modules: :mod:`~bandits.ope.estimators` (DM, IPS, SNIPS, DR, SNDR, SwitchDR, DRos),
:mod:`~bandits.ope.base` (shared API), :mod:`~bandits.ope.estimate` (Estimate, Stats,
analytic intervals), :mod:`~bandits.ope.bootstrap`, :mod:`~bandits.ope.validation`,
:mod:`~bandits.ope.registry`, :mod:`~bandits.ope.reward_models` (ridge / logistic per-action
models and cross-fitting).
"""

from bandits.ope.base import OffPolicyEstimator, estimate_many, partial_many
from bandits.ope.estimate import Estimate, Stats
from bandits.ope.estimators import DM, DR, IPS, SNDR, SNIPS, DRos, SwitchDR
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

__all__ = [
    "DM",
    "DR",
    "ESTIMATORS",
    "IPS",
    "SNDR",
    "SNIPS",
    "DRos",
    "Estimate",
    "LogisticRewardModel",
    "OffPolicyEstimator",
    "PooledLogisticRewardModel",
    "RidgeRewardModel",
    "Stats",
    "SwitchDR",
    "available_estimators",
    "cross_fit",
    "estimate_many",
    "make_estimator",
    "partial_many",
    "register_estimator",
]
