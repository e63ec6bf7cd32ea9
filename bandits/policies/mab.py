"""Context-free bandits (ε-greedy, UCB1, Beta Thompson sampling) and segment-level
Thompson sampling (one Beta-Bernoulli bandit per value of a segment column).

Rewards are expected in [0, 1] after dividing by ``reward_scale`` (clipped otherwise). Every
policy here has exact probabilities (a deterministic function of the state); the Thompson
samplers compute their win probabilities by quadrature
(:func:`bandits.policies.kernels.beta.beta_win_probs`).
"""

from __future__ import annotations

import numpy as np

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.kernels import arms as kern
from bandits.policies.registry import register_policy


class _ArmStatistics(Policy):
    """Shared state: per-group, per-arm counts and sums of rewards scaled to [0, 1],
    shape ``(G, K)``; the online loop and the probabilities run in compiled code
    (:mod:`bandits.policies.kernels.arms`)."""

    group_column: str | None = None
    mode: int = kern.MODE_GREEDY

    def __init__(
        self, *, reward_scale: float = 1.0, epsilon: float = 0.0, update_every: int = 1
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
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

    def _kernel_settings(self) -> tuple[float, float, float]:
        """(c, prior_a, prior_b) passed to the kernels."""
        return 0.0, 1.0, 1.0

    def _probs(self, ctx: Contexts, epsilon: float) -> np.ndarray:
        c, a, b = self._kernel_settings()
        groups = self._groups(ctx)
        return kern.batch_probs(groups, self.counts_, self.sums_, self.mode, c, a, b, epsilon)

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        return self._probs(ctx, 0.0)

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        """As :meth:`Policy.action_probs`, with the ε-mixing done in the kernel (the same
        :func:`bandits.policies.sampling.mix_row`; no extra array)."""
        return self._probs(ctx, float(self.epsilon))

    def _update(self, ctx, actions, rewards, propensities) -> None:
        g = self._groups(ctx)
        r = np.clip(rewards / float(self.reward_scale), 0.0, 1.0)
        np.add.at(self.counts_, (g, actions), 1.0)
        np.add.at(self.sums_, (g, actions), r)

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        c, a, b = self._kernel_settings()
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
            float(self.epsilon),
            float(self.reward_scale),
            int(self.update_every),
        )
        return Decisions(actions, props, probs)

    def _replay(self, ctx, actions, rewards, propensities, uniforms, c, need_pi, window):
        """The compiled replay (:func:`bandits.policies.kernels.arms.replay`); ``pi_logged``
        is always computed (``need_pi`` is not needed)."""
        kc, a, b = self._kernel_settings()
        return kern.replay(
            self._groups(ctx),
            actions,
            rewards,
            propensities,
            uniforms,
            c,
            self.counts_,
            self.sums_,
            self.mode,
            kc,
            a,
            b,
            float(self.epsilon),
            float(self.reward_scale),
        )


@register_policy("epsilon_greedy")
class EpsilonGreedy(_ArmStatistics):
    """Greedy on empirical means (untried arms first, ties split) mixed with uniform
    exploration: ``pi = (1 - epsilon) * greedy + epsilon / K``."""

    mode = kern.MODE_GREEDY

    def __init__(
        self, epsilon: float = 0.1, reward_scale: float = 1.0, update_every: int = 1
    ) -> None:
        super().__init__(reward_scale=reward_scale, epsilon=epsilon, update_every=update_every)


@register_policy("ucb1")
class UCB1(_ArmStatistics):
    """UCB1 (Auer et al. 2002): argmax of ``mean_k + c * sqrt(2 ln t / n_k)`` with ``t`` the
    rounds seen so far, untried arms first; deterministic (ties split equally)."""

    mode = kern.MODE_UCB1

    def __init__(
        self,
        c: float = 1.0,
        reward_scale: float = 1.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(reward_scale=reward_scale, epsilon=epsilon, update_every=update_every)
        self.c = c

    def _kernel_settings(self) -> tuple[float, float, float]:
        return float(self.c), 1.0, 1.0


@register_policy("beta_ts")
class BetaThompson(_ArmStatistics):
    """Beta-Bernoulli Thompson sampling with prior ``Beta(prior_a, prior_b)``.

    Arm k's posterior is ``Beta(prior_a + S_k, prior_b + N_k − S_k)`` (``N_k`` pulls, ``S_k``
    summed rewards in [0, 1]). Its probability of having the largest posterior draw,
    ``p_k = ∫ f_k(x) Π_{j≠k} F_j(x) dx``, is computed by adaptive composite Gauss–Legendre
    quadrature (:func:`bandits.policies.kernels.beta.beta_win_probs`: absolute error
    ≲ 1e-9, a deterministic function of the counts), and the action is drawn from exactly
    those probabilities (inverse CDF), so every logged propensity is the probability the
    decision was drawn with. Every arm keeps a positive probability: a win probability
    that underflows float64 (true value below ~1e-300) is stored as the smallest normal
    float, 2.2e-308 — there is no other floor (use ``epsilon`` to keep exploring).

    ``n_draws`` is a leftover of the former Monte-Carlo estimate and is ignored; it is
    still accepted so that configs that set it load.
    """

    mode = kern.MODE_BETA_TS

    ignored_settings = ("n_draws",)

    def __init__(
        self,
        prior_a: float = 1.0,
        prior_b: float = 1.0,
        n_draws: int | None = None,
        reward_scale: float = 1.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(reward_scale=reward_scale, epsilon=epsilon, update_every=update_every)
        self.prior_a = prior_a
        self.prior_b = prior_b
        self.n_draws = n_draws

    def _check_settings(self) -> None:
        super()._check_settings()
        if not (float(self.prior_a) > 0 and float(self.prior_b) > 0):
            raise ConfigError(
                f"policy.prior_a and prior_b must be > 0, got {self.prior_a}, {self.prior_b}"
            )

    def _kernel_settings(self) -> tuple[float, float, float]:
        return 0.0, float(self.prior_a), float(self.prior_b)


@register_policy("segment_ts")
class SegmentThompson(BetaThompson):
    """Segment-level personalisation: an independent Beta Thompson sampler per value of
    ``segment_column`` (default ``segment``)."""

    def __init__(
        self,
        segment_column: str = "segment",
        prior_a: float = 1.0,
        prior_b: float = 1.0,
        n_draws: int | None = None,
        reward_scale: float = 1.0,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(
            prior_a=prior_a,
            prior_b=prior_b,
            n_draws=n_draws,
            reward_scale=reward_scale,
            epsilon=epsilon,
            update_every=update_every,
        )
        self.segment_column = segment_column

    def _reset(self, spec: ProblemSpec) -> None:
        self.group_column = self.segment_column
        super()._reset(spec)
