"""Context-free bandits (ε-greedy, UCB1, Beta Thompson sampling) and segment-level
Thompson sampling (one Beta-Bernoulli bandit per value of a segment column).

Rewards are expected in [0, 1] after dividing by ``reward_scale`` (clipped otherwise).
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Policy, ProblemSpec, one_hot_argmax
from bandits.policies.registry import register_policy


class _ArmStatistics(Policy):
    """Shared state: per-group, per-arm reward sums and counts, shape ``(G, K)``."""

    group_column: str | None = None

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

    def _update(self, ctx, actions, rewards, propensities) -> None:
        g = self._groups(ctx)
        r = np.clip(rewards / float(self.reward_scale), 0.0, 1.0)
        np.add.at(self.counts_, (g, actions), 1.0)
        np.add.at(self.sums_, (g, actions), r)

    def _means(self) -> np.ndarray:
        return np.where(self.counts_ > 0, self.sums_ / np.maximum(self.counts_, 1.0), np.inf)


@register_policy("epsilon_greedy")
class EpsilonGreedy(_ArmStatistics):
    """Greedy on empirical means (untried arms first, ties split) mixed with uniform
    exploration: ``pi = (1 - epsilon) * greedy + epsilon / K``."""

    def __init__(self, epsilon: float = 0.1, **kw) -> None:
        super().__init__(epsilon=epsilon, **kw)

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        greedy = one_hot_argmax(self._means())
        return greedy[self._groups(ctx)]


@register_policy("ucb1")
class UCB1(_ArmStatistics):
    """UCB1 (Auer et al. 2002): argmax of ``mean_k + c * sqrt(2 ln t / n_k)``, untried arms
    first; deterministic (ties split equally)."""

    def __init__(self, c: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.c = c

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        t = max(self.counts_.sum(axis=1, keepdims=True).max(), 1.0)
        bonus = float(self.c) * np.sqrt(2.0 * np.log(t) / np.maximum(self.counts_, 1e-300))
        scores = np.where(self.counts_ > 0, self._means() + bonus, np.inf)
        return one_hot_argmax(scores)[self._groups(ctx)]


@register_policy("beta_ts")
class BetaThompson(_ArmStatistics):
    """Beta-Bernoulli Thompson sampling with prior ``Beta(prior_a, prior_b)``.

    The probability that arm k has the largest posterior draw has no closed form; it is
    estimated by Monte-Carlo with ``n_draws`` joint posterior draws, and the decision is drawn
    from exactly that estimate (so the logged propensity is exact for the decision made).
    """

    probabilities = "monte_carlo"

    def __init__(self, prior_a: float = 1.0, prior_b: float = 1.0, n_draws: int = 500, **kw):
        super().__init__(**kw)
        self.prior_a = prior_a
        self.prior_b = prior_b
        self.n_draws = n_draws

    def _check_settings(self) -> None:
        super()._check_settings()
        if int(self.n_draws) < 1 or self.prior_a <= 0 or self.prior_b <= 0:
            raise ConfigError("policy.n_draws must be ≥ 1 and prior_a, prior_b > 0")

    def _group_probs(self, groups: np.ndarray) -> np.ndarray:
        a = self.prior_a + self.sums_[groups]
        b = self.prior_b + self.counts_[groups] - self.sums_[groups]
        m = int(self.n_draws)
        draws = self.rng_.beta(a, b, size=(m, *a.shape))  # (M, G, K)
        best = draws.argmax(axis=2)  # (M, G)
        probs = np.zeros(a.shape)
        for j in range(a.shape[0]):  # loop over groups present (a handful), not rounds
            probs[j] = np.bincount(best[:, j], minlength=a.shape[1]) / m
        return probs

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        g = self._groups(ctx)
        present, inverse = np.unique(g, return_inverse=True)
        return self._group_probs(present)[inverse]


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
