"""Disjoint linear contextual bandits: LinUCB and linear Thompson sampling.

Each arm k has its own ridge regression of reward on the context features ``x (d,)``. Both
policies run their online loop and their replay in compiled code
(:mod:`bandits.policies.kernels.linear`, one function per scoring mode) with exact per-round
Sherman–Morrison updates by default; ``update_every > 1`` freezes the state for blocks of
rounds (batched updates, recorded in the run's params).
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.kernels import linear as kern
from bandits.policies.kernels.linear_ts import gauss_hermite_normal
from bandits.policies.kernels.sherman_morrison import sm_update
from bandits.policies.registry import register_policy


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


class _DisjointLinear(Policy):
    """Shared state: ``A_inv_ (K, d, d)`` = (ridge·I + Σ x xᵀ)⁻¹ per arm, ``b_ (K, d)`` =
    Σ r x and ``theta_ (K, d)`` = ``A_inv_ b_``."""

    def __init__(self, *, ridge: float = 1.0, epsilon: float = 0.0, update_every: int = 1) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.ridge = ridge

    def _check_settings(self) -> None:
        super()._check_settings()
        if not float(self.ridge) > 0:
            raise ConfigError(f"policy.ridge must be > 0, got {self.ridge}")

    def _reset(self, spec: ProblemSpec) -> None:
        k, d = spec.n_actions, spec.features.dim
        self.A_inv_ = np.ascontiguousarray(
            np.broadcast_to(np.eye(d) / float(self.ridge), (k, d, d))
        )
        self.b_ = np.zeros((k, d))
        self.theta_ = np.zeros((k, d))

    def _probs(self, ctx: Contexts, epsilon: float) -> np.ndarray:
        raise NotImplementedError

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx, 0.0)

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        """As :meth:`Policy.action_probs`, with the ε-mixing done in the kernel (same
        :func:`bandits.policies.sampling.mix_row`; no extra array)."""
        return self._probs(ctx, float(self.epsilon))

    def _update(self, ctx, actions, rewards, propensities) -> None:
        sm_update(_f64(ctx.X), actions, rewards, self.A_inv_, self.b_, self.theta_)


@register_policy("linucb")
class LinUCB(_DisjointLinear):
    """LinUCB with disjoint arms (Li et al. 2010): greedy on
    ``x·θ_k + alpha·sqrt(xᵀ A_k⁻¹ x)``, ``A_k = ridge·I + Σ x xᵀ`` over rounds where k was
    chosen; deterministic, ties split equally."""

    def __init__(
        self,
        alpha: float = 1.0,
        ridge: float = 1.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(ridge=ridge, epsilon=epsilon, update_every=update_every)
        self.alpha = alpha

    def _check_settings(self) -> None:
        super()._check_settings()
        if float(self.alpha) < 0:
            raise ConfigError(f"policy.alpha must be ≥ 0, got {self.alpha}")

    def _probs(self, ctx: Contexts, epsilon: float) -> np.ndarray:
        return kern.batch_probs_ucb(_f64(ctx.X), self.A_inv_, self.b_, float(self.alpha), epsilon)

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        actions, props, probs = kern.play_ucb(
            _f64(ctx.X),
            _f64(potential_rewards),
            self.rng_.random(len(ctx)),
            self.A_inv_,
            self.b_,
            self.theta_,
            float(self.alpha),
            float(self.epsilon),
            int(self.update_every),
        )
        return Decisions(actions, props, probs)

    def _replay(self, ctx, actions, rewards, propensities, uniforms, c, need_pi, window):
        return kern.replay_ucb(
            _f64(ctx.X),
            actions,
            rewards,
            propensities,
            uniforms,
            c,
            self.A_inv_,
            self.b_,
            self.theta_,
            float(self.alpha),
            float(self.epsilon),
        )


@register_policy("lints")
class LinearThompson(_DisjointLinear):
    """Linear Thompson sampling with disjoint arms: arm k's score is drawn from
    ``N(x·θ_k, v²·xᵀA_k⁻¹x)``. The probability of each arm winning is computed to within
    1e-10 (closed form for two competing arms, a shared-grid trapezoid rule for more; see
    :func:`bandits.policies.kernels.linear_ts.ts_probs`; ``n_nodes`` Gauss–Hermite nodes are
    used only when some widths are exactly 0), and the decision is drawn from exactly those
    probabilities, so propensities are exact. In replay (``need_pi=False``) most events are
    decided from bounds on the logged action's win probability, without integrating."""

    def __init__(
        self,
        v: float = 0.3,
        n_nodes: int = 16,
        ridge: float = 1.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(ridge=ridge, epsilon=epsilon, update_every=update_every)
        self.v = v
        self.n_nodes = n_nodes

    def _check_settings(self) -> None:
        super()._check_settings()
        if float(self.v) < 0 or int(self.n_nodes) < 2:
            raise ConfigError("policy.v must be ≥ 0 and policy.n_nodes ≥ 2")

    def _reset(self, spec: ProblemSpec) -> None:
        super()._reset(spec)
        self._nodes, self._weights = gauss_hermite_normal(int(self.n_nodes))

    def _probs(self, ctx: Contexts, epsilon: float) -> np.ndarray:
        return kern.batch_probs_ts(
            _f64(ctx.X), self.A_inv_, self.b_, float(self.v), self._nodes, self._weights, epsilon
        )

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        actions, props, probs = kern.play_ts(
            _f64(ctx.X),
            _f64(potential_rewards),
            self.rng_.random(len(ctx)),
            self.A_inv_,
            self.b_,
            self.theta_,
            float(self.v),
            self._nodes,
            self._weights,
            float(self.epsilon),
            int(self.update_every),
        )
        return Decisions(actions, props, probs)

    def _replay(self, ctx, actions, rewards, propensities, uniforms, c, need_pi, window):
        return kern.replay_ts(
            _f64(ctx.X),
            actions,
            rewards,
            propensities,
            uniforms,
            c,
            self.A_inv_,
            self.b_,
            self.theta_,
            float(self.v),
            self._nodes,
            self._weights,
            float(self.epsilon),
            bool(need_pi),
        )
