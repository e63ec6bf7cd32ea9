"""Baselines: uniform random, one message for all (fixed or A/B winner), retargeting."""

from __future__ import annotations

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.registry import register_policy


def _action_index(spec: ProblemSpec, variant: str | int, setting: str) -> int:
    if isinstance(variant, int | np.integer) and not isinstance(variant, bool):
        if not 0 <= int(variant) < spec.n_actions:
            raise ConfigError(
                f"{setting}={variant} is out of range: the catalog has {spec.n_actions} variants"
            )
        return int(variant)
    if str(variant) not in spec.action_ids:
        raise ConfigError(
            f"{setting}='{variant}' is not in the catalog (variants: {', '.join(spec.action_ids)})"
        )
    return spec.action_ids.index(str(variant))


@register_policy("uniform")
class UniformRandom(Policy):
    """Every variant with probability ``1/K``."""

    learns = False

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        k = self.spec_.n_actions
        return np.full((len(ctx), k), 1.0 / k)


@register_policy("fixed")
class FixedVariant(Policy):
    """One message for all: always ``variant`` (a variant id or an index)."""

    learns = False

    def __init__(
        self, variant: str | int = 0, *, epsilon: float = 0.0, update_every: int = 1
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.variant = variant

    def _reset(self, spec: ProblemSpec) -> None:
        self.action_ = _action_index(spec, self.variant, "policy.variant")

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        probs = np.zeros((len(ctx), self.spec_.n_actions))
        probs[:, self.action_] = 1.0
        return probs


@register_policy("ab_winner")
class ABTestWinner(Policy):
    """One message for all, chosen by an A/B test: uniform for the first ``test_rounds``
    rounds, then the variant with the highest mean reward in the test, for everyone."""

    def __init__(
        self, test_rounds: int = 2000, *, epsilon: float = 0.0, update_every: int = 1
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.test_rounds = test_rounds

    def _check_settings(self) -> None:
        super()._check_settings()
        if int(self.test_rounds) < 1:
            raise ConfigError(f"policy.test_rounds must be ≥ 1, got {self.test_rounds}")

    def _reset(self, spec: ProblemSpec) -> None:
        self.counts_ = np.zeros(spec.n_actions)
        self.sums_ = np.zeros(spec.n_actions)
        self.seen_ = 0
        self.winner_ = -1

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        k = self.spec_.n_actions
        if self.winner_ < 0:
            return np.full((len(ctx), k), 1.0 / k)
        probs = np.zeros((len(ctx), k))
        probs[:, self.winner_] = 1.0
        return probs

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """Decisions do not depend on the state until the test ends (nor after it), so each
        phase is one batch: the reference loop's decisions and state whatever
        ``update_every``."""
        n_test = (
            max(0, min(len(ctx), int(self.test_rounds) - self.seen_)) if self.winner_ < 0 else 0
        )
        parts = []
        for start, stop in ((0, n_test), (n_test, len(ctx))):
            if stop > start:
                part = ctx.slice(start, stop)
                dec = self.sample(part)
                rewards = potential_rewards[np.arange(start, stop), dec.actions]
                self._learn(part, dec.actions, rewards, dec.propensities)
                parts.append(dec)
        return Decisions(
            np.concatenate([d.actions for d in parts]),
            np.concatenate([d.propensities for d in parts]),
            np.concatenate([d.probs for d in parts]),
        )

    def _update(self, ctx, actions, rewards, propensities) -> None:
        if self.winner_ >= 0:
            return
        take = min(len(actions), int(self.test_rounds) - self.seen_)
        np.add.at(self.counts_, actions[:take], 1.0)
        np.add.at(self.sums_, actions[:take], rewards[:take])
        self.seen_ += take
        if self.seen_ >= int(self.test_rounds):
            means = np.where(self.counts_ > 0, self.sums_ / np.maximum(self.counts_, 1), -np.inf)
            self.winner_ = int(np.argmax(means))


@register_policy("retargeting")
class Retargeting(Policy):
    """Show people what they last looked at.

    If the user viewed something within ``max_days_since_view`` days, send the first
    retargeting variant (``mentions_last_viewed``) that suits the channel. Otherwise send the
    first generic variant of the last-viewed category that suits the channel, else
    ``fallback`` (a variant id; default the first generic variant). Deterministic: propensity
    1 unless ``epsilon`` > 0. Needs context columns ``channel``, ``last_viewed_category``,
    ``days_since_view`` and catalog columns ``category``, ``mentions_last_viewed``,
    ``suits_<channel>``.
    """

    learns = False

    def __init__(
        self,
        max_days_since_view: int = 7,
        fallback: str | None = None,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.max_days_since_view = max_days_since_view
        self.fallback = fallback

    def _reset(self, spec: ProblemSpec) -> None:
        cat = spec.catalog
        for col in ("category", "mentions_last_viewed"):
            if col not in cat.columns:
                raise ConfigError(f"policy 'retargeting' needs catalog column '{col}'")
        self.channels_ = tuple(c[len("suits_") :] for c in cat.columns if c.startswith("suits_"))
        mentions = cat["mentions_last_viewed"].to_numpy().astype(bool)
        category = cat["category"].to_list()
        generic = np.flatnonzero(~mentions)
        if self.fallback is None:
            if generic.size == 0:
                raise ConfigError("policy 'retargeting' needs a generic variant as fallback")
            fallback = int(generic[0])
        else:
            fallback = _action_index(spec, self.fallback, "policy.fallback")
        # one column per known channel, plus a last column for channels the catalog does
        # not describe (no suitability information: any variant may be sent)
        suits = [cat[f"suits_{ch}"].to_numpy().astype(bool) for ch in self.channels_]
        suits.append(np.ones(spec.n_actions, bool))
        self.categories_ = tuple(
            sorted({c for c, m in zip(category, mentions, strict=True) if not m})
        )
        category_arr = np.asarray(category, dtype=object)
        n_ch, n_cat = len(suits), len(self.categories_)
        self.retarget_by_channel_ = np.full(n_ch, -1, np.int64)
        self.generic_by_cat_channel_ = np.full((n_cat + 1, n_ch), fallback, np.int64)
        for j, ok in enumerate(suits):
            cands = np.flatnonzero(mentions & ok)
            cands = cands if cands.size else np.flatnonzero(mentions)
            if cands.size:
                self.retarget_by_channel_[j] = cands[0]
            for i, c in enumerate(self.categories_):
                in_cat = (category_arr == c) & ~mentions
                cands = np.flatnonzero(in_cat & ok)
                cands = cands if cands.size else np.flatnonzero(in_cat)
                if cands.size:
                    self.generic_by_cat_channel_[i, j] = cands[0]

    def _codes(self, ctx: Contexts, column: str, levels: tuple[str, ...]) -> np.ndarray:
        s = ctx.frame[column].cast(str)
        lookup = {v: i for i, v in enumerate(levels)}
        codes = s.replace_strict(lookup, default=len(levels), return_dtype=pl.Int64)
        return codes.to_numpy()

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        n = len(ctx)
        for col in ("channel", "last_viewed_category", "days_since_view"):
            if col not in ctx.frame.columns:
                raise ConfigError(f"policy 'retargeting' needs context column '{col}'")
        # unknown channels (and catalogs without suits_* columns) map to the last column
        ch = self._codes(ctx, "channel", self.channels_)
        cat = self._codes(ctx, "last_viewed_category", self.categories_)
        recent = ctx.frame["days_since_view"].to_numpy() <= self.max_days_since_view
        retarget = self.retarget_by_channel_[ch]
        generic = self.generic_by_cat_channel_[cat, ch]
        action = np.where(recent & (retarget >= 0), retarget, generic)
        probs = np.zeros((n, self.spec_.n_actions))
        probs[np.arange(n), action] = 1.0
        return probs


__all__ = ["ABTestWinner", "FixedVariant", "Retargeting", "UniformRandom"]
