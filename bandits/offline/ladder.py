"""The personalization ladder on a decision log: every policy evaluated on the *same* rows
with doubly robust per-row terms, so differences are paired.

Per-row DR term of a target ``pi`` (Dudík et al. 2011)::

    phi_i(pi) = Σ_k pi[i, k] q[i, k] + pi[i, a_i] / mu_i * (r_i - q[i, a_i])

``mean(phi(A) - phi(B))`` is the DR estimate of ``V(A) - V(B)``; its interval comes from the
paired terms. Costs (e.g. ``unsubscribed``) get the same treatment with a cost model.
Learning policies are trained on the first ``train_fraction`` of the log and every policy is
evaluated on the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandits.compare import PairedTerms
from bandits.data.contract import LoggedData
from bandits.offline.evaluate import contexts_of, fit_reward_model, true_q
from bandits.offline.train import split_log, train_offline
from bandits.policies.base import Policy

GROUP_DIMENSIONS = ("segment", "channel", "weather", "daypart")


def dr_terms(
    reward: np.ndarray,
    action: np.ndarray,
    propensity: np.ndarray,
    target_probs: np.ndarray,
    reward_hat: np.ndarray,
) -> np.ndarray:
    """Per-row doubly robust terms ``(n,)`` (formula in the module docstring)."""
    rows = np.arange(reward.shape[0])
    direct = np.einsum("ik,ik->i", target_probs, reward_hat)
    w = target_probs[rows, action] / propensity
    return direct + w * (reward - reward_hat[rows, action])


def offline_ladder(
    data: LoggedData,
    policies: Mapping[str, Policy],
    *,
    train_fraction: float = 0.5,
    seed: int = 0,
    reward_model: str = "ridge",
    cost_column: str | None = "unsubscribed",
    dimensions: Sequence[str] = GROUP_DIMENSIONS,
) -> tuple[dict[str, PairedTerms], dict[str, np.ndarray], LoggedData]:
    """Paired DR terms of every policy on the evaluation rows, their group labels, and the
    evaluation part of the log. Non-learning policies need no training; learning ones are
    trained on the first ``train_fraction`` of rows (if no policy learns, all rows are used).
    """
    learners = any(type(p).learns for p in policies.values())
    train, test = split_log(data, train_fraction) if learners else (None, data)
    spec = test.problem_spec()
    ctx = contexts_of(test)
    q = fit_reward_model(test, ctx.X, reward_model, folds=2, seed=seed)
    cost = None
    if cost_column and cost_column in test.frame.columns:
        from dataclasses import replace

        cost_data = replace(test, reward=test.costs(cost_column))
        q_cost = fit_reward_model(cost_data, ctx.X, "ridge", folds=2, seed=seed)
        cost = (cost_data.reward, q_cost)
    q_star = true_q(test)
    terms: dict[str, PairedTerms] = {}
    for label, policy in policies.items():
        if type(policy).learns:
            assert train is not None
            train_offline(policy, train, seed)
        else:
            policy.reset(spec, seed)
        pi = policy.action_probs(ctx)
        value = dr_terms(test.reward, test.action, test.propensity, pi, q)
        truth = None if q_star is None else np.einsum("ik,ik->i", pi, q_star)
        cost_terms = (
            None if cost is None else dr_terms(cost[0], test.action, test.propensity, pi, cost[1])
        )
        terms[label] = PairedTerms(value=value, truth=truth, cost=cost_terms)
    groups = {
        dim: test.frame[dim].cast(str).to_numpy().astype(object)
        for dim in dimensions
        if dim in test.frame.columns
    }
    return terms, groups, test
