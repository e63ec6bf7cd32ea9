"""The personalization ladder on a decision log: every policy evaluated on the *same* rows
with the per-round terms of one off-policy estimator (doubly robust by default), so
differences are paired.

The terms come from the estimator itself (:meth:`bandits.ope.OffPolicyEstimator.
estimate_with_terms`), through the same validation, support diagnostics and intervals as
``evaluate``: for DR (Dudík et al. 2011)::

    phi_i(pi) = Σ_k pi[i, k] q[i, k] + pi[i, a_i] / mu_i * (r_i - q[i, a_i])

``mean(phi(A) - phi(B))`` is the DR estimate of ``V(A) - V(B)``; its interval comes from the
paired terms. Each rung also carries its estimate's evidence (a rung the log cannot identify
is ``unsupported`` in :func:`bandits.compare.compare_to_baseline`) and its score floor for
rare successes. Costs (e.g. ``unsubscribed``) get the same treatment with a cost model.
Learning policies are trained on the first ``train_fraction`` of the log and every policy is
evaluated on the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bandits.compare import PairedTerms
from bandits.data.contract import LoggedData
from bandits.offline.evaluate import contexts_of, fit_reward_model, support_probs, true_q
from bandits.offline.train import split_log, train_offline
from bandits.ope import Estimate, OffPolicyEstimator, make_estimator
from bandits.ope.estimate import normal_quantile
from bandits.ope.support import default_floor
from bandits.policies.base import Policy

GROUP_DIMENSIONS = ("segment", "channel", "weather", "daypart")


@dataclass(frozen=True)
class OfflineLadder:
    """Paired terms per rung, group labels, the evaluation rows and each rung's estimate."""

    terms: dict[str, PairedTerms]
    groups: dict[str, np.ndarray]
    test: LoggedData
    estimates: dict[str, Estimate]
    support_source: str


def pilot_remedy(estimate: Estimate, pi: np.ndarray, mu: np.ndarray) -> str:
    """What data would identify the target: the variants it uses where the log is silent."""
    floor = default_floor(pi.shape[1])
    silent = np.sum(np.where(mu < floor, pi, 0.0), axis=0)
    variants = int(np.count_nonzero(silent > 0.01 * max(float(silent.sum()), 1e-12)))
    if variants == 0:
        return "more rows where the log takes the target's choices"
    which = "this variant" if variants == 1 else f"each of these {variants} variants"
    return (
        f"a randomised pilot that shows {which} with probability >= {floor:.2g} in every "
        "context (e.g. epsilon >= 0.1 over them) would identify it"
    )


def offline_ladder(
    data: LoggedData,
    policies: Mapping[str, Policy],
    *,
    train_fraction: float = 0.5,
    seed: int = 0,
    reward_model: str = "auto",
    cross_fit_folds: int = 5,
    estimator: str | OffPolicyEstimator = "dr",
    level: float = 0.95,
    cost_column: str | None = "unsubscribed",
    dimensions: Sequence[str] = GROUP_DIMENSIONS,
) -> OfflineLadder:
    """Paired per-round terms of every policy on the evaluation rows, their group labels,
    the evaluation part of the log and each rung's estimate (with its support evidence).
    Non-learning policies need no training; learning ones are trained on the first
    ``train_fraction`` of rows (if no policy learns, all rows are used)."""
    est = make_estimator(estimator, level=level) if isinstance(estimator, str) else estimator
    learners = any(type(p).learns for p in policies.values())
    train, test = split_log(data, train_fraction) if learners else (None, data)
    spec = test.problem_spec()
    ctx = contexts_of(test)
    q = fit_reward_model(test, ctx.X, reward_model, folds=cross_fit_folds, seed=seed)
    mu, source = support_probs(test)
    cost = None
    if cost_column and cost_column in test.frame.columns:
        cost_data = replace(test, reward=test.costs(cost_column))
        q_cost = fit_reward_model(cost_data, ctx.X, reward_model, folds=cross_fit_folds, seed=seed)
        cost = (cost_data.reward, q_cost)
    q_star = true_q(test)
    z = normal_quantile(level)
    terms: dict[str, PairedTerms] = {}
    estimates: dict[str, Estimate] = {}
    for label, policy in policies.items():
        if type(policy).learns:
            assert train is not None
            train_offline(policy, train, seed)
        else:
            policy.reset(spec, seed)
        pi = policy.action_probs(ctx)
        common: dict[str, Any] = {
            "action": test.action,
            "propensity": test.propensity,
            "target_probs": pi,
            "check_propensities": source != "estimated",
        }
        estimate, value = est.estimate_with_terms(
            reward=test.reward,
            reward_hat=q,
            logging_probs=mu,
            reward_range=test.reward_range,
            **common,
        )
        truth = None if q_star is None else np.einsum("ik,ik->i", pi, q_star)
        cost_terms = None
        if cost is not None:
            _, cost_terms = est.estimate_with_terms(
                reward=cost[0], reward_hat=cost[1], logging_probs=mu, **common
            )
        floor = max(
            estimate.diagnostics.get("score_floor_low", 0.0),
            estimate.diagnostics.get("score_floor_high", 0.0),
        )
        terms[label] = PairedTerms(
            value=value,
            truth=truth,
            cost=cost_terms,
            evidence=estimate.evidence,
            reason=estimate.evidence_reason,
            floor_se=floor / z if math.isfinite(floor) else 0.0,
            remedy=pilot_remedy(estimate, pi, mu) if estimate.evidence == "insufficient" else "",
            interval=(estimate.ci_low, estimate.ci_high),
        )
        estimates[label] = estimate
    groups = {
        dim: test.frame[dim].cast(str).to_numpy().astype(object)
        for dim in dimensions
        if dim in test.frame.columns
    }
    return OfflineLadder(terms, groups, test, estimates, source)
