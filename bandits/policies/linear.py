"""Disjoint linear contextual bandits: LinUCB and linear Thompson sampling.

Each arm k has its own ridge regression of reward on the context features ``x (d,)``. Both
policies run their online loop in compiled code (:mod:`bandits.policies._linear_kernels`) with
exact per-round Sherman–Morrison updates by default; ``update_every > 1`` freezes the state
for blocks of rounds (batched updates, recorded in the run's params).
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies import _linear_kernels as kern
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.registry import register_policy


class _DisjointLinear(Policy):
    mode: int = kern.MODE_UCB

    def __init__(self, ridge: float = 1.0, **kw) -> None:
        super().__init__(**kw)
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
        self._nodes, self._weights = kern.gauss_hermite_normal(self._n_nodes())

    def _n_nodes(self) -> int:
        return 1

    def _width(self) -> float:
        raise NotImplementedError

    def _probs(self, X: np.ndarray, epsilon: float) -> np.ndarray:
        return kern.batch_probs(
            np.ascontiguousarray(X, dtype=np.float64),
            self.A_inv_,
            self.b_,
            self.mode,
            float(self._width()),
            self._nodes,
            self._weights,
            epsilon,
        )

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx.X, 0.0)

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx.X, float(self.epsilon))

    def _update(self, ctx, actions, rewards, propensities) -> None:
        kern.sm_update(
            np.ascontiguousarray(ctx.X, dtype=np.float64),
            actions,
            rewards,
            self.A_inv_,
            self.b_,
            self.theta_,
        )

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        uniforms = self.rng_.random(len(ctx))
        actions, props, probs = kern.play(
            np.ascontiguousarray(ctx.X, dtype=np.float64),
            np.ascontiguousarray(potential_rewards, dtype=np.float64),
            uniforms,
            self.A_inv_,
            self.b_,
            self.theta_,
            self.mode,
            float(self._width()),
            self._nodes,
            self._weights,
            float(self.epsilon),
            int(self.update_every),
        )
        self.n_updates_ += len(ctx)
        return Decisions(actions, props, probs)

    def replay_log(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        uniforms: np.ndarray,
        c: float,
        need_pi: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rejection-sampling replay through a log in compiled code (Li et al. 2011,
        generalised): event ``t`` is accepted when ``uniforms[t] < pi_t(a_t) * c / mu_t``
        (``pi_t`` = the current probabilities, epsilon included) and an accepted event is
        learned from at once. The same decisions and final state as
        :func:`bandits.offline.replay.replay` given the same uniforms, which draws them as
        ``default_rng(seed).random(n)``.

        Returns ``accepted (n,) bool`` and ``pi_logged (n,)`` (the policy's probability of
        the logged action when the event was visited). ``need_pi=False`` lets Thompson
        sampling decide an event from bounds on that probability where they suffice (same
        acceptances and state, much less integration; ``pi_logged`` is NaN there).
        """
        accepted, pi_logged = kern.replay(
            np.ascontiguousarray(ctx.X, dtype=np.float64),
            np.ascontiguousarray(actions, dtype=np.int64),
            np.ascontiguousarray(rewards, dtype=np.float64),
            np.ascontiguousarray(propensities, dtype=np.float64),
            np.ascontiguousarray(uniforms, dtype=np.float64),
            float(c),
            self.A_inv_,
            self.b_,
            self.theta_,
            self.mode,
            float(self._width()),
            self._nodes,
            self._weights,
            float(self.epsilon),
            bool(need_pi),
        )
        self.n_updates_ += int(accepted.sum())
        return accepted, pi_logged


@register_policy("linucb")
class LinUCB(_DisjointLinear):
    """LinUCB with disjoint arms (Li et al. 2010): greedy on
    ``x·θ_k + alpha·sqrt(xᵀ A_k⁻¹ x)``, ``A_k = ridge·I + Σ x xᵀ`` over rounds where k was
    chosen; deterministic, ties split equally."""

    mode = kern.MODE_UCB

    def __init__(self, alpha: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.alpha = alpha

    def _check_settings(self) -> None:
        super()._check_settings()
        if float(self.alpha) < 0:
            raise ConfigError(f"policy.alpha must be ≥ 0, got {self.alpha}")

    def _width(self) -> float:
        return float(self.alpha)


@register_policy("lints")
class LinearThompson(_DisjointLinear):
    """Linear Thompson sampling with disjoint arms: arm k's score is drawn from
    ``N(x·θ_k, v²·xᵀA_k⁻¹x)``. The probability of each arm winning is computed to within
    1e-10 (closed form for two competing arms, a shared-grid trapezoid rule for more; see
    ``_linear_kernels._ts_probs``; ``n_nodes`` Gauss–Hermite nodes are used only when some
    widths are exactly 0), and the decision is drawn from exactly those probabilities, so
    propensities are exact."""

    mode = kern.MODE_TS

    def __init__(self, v: float = 0.3, n_nodes: int = 16, **kw) -> None:
        super().__init__(**kw)
        self.v = v
        self.n_nodes = n_nodes

    def _check_settings(self) -> None:
        super()._check_settings()
        if float(self.v) < 0 or int(self.n_nodes) < 2:
            raise ConfigError("policy.v must be ≥ 0 and policy.n_nodes ≥ 2")

    def _n_nodes(self) -> int:
        return int(self.n_nodes)

    def _width(self) -> float:
        return float(self.v)
