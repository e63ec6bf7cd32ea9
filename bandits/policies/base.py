"""The policy protocol: batch-first scoring, sampling with exact propensities, learning.

Every call takes a batch of ``n`` rounds (a single round is a batch of one). A policy
returns action probabilities ``(n, K)``; :meth:`Policy.sample` draws from exactly those
probabilities with the policy's own seeded generator, so every decision carries the exact
propensity it was drawn with. Settings live in ``__init__`` (stored unchanged, scikit-learn
style); learned state is created by :meth:`Policy.reset` and named with a trailing ``_``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.features import FeatureSchema

SeedLike = int | np.random.SeedSequence | None


@dataclass(frozen=True)
class ProblemSpec:
    """What a policy is bound to: the actions (with their features) and the context schema.

    ``catalog`` has one row per action, in action-index order, with at least ``variant_id``.
    """

    action_ids: tuple[str, ...]
    catalog: pl.DataFrame
    features: FeatureSchema

    @property
    def n_actions(self) -> int:
        return len(self.action_ids)

    def contexts(self, frame: pl.DataFrame) -> Contexts:
        """Bind a raw context frame to its feature matrix."""
        return Contexts(frame=frame, X=self.features.transform(frame))


@dataclass(frozen=True)
class Contexts:
    """A batch of ``n`` rounds: raw context columns and the feature matrix ``X (n, d)``."""

    frame: pl.DataFrame
    X: np.ndarray

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def slice(self, start: int, stop: int) -> Contexts:
        return Contexts(frame=self.frame.slice(start, stop - start), X=self.X[start:stop])


@dataclass(frozen=True)
class Decisions:
    """Sampled ``actions (n,)`` (int64), their exact ``propensities (n,)`` and the ``probs
    (n, K)`` they were drawn from."""

    actions: np.ndarray
    propensities: np.ndarray
    probs: np.ndarray


def sample_from(probs: np.ndarray, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF sampling of one action per row.

    Args:
        probs: ``(n, K)`` rows summing to 1.
        uniforms: ``(n,)`` draws in [0, 1).

    Returns:
        ``actions (n,)`` with ``P(a_i = k) = probs[i, k]`` and ``propensities = probs[i, a_i]``.
        Zero-probability actions are never drawn.
    """
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = np.inf  # guards against rows summing to 1 - 1e-16
    actions = (uniforms[:, None] >= cdf).sum(axis=1)
    # skip zero-probability actions sitting at a cdf plateau (u == cdf edge)
    actions = np.minimum(actions, probs.shape[1] - 1)
    props = probs[np.arange(probs.shape[0]), actions]
    if np.any(props <= 0):  # only possible through exact ties with a plateau; resolve by argmax
        bad = props <= 0
        actions[bad] = probs[bad].argmax(axis=1)
        props = probs[np.arange(probs.shape[0]), actions]
    return actions.astype(np.int64), props


def one_hot_argmax(scores: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Deterministic greedy probabilities ``(n, K)``: ties share the mass equally."""
    best = scores.max(axis=1, keepdims=True)
    ties = scores >= best - tol
    return ties / ties.sum(axis=1, keepdims=True)


class Policy(ABC):
    """Base class of every policy.

    Subclasses implement :meth:`_reset`, :meth:`_action_probs` and, if they learn,
    :meth:`_update`; they may override :meth:`_play` with a compiled loop. Setting
    ``epsilon`` mixes any policy with uniform exploration: ``(1 - epsilon) * pi + epsilon / K``.
    """

    name: ClassVar[str] = ""
    #: "exact": ``action_probs`` is a deterministic function of the state;
    #: "monte_carlo": probabilities are estimated by sampling (documented by the policy) — the
    #: decision is still drawn from exactly the returned probabilities.
    probabilities: ClassVar[Literal["exact", "monte_carlo"]] = "exact"
    learns: ClassVar[bool] = True

    def __init__(self, *, epsilon: float = 0.0, update_every: int = 1) -> None:
        self.epsilon = epsilon
        self.update_every = update_every

    # ----- settings -------------------------------------------------------------------
    @classmethod
    def _setting_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if klass is object or "__init__" not in klass.__dict__:
                continue
            for p in inspect.signature(klass.__dict__["__init__"]).parameters.values():
                if p.name != "self" and p.kind is not p.VAR_KEYWORD and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Settings as a flat dict (round-trips through ``type(self)(**params)``)."""
        return {n: getattr(self, n) for n in self._setting_names()}

    def set_params(self, **params: Any) -> Policy:
        names = set(self._setting_names())
        for key, value in params.items():
            if key not in names:
                raise ConfigError(f"policy '{self.name}' has no setting '{key}'")
            setattr(self, key, value)
        return self

    def _check_settings(self) -> None:
        if not 0.0 <= float(self.epsilon) <= 1.0:
            raise ConfigError(f"policy.epsilon must be in [0, 1], got {self.epsilon}")
        if int(self.update_every) < 1:
            raise ConfigError(f"policy.update_every must be ≥ 1, got {self.update_every}")

    # ----- inputs besides the context --------------------------------------------------
    def target_columns(self, columns: Sequence[str]) -> tuple[str, ...]:
        """The columns of a log (``columns``: all its column names) that hold this policy's own
        probabilities. Apps load them with ``load_log(target_columns=policy.target_columns)``:
        always read, never context, shown as "target policy probabilities". Default: none
        (the policy reads only the context; see :mod:`bandits.policies.given`)."""
        return ()

    @classmethod
    def example_settings(cls, spec: ProblemSpec) -> dict[str, Any]:
        """Settings, beyond the defaults, with which this policy runs on ``spec``: used by the
        conformance suite (``tests/policies/test_policy_conformance.py``) for policies whose
        input is more than the context (a table, columns of the log). Default: none."""
        return {}

    @classmethod
    def example_frame(cls, spec: ProblemSpec, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (``n`` rounds of ``spec``'s contexts) with the columns the policy reads
        under :meth:`example_settings` besides the context. Default: ``frame`` unchanged."""
        return frame

    # ----- lifecycle ------------------------------------------------------------------
    def reset(self, spec: ProblemSpec, seed: SeedLike = None) -> Policy:
        """Bind to a problem and create fresh learned state; ``seed`` drives all randomness."""
        self._check_settings()
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.spec_ = spec
        self.rng_ = np.random.default_rng(ss)
        self.n_updates_ = 0
        self._reset(spec)
        return self

    def _reset(self, spec: ProblemSpec) -> None:  # noqa: B027 - optional hook
        """Create learned state (trailing-underscore attributes)."""

    # ----- acting ---------------------------------------------------------------------
    @abstractmethod
    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        """Probabilities ``(n, K)`` before epsilon mixing."""

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        """Action probabilities ``(n, K)``, rows summing to 1."""
        probs = self._action_probs(ctx)
        eps = float(self.epsilon)
        if eps > 0:
            probs = (1.0 - eps) * probs + eps / probs.shape[1]
        return probs

    def sample(self, ctx: Contexts) -> Decisions:
        """Draw one action per round from :meth:`action_probs` with the policy's generator."""
        probs = self.action_probs(ctx)
        actions, props = sample_from(probs, self.rng_.random(len(ctx)))
        return Decisions(actions, props, probs)

    def update(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
    ) -> None:
        """Learn from a batch of ``(context, action (n,), reward (n,), propensity (n,))``."""
        if len(ctx):
            self._update(
                ctx,
                np.asarray(actions, np.int64),
                np.asarray(rewards, float),
                np.asarray(propensities, float),
            )
            self.n_updates_ += len(ctx)

    def _update(  # noqa: B027 - optional hook
        self, ctx: Contexts, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        """Learning hook; non-learning policies keep the default (no-op)."""

    def play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """Act on ``n`` rounds in order, learning as it goes.

        ``potential_rewards (n, K)`` holds the reward each action would get; only the chosen
        one is revealed to the policy. Updates happen every ``update_every`` rounds
        (1 = exact per-round learning).
        """
        return self._play(ctx, potential_rewards)

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        n = len(ctx)
        if not self.learns:
            dec = self.sample(ctx)
            return dec
        step = int(self.update_every)
        actions = np.empty(n, np.int64)
        props = np.empty(n)
        probs = np.empty((n, self.spec_.n_actions))
        for start in range(0, n, step):
            stop = min(start + step, n)
            part = ctx.slice(start, stop)
            dec = self.sample(part)
            rewards = potential_rewards[np.arange(start, stop), dec.actions]
            self.update(part, dec.actions, rewards, dec.propensities)
            actions[start:stop], props[start:stop], probs[start:stop] = (
                dec.actions,
                dec.propensities,
                dec.probs,
            )
        return Decisions(actions, props, probs)

    # ----- state ------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Learned state as a dict of arrays/scalars (for saving a trained policy)."""
        return {
            k: v for k, v in vars(self).items() if k.endswith("_") and k not in ("spec_", "rng_")
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v.copy() if isinstance(v, np.ndarray) else v)
