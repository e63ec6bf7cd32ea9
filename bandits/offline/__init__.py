"""Evaluating policies on logged data: off-policy estimates for fixed policies, replay for
learning policies, and offline training on a log (evaluated on held-out rows)."""

from bandits.offline.evaluate import (
    PolicyEvaluation,
    contexts_of,
    evaluate_policy,
    evaluate_stream,
    fit_reward_model,
    make_estimators,
    require_rows,
    true_q,
)
from bandits.offline.replay import ReplayResult, replay
from bandits.offline.train import split_log, train_offline

__all__ = [
    "PolicyEvaluation",
    "ReplayResult",
    "contexts_of",
    "evaluate_policy",
    "evaluate_stream",
    "fit_reward_model",
    "make_estimators",
    "replay",
    "require_rows",
    "split_log",
    "train_offline",
    "true_q",
]
