"""A policy learned from logged data: greedy on an importance-weighted ridge regression.

Each arm k has a ridge regression fitted on the rounds where k was logged, each round weighted
by ``w = min(1 / propensity, max_weight)``. Weighting by the inverse propensity makes the
per-arm regression target the reward under the context distribution of the whole log rather
than the logger's skewed one — the "linear policy on importance-weighted data" of offline
learning. Decisions are greedy on ``x·θ_k`` (ties split), mixed with ``epsilon``.
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Policy, ProblemSpec, one_hot_argmax
from bandits.policies.registry import register_policy


@register_policy("iw_linear")
class ImportanceWeightedLinear(Policy):
    """Greedy policy on per-arm ridge regressions ``θ_k = (ridge·I + Σ w x xᵀ)⁻¹ Σ w r x``
    with ``w = min(1/propensity, max_weight)`` summed over rounds where arm k was taken."""

    def __init__(
        self,
        ridge: float = 1.0,
        max_weight: float = 100.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.ridge = ridge
        self.max_weight = max_weight

    def _check_settings(self) -> None:
        super()._check_settings()
        if not float(self.ridge) > 0 or not float(self.max_weight) >= 1:
            raise ConfigError("policy.ridge must be > 0 and policy.max_weight ≥ 1")

    def _reset(self, spec: ProblemSpec) -> None:
        k, d = spec.n_actions, spec.features.dim
        self.A_ = np.broadcast_to(np.eye(d) * float(self.ridge), (k, d, d)).copy()
        self.b_ = np.zeros((k, d))
        self.theta_ = np.zeros((k, d))
        self.stale_ = np.zeros(k, bool)

    def _update(self, ctx, actions, rewards, propensities) -> None:
        w = np.minimum(1.0 / propensities, float(self.max_weight))
        X = ctx.X
        for k in np.unique(actions):  # a loop over arms, not rounds
            rows = actions == k
            Xw = X[rows] * w[rows, None]
            self.A_[k] += Xw.T @ X[rows]
            self.b_[k] += Xw.T @ rewards[rows]
            self.stale_[k] = True

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        for k in np.flatnonzero(self.stale_):
            self.theta_[k] = np.linalg.solve(self.A_[k], self.b_[k])
            self.stale_[k] = False
        return one_hot_argmax(ctx.X @ self.theta_.T)
