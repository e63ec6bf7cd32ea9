"""The policy contract: batch-first scoring, sampling with exact propensities, learning,
and the two loops every policy runs — online play and replay through a log.

Every call takes a batch of ``n`` rounds (a single round is a batch of one). A policy
returns action probabilities ``(n, K)``; :meth:`Policy.sample` draws from exactly those
probabilities with the policy's own seeded generator, so every decision carries the exact
propensity it was drawn with. Settings are the explicit keyword arguments of ``__init__``
(:class:`bandits.settings.Settings`: ``get_settings``, ``clone``); learned state is created by
:meth:`Policy.bind` and named with a trailing ``_``.

**Hooks.** A policy implements :meth:`Policy._action_probs` and, if it learns,
:meth:`Policy._update`. The loops :meth:`Policy.play` and :meth:`Policy.replay` have
reference implementations here (:meth:`Policy._play_reference`,
:meth:`Policy._replay_reference`, written only in terms of the hooks above); a policy with a
compiled loop overrides :meth:`Policy._play` / :meth:`Policy._replay`, which must make
exactly the reference's decisions and leave exactly its state (the conformance suite checks
every attribute). ``play(..., reference=True)`` / ``replay(..., reference=True)`` run the
reference. The public methods keep the update counter ``n_updates_`` — hooks never touch it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.features import FeatureSchema
from bandits.policies.sampling import blocks, mix, one_hot_argmax, sample_from
from bandits.settings import Settings

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


class Contexts:
    """A batch of ``n`` rounds: raw context columns ``frame`` and the feature matrix
    ``X (n, d)``.

    ``frame`` may be given as ``make_frame`` instead, a function building it on first use:
    most policies read only ``X``, and for the one-row requests of the HTTP service building
    a dataframe costs more than the decision itself."""

    __slots__ = ("X", "_frame", "_make_frame")

    def __init__(
        self,
        frame: pl.DataFrame | None = None,
        X: np.ndarray | None = None,
        *,
        make_frame: Callable[[], pl.DataFrame] | None = None,
    ) -> None:
        if X is None or (frame is None) == (make_frame is None):
            raise TypeError("Contexts needs X and either frame or make_frame")
        self.X = X
        self._frame = frame
        self._make_frame = make_frame

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            assert self._make_frame is not None
            self._frame = self._make_frame()
        return self._frame

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


#: The most events :meth:`Policy._replay_reference` scores per call (speed only).
REPLAY_WINDOW = 4096
#: Rows a policy that does not learn scores per call in :meth:`Policy._replay`.
_FIXED_BATCH = 65_536


class Policy(Settings, ABC):
    """Base class of every policy (the contract is in the module docstring).

    Settings common to all: ``epsilon`` mixes any policy with uniform exploration,
    ``(1 - epsilon) * pi + epsilon / K``; ``update_every`` freezes the state for blocks of
    that many rounds in :meth:`play` (1 = exact per-round learning). A subclass lists them
    among its own keyword arguments and passes them on.
    """

    name: ClassVar[str] = ""
    #: "exact": ``action_probs`` is a deterministic function of the state;
    #: "monte_carlo": probabilities are estimated by sampling (documented by the policy) — the
    #: decision is still drawn from exactly the returned probabilities.
    probabilities: ClassVar[Literal["exact", "monte_carlo"]] = "exact"
    learns: ClassVar[bool] = True
    #: Settings still accepted so that old configs load, but ignored (not in the YAML).
    ignored_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, epsilon: float = 0.0, update_every: int = 1) -> None:
        self.epsilon = epsilon
        self.update_every = update_every

    # ----- settings -------------------------------------------------------------------
    def _owner(self) -> str:
        return f"policy '{self.name or type(self).__name__}'"

    def _is_fitted(self) -> bool:
        return "spec_" in vars(self)

    def _not_fitted_message(self) -> str:
        return f"{self._owner()} is not bound to a problem: call bind(spec) first"

    def clone(self, *, seed: SeedLike = None, **overrides: Any) -> Self:
        """A fresh copy with the same settings (``overrides`` replacing some): unbound, or,
        with ``seed``, bound to this policy's problem with that seed (fresh learned state)."""
        copy = super().clone(**overrides)
        if seed is not None:
            copy.bind(self.spec_, seed)
        return copy

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
        """Settings, beyond the defaults, with which this policy runs on ``spec`` in the
        conformance suite (``tests/policies/test_policy_conformance.py``): e.g. the table of a
        policy whose input is more than the context, or smaller sizes. Default: none."""
        return {}

    @classmethod
    def example_frame(cls, spec: ProblemSpec, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (``n`` rounds of ``spec``'s contexts) with the columns the policy reads
        under :meth:`example_settings` besides the context. Default: ``frame`` unchanged."""
        return frame

    # ----- lifecycle ------------------------------------------------------------------
    def bind(self, spec: ProblemSpec, seed: SeedLike = None) -> Self:
        """Bind to a problem and create fresh learned state; ``seed`` drives all randomness."""
        self._check_settings()
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.spec_ = spec
        self.rng_ = np.random.default_rng(ss)
        self.n_updates_ = 0
        self._reset(spec)
        return self

    def reset(self, spec: ProblemSpec, seed: SeedLike = None) -> Self:
        """:meth:`bind` under its former name (kept for existing callers)."""
        return self.bind(spec, seed)

    def _reset(self, spec: ProblemSpec) -> None:
        """Create learned state (trailing-underscore attributes)."""

    # ----- acting ---------------------------------------------------------------------
    @abstractmethod
    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        """Probabilities ``(n, K)`` before epsilon mixing."""

    def action_probs(self, ctx: Contexts) -> np.ndarray:
        """Action probabilities ``(n, K)``, rows summing to 1 (ε mixed in)."""
        return mix(self._action_probs(ctx), float(self.epsilon))

    def sample(self, ctx: Contexts) -> Decisions:
        """Draw one action per round from :meth:`action_probs` with the policy's generator."""
        probs = self.action_probs(ctx)
        actions, props = sample_from(probs, self.rng_.random(len(ctx)))
        return Decisions(actions, props, probs)

    # ----- learning -------------------------------------------------------------------
    def update(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
    ) -> None:
        """Learn from a batch of ``(context, action (n,), reward (n,), propensity (n,))``."""
        self._learn(ctx, actions, rewards, propensities)
        self.n_updates_ += len(ctx)

    def _learn(
        self, ctx: Contexts, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        """:meth:`_update` on arrays of the right types (no counting: for the loops)."""
        if len(ctx):
            self._update(
                ctx,
                np.asarray(actions, np.int64),
                np.asarray(rewards, float),
                np.asarray(propensities, float),
            )

    def _update(
        self, ctx: Contexts, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        """Learning hook; non-learning policies keep the default (no-op)."""

    # ----- online play ------------------------------------------------------------------
    def play(
        self, ctx: Contexts, potential_rewards: np.ndarray, *, reference: bool = False
    ) -> Decisions:
        """Act on ``n`` rounds in order, learning as it goes.

        ``potential_rewards (n, K)`` holds the reward each action would get; only the chosen
        one is revealed to the policy. Updates happen every ``update_every`` rounds
        (1 = exact per-round learning); a policy that learns counts the ``n`` rounds in
        ``n_updates_``. ``reference=True`` runs :meth:`_play_reference` (same decisions and
        state as the policy's own, possibly compiled, loop).
        """
        run = self._play_reference if reference else self._play
        dec = run(ctx, potential_rewards)
        if self.learns:
            self.n_updates_ += len(ctx)
        return dec

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """Hook: the online loop (override with a compiled one); default: the reference."""
        return self._play_reference(ctx, potential_rewards)

    def _play_reference(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """The reference online loop: per ``update_every`` block, :meth:`sample` with the
        frozen state, reveal the chosen rewards, :meth:`_update`. A policy that does not
        learn samples all rounds at once (the same draws: one uniform per round, in order)."""
        if not self.learns:
            return self.sample(ctx)
        n = len(ctx)
        actions = np.empty(n, np.int64)
        props = np.empty(n)
        probs = np.empty((n, self.spec_.n_actions))
        for start, stop in blocks(n, int(self.update_every)):
            part = ctx.slice(start, stop)
            dec = self.sample(part)
            rewards = potential_rewards[np.arange(start, stop), dec.actions]
            self._learn(part, dec.actions, rewards, dec.propensities)
            actions[start:stop], props[start:stop], probs[start:stop] = (
                dec.actions,
                dec.propensities,
                dec.probs,
            )
        return Decisions(actions, props, probs)

    # ----- replay through a log -----------------------------------------------------------
    def replay(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        uniforms: np.ndarray,
        c: float,
        *,
        need_pi: bool = True,
        reference: bool = False,
        window: int = REPLAY_WINDOW,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rejection-sampling replay through ``n`` logged events (Li et al. 2011,
        generalised; see :mod:`bandits.offline.replay`): event ``t`` is accepted when
        ``uniforms[t] < pi_t(a_t) * c / mu_t`` (``pi_t`` = the current probabilities,
        epsilon included; ``mu_t = propensities[t]``), and an accepted event is learned from
        at once (``update`` with the logged reward and propensity ``pi_t(a_t)``).

        Args:
            ctx: ``n`` logged rounds; ``actions`` (int), ``rewards``, ``propensities``,
                ``uniforms`` (in [0, 1)): ``(n,)``. ``c``: the acceptance constant (the
                smallest logged propensity keeps every ratio ≤ 1).
            need_pi: ``False`` lets a policy decide an event from bounds on its probability
                where they suffice (LinTS does: same acceptances and state, much less
                integration; ``pi_logged`` is NaN there).
            reference: run :meth:`_replay_reference` instead of the policy's own loop.
            window: the most events the reference loop scores per call (speed only).

        Returns:
            ``accepted (n,) bool`` and ``pi_logged (n,)``, the policy's probability of the
            logged action when the event was visited. The accepted events are counted in
            ``n_updates_``.
        """
        arrays = (
            np.ascontiguousarray(actions, dtype=np.int64),
            np.ascontiguousarray(rewards, dtype=np.float64),
            np.ascontiguousarray(propensities, dtype=np.float64),
            np.ascontiguousarray(uniforms, dtype=np.float64),
        )
        if reference:
            accepted, pi_logged = self._replay_reference(ctx, *arrays, float(c), int(window))
        else:
            accepted, pi_logged = self._replay(ctx, *arrays, float(c), bool(need_pi), int(window))
        self.n_updates_ += int(accepted.sum())
        return accepted, pi_logged

    def _replay(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        uniforms: np.ndarray,
        c: float,
        need_pi: bool,
        window: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hook: the replay loop (override with a compiled one). Default: a policy that does
        not learn is scored in large batches (its probabilities never change: the reference's
        acceptances); any other runs the reference loop."""
        if self.learns:
            return self._replay_reference(ctx, actions, rewards, propensities, uniforms, c, window)
        n = len(ctx)
        accepted = np.zeros(n, bool)
        pi_logged = np.empty(n)
        for start, stop in blocks(n, _FIXED_BATCH):
            probs = self.action_probs(ctx.slice(start, stop))
            pi_a = probs[np.arange(stop - start), actions[start:stop]]
            pi_logged[start:stop] = pi_a
            accepted[start:stop] = uniforms[start:stop] < pi_a * c / propensities[start:stop]
        return accepted, pi_logged

    def _replay_reference(
        self,
        ctx: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        uniforms: np.ndarray,
        c: float,
        window: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The reference replay loop, in terms of :meth:`action_probs` and :meth:`_update`.

        The state only changes on acceptance, so the probabilities of a window of upcoming
        events are computed at once with the current state, up to the first acceptance; the
        window adapts to the gaps between acceptances (about twice the last one, at most
        ``window``), and the result does not depend on it. Python runs once per accepted
        event, not per logged event."""
        n = len(ctx)
        accepted = np.zeros(n, bool)
        pi_logged = np.empty(n)
        t = 0
        w = min(window, 16)
        while t < n:
            stop = min(t + w, n)
            probs = self.action_probs(ctx.slice(t, stop))
            pi_a = probs[np.arange(stop - t), actions[t:stop]]
            hit = np.flatnonzero(uniforms[t:stop] < pi_a * c / propensities[t:stop])
            if hit.size == 0:
                pi_logged[t:stop] = pi_a
                t = stop
                w = min(2 * w, window)  # acceptances are rare: look further ahead
                continue
            h = int(hit[0])
            pi_logged[t : t + h + 1] = pi_a[: h + 1]
            w = int(min(max(8, 2 * (h + 1)), window))  # about twice the last gap
            j = t + h
            self._learn(
                ctx.slice(j, j + 1), actions[j : j + 1], rewards[j : j + 1], pi_a[h : h + 1]
            )
            accepted[j] = True
            t = j + 1
        return accepted, pi_logged

    # ----- state ------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Learned state as a dict of arrays/scalars (for saving a trained policy)."""
        return {
            k: v for k, v in vars(self).items() if k.endswith("_") and k not in ("spec_", "rng_")
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore learned state saved by :meth:`get_state` (arrays are copied)."""
        for k, v in state.items():
            setattr(self, k, v.copy() if isinstance(v, np.ndarray) else v)


__all__ = [
    "Contexts",
    "Decisions",
    "Policy",
    "ProblemSpec",
    "SeedLike",
    "one_hot_argmax",
    "sample_from",
]
