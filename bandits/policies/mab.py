"""Context-free bandits (ε-greedy, UCB1, Beta Thompson sampling) and segment-level
Thompson sampling (one Beta-Bernoulli bandit per value of a segment column).

Rewards are expected in [0, 1] after dividing by ``reward_scale`` (clipped otherwise).
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies import _mab_kernels as kern
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.registry import register_policy


class _ArmStatistics(Policy):
    """Shared state: per-group, per-arm counts and sums of rewards scaled to [0, 1],
    shape ``(G, K)``; the online loop and the probabilities run in compiled code
    (:mod:`bandits.policies._mab_kernels`)."""

    group_column: str | None = None
    mode: int = kern.MODE_GREEDY

    def __init__(self, reward_scale: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.reward_scale = reward_scale

    def _check_settings(self) -> None:
        super()._check_settings()
        if not float(self.reward_scale) > 0:
            raise ConfigError(f"policy.reward_scale must be > 0, got {self.reward_scale}")

    def _reset(self, spec: ProblemSpec) -> None:
        if self.group_column is None:
            self.levels_: tuple[str, ...] = ("all",)
        else:
            cats = {c.name: c for c in spec.features.categorical}
            if self.group_column not in cats:
                raise ConfigError(
                    f"policy '{self.name}' groups by '{self.group_column}', which is not a "
                    f"categorical feature (features: {', '.join(spec.features.columns)})"
                )
            self.levels_ = cats[self.group_column].levels
        shape = (len(self.levels_), spec.n_actions)
        self.counts_ = np.zeros(shape)
        self.sums_ = np.zeros(shape)

    def _groups(self, ctx: Contexts) -> np.ndarray:
        if self.group_column is None:
            return np.zeros(len(ctx), np.int64)
        return self.spec_.features.codes(ctx.frame, self.group_column)

    def _kernel_settings(self) -> tuple[float, float, float, int]:
        """(c, prior_a, prior_b, n_draws) passed to the kernels."""
        return 0.0, 1.0, 1.0, 1

    def _probs(self, ctx: Contexts, epsilon: float) -> np.ndarray:
        c, a, b, m = self._kernel_settings()
        return kern.batch_probs(
            self._groups(ctx), self.counts_, self.sums_, self.mode, c, a, b, m, epsilon, self.rng_
        )

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx, 0.0)

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx, float(self.epsilon))

    def _update(self, ctx, actions, rewards, propensities) -> None:
        g = self._groups(ctx)
        r = np.clip(rewards / float(self.reward_scale), 0.0, 1.0)
        np.add.at(self.counts_, (g, actions), 1.0)
        np.add.at(self.sums_, (g, actions), r)

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        c, a, b, m = self._kernel_settings()
        uniforms = self.rng_.random(len(ctx))
        actions, props, probs = kern.play(
            self._groups(ctx),
            np.ascontiguousarray(potential_rewards, dtype=np.float64),
            uniforms,
            self.counts_,
            self.sums_,
            self.mode,
            c,
            a,
            b,
            m,
            float(self.epsilon),
            float(self.reward_scale),
            int(self.update_every),
            self.rng_,
        )
        self.n_updates_ += len(ctx)
        return Decisions(actions, props, probs)


@register_policy("epsilon_greedy")
class EpsilonGreedy(_ArmStatistics):
    """Greedy on empirical means (untried arms first, ties split) mixed with uniform
    exploration: ``pi = (1 - epsilon) * greedy + epsilon / K``."""

    mode = kern.MODE_GREEDY

    def __init__(self, epsilon: float = 0.1, **kw) -> None:
        super().__init__(epsilon=epsilon, **kw)


@register_policy("ucb1")
class UCB1(_ArmStatistics):
    """UCB1 (Auer et al. 2002): argmax of ``mean_k + c * sqrt(2 ln t / n_k)`` with ``t`` the
    rounds seen so far, untried arms first; deterministic (ties split equally)."""

    mode = kern.MODE_UCB1

    def __init__(self, c: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.c = c

    def _kernel_settings(self) -> tuple[float, float, float, int]:
        return float(self.c), 1.0, 1.0, 1


@register_policy("beta_ts")
class BetaThompson(_ArmStatistics):
    """Beta-Bernoulli Thompson sampling with prior ``Beta(prior_a, prior_b)``.

    The probability that arm k has the largest posterior draw has no closed form; it is
    estimated by Monte-Carlo with ``n_draws`` joint posterior draws per decision, and the
    decision is drawn from exactly that estimate, so the logged propensity is exact for the
    decision made (the policy is TS smoothed by the ``n_draws``-sample estimate).
    """

    probabilities = "monte_carlo"
    mode = kern.MODE_BETA_TS

    def __init__(self, prior_a: float = 1.0, prior_b: float = 1.0, n_draws: int = 100, **kw):
        super().__init__(**kw)
        self.prior_a = prior_a
        self.prior_b = prior_b
        self.n_draws = n_draws

    def _check_settings(self) -> None:
        super()._check_settings()
        if int(self.n_draws) < 1 or self.prior_a <= 0 or self.prior_b <= 0:
            raise ConfigError("policy.n_draws must be ≥ 1 and prior_a, prior_b > 0")

    def _kernel_settings(self) -> tuple[float, float, float, int]:
        return 0.0, float(self.prior_a), float(self.prior_b), int(self.n_draws)


@register_policy("segment_ts")
class SegmentThompson(BetaThompson):
    """Segment-level personalisation: an independent Beta Thompson sampler per value of
    ``segment_column`` (default ``segment``)."""

    def __init__(self, segment_column: str = "segment", **kw) -> None:
        super().__init__(**kw)
        self.segment_column = segment_column

    def _reset(self, spec: ProblemSpec) -> None:
        self.group_column = self.segment_column
        super()._reset(spec)
