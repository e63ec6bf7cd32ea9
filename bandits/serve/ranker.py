"""One decision per request: the context checked, candidates applied, the variant drawn with
its exact propensity — the same decision record as a batch file's — and, in shadow mode,
what the candidate policy would have chosen.

**Record.** The acting policy decides through :class:`bandits.deploy.decide.Decider` (one row
per call), so a served decision has exactly the columns, types and meaning of ``decide``'s
rows (``event_id`` = ``<batch id>-<n>``, ``action``, ``propensity``, ``action_probs``,
``model_version``, ``decided_at``; with a holdout ``group``, ``policy_probs``,
``holdout_probs``). Context values arrive as JSON; categorical features become polars
``Enum`` columns of the feature schema's levels, numeric features ``Float64`` (an integer and
a float are the same number to the features), other columns the policy reads by name, text.

**Candidates.** With candidate variants ``C`` (a subset of the catalog) every distribution
``p`` the decision uses (the policy's ``π``, the holdout arm's ``h``, the shadow policy's) is
restricted and renormalised, ``p_C(a) = p(a)·1[a∈C] / Σ_{b∈C} p(b)``; where ``p`` gives
``C`` no mass at all, ``p_C`` is uniform on ``C`` (said in the module, not silently: the
policy had no opinion on these variants). The decision is drawn from ``p_C`` (with a holdout
from ``μ_C = s·h_C + (1 − s)·π_C``), so the logged ``propensity`` is the exact probability
under the restriction and ``action_probs`` the restricted distribution — what off-policy
estimators need. With ``holdout.arm=none`` the "no message" pseudo-variant is always
available.

**Shadow (apprentice) mode.** The baseline acts (it is the Decider's policy and its
decision is what the client shows); the candidate policy scores the same context, restricted
to the same candidates, and its would-be choice is drawn from its own random stream:

=========================  ======================  ======================================
column                     type                    meaning
=========================  ======================  ======================================
``shadow_action``          string                  the variant the candidate would show
``shadow_propensity``      float64                 its probability under the candidate
``shadow_probs``           array[float64, K]       the candidate's distribution ``π_C``
``shadow_model_version``   string                  the candidate's model version
=========================  ======================  ======================================

``evaluate policy=given policy.column=shadow_probs`` on the joined shadow log estimates what
the candidate would have earned from the baseline's logged decisions (with the support
diagnostics of the off-policy estimators).

Randomness: the server's seed and its start index (:meth:`DecisionStore.record_start`) give
a :class:`numpy.random.SeedSequence`, split into the Decider's streams and the shadow stream.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bandits.data.contract import ACTION, ACTION_PROBS, PROPENSITY
from bandits.deploy.bundle import DeployedPolicy
from bandits.deploy.decide import (
    DECIDED_AT,
    EVENT_ID,
    GROUP,
    HOLDOUT,
    HOLDOUT_PROBS,
    MODEL_VERSION,
    POLICY_PROBS,
    TREATMENT,
    Decider,
    Holdout,
    utc_now,
)
from bandits.features import FeatureSchema
from bandits.policies.base import Contexts, sample_from

SHADOW_ACTION = "shadow_action"
SHADOW_PROPENSITY = "shadow_propensity"
SHADOW_PROBS = "shadow_probs"
SHADOW_MODEL_VERSION = "shadow_model_version"
#: Keys a rank request may have.
RANK_KEYS = ("context", "candidates", "user_id")

__all__ = [
    "RANK_KEYS",
    "SHADOW_ACTION",
    "SHADOW_MODEL_VERSION",
    "SHADOW_PROBS",
    "SHADOW_PROPENSITY",
    "Ranker",
    "RequestError",
    "restrict",
]


class RequestError(ValueError):
    """A bad request: ``status`` (4xx) and a one-line message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message


def restrict(probs: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """``probs (n, K)`` restricted to ``allowed (n, K)`` (bool) and renormalised per row;
    a row with no mass on its allowed variants becomes uniform on them; a row with every
    variant allowed is returned as it is (bit for bit). ``None``: all allowed (``probs``
    unchanged)."""
    if allowed is None:
        return probs
    kept = np.where(allowed, probs, 0.0)
    total = kept.sum(axis=1, keepdims=True)
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0.0, kept / np.where(total > 0.0, total, 1.0), uniform)
    return np.where(allowed.all(axis=1, keepdims=True), probs, out)


class _RestrictingDecider(Decider):
    """A :class:`Decider` whose distributions are restricted to ``allowed`` (set per call)."""

    allowed: np.ndarray | None = None

    def probabilities(self, ctx: Contexts) -> tuple[np.ndarray, np.ndarray | None]:
        pi, h = super().probabilities(ctx)
        return restrict(pi, self.allowed), None if h is None else restrict(h, self.allowed)


@dataclass(frozen=True)
class _Column:
    """How a context field is read: ``kind`` ``categorical`` (levels), ``numeric`` or
    ``text`` (a column read by name outside the feature schema)."""

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    dtype: Any = None


def _columns(needed: Sequence[str], schemas: Sequence[FeatureSchema]) -> list[_Column]:
    cats: dict[str, tuple[str, ...]] = {}
    nums: set[str] = set()
    for schema in reversed(schemas):  # the acting policy's levels win (first schema)
        cats.update({c.name: tuple(c.levels) for c in schema.categorical})
        nums.update(n.name for n in schema.numeric)
    out = []
    for name in needed:
        if name in cats:
            out.append(_Column(name, "categorical", cats[name], pl.Enum(list(cats[name]))))
        elif name in nums:
            out.append(_Column(name, "numeric", dtype=pl.Float64))
        else:
            out.append(_Column(name, "text", dtype=pl.String))
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


#: A checked request: its context values (``{column: value}``, categorical levels as text,
#: numbers as float), the allowed mask ``(1, K')`` or None, and the ``keep`` values written
#: after ``event_id`` (``{"user_key": …}`` or empty).
Parsed = tuple[dict[str, Any], np.ndarray | None, dict[str, str]]


class Ranker:
    """Decides one request at a time (thread-safe) and keeps the policies swappable.

    Args:
        acting: the policy whose decision is shown (the baseline in shadow mode).
        seed: the start's seed sequence (module docstring).
        batch: the start's batch id (event ids are ``<batch>-<n>``).
        holdout: optional randomised holdout (live mode).
        shadow: the candidate policy (shadow mode); same variant ids as ``acting``.
        id_key: the HMAC key for ``user_id`` (None: requests with a user id are refused).
        start: the start index written with each record (store bookkeeping).
    """

    def __init__(
        self,
        acting: DeployedPolicy,
        *,
        seed: np.random.SeedSequence,
        batch: str,
        holdout: Holdout | None = None,
        shadow: DeployedPolicy | None = None,
        id_key: bytes | None = None,
        start: int = 0,
    ) -> None:
        from bandits.errors import ConfigError

        if shadow is not None and tuple(shadow.action_ids) != tuple(acting.action_ids):
            raise ConfigError(
                "shadow mode: the baseline and the candidate must have the same variants in "
                f"the same order (baseline {list(acting.action_ids)[:4]}…, candidate "
                f"{list(shadow.action_ids)[:4]}…)"
            )
        if shadow is not None and holdout is not None:
            raise ConfigError(
                "holdout applies to live mode: in shadow mode the baseline acts for everyone "
                "(set holdout.share=null, or shadow=false)"
            )
        decider_ss, shadow_ss = seed.spawn(2)
        self._decider = _RestrictingDecider(acting, seed=decider_ss, holdout=holdout, batch=batch)
        self._shadow_rng = np.random.default_rng(shadow_ss)
        self.shadow = shadow
        self.holdout = holdout
        self.id_key = id_key
        self.start = int(start)
        self.lock = threading.Lock()
        self.variant_ids: tuple[str, ...] = tuple(acting.action_ids)
        self._index = {v: j for j, v in enumerate(self.variant_ids)}
        self.decision_ids: tuple[str, ...] = tuple(self._decider.action_ids)  # K' (no message)
        needed = list(self._decider.read_columns([]))
        if shadow is not None:
            needed += [c for c in shadow.columns_for([]) if c not in needed]
        self.needed: tuple[str, ...] = tuple(needed)
        schemas = [acting.spec.features] + ([shadow.spec.features] if shadow else [])
        self._columns = _columns(self.needed, schemas)
        self._frame_schema = pl.Schema({c.name: c.dtype for c in self._columns})
        self._shadow_levels = (
            {c.name: tuple(c.levels) for c in shadow.spec.features.categorical} if shadow else {}
        )

    # -------------------------------------------------------------------- policies
    @property
    def acting(self) -> DeployedPolicy:
        return self._decider.deployed

    @property
    def batch(self) -> str:
        return self._decider.batch

    def swap(
        self, *, acting: DeployedPolicy | None = None, shadow: DeployedPolicy | None = None
    ) -> None:
        """Replace the acting or the shadow policy (a new model version) between decisions."""
        with self.lock:
            if acting is not None:
                self._decider.deployed = acting
            if shadow is not None:
                self.shadow = shadow

    # -------------------------------------------------------------------- requests
    def parse(self, body: Any) -> Parsed:
        """A rank request ``{"context": {...}, "candidates": [...], "user_id": "..."}`` →
        the one-row context frame, the allowed mask ``(1, K')`` (None: all) and the
        ``keep`` columns (``user_key``).

        Raises:
            RequestError: 422 naming the field — not an object, an unknown key, a missing
                context field, a wrong type, a level outside the feature's levels, an
                unknown / repeated / empty candidate list, a user id without a key.
        """
        if not isinstance(body, dict):
            raise RequestError(422, f"body: expected a JSON object, got {_kind(body)}")
        unknown = [k for k in body if k not in RANK_KEYS]
        if unknown:
            raise RequestError(
                422, f"{unknown[0]}: unknown field (a rank request has {', '.join(RANK_KEYS)})"
            )
        context = body.get("context")
        if not isinstance(context, dict):
            raise RequestError(
                422,
                "context: required, an object of the model's context fields "
                f"({', '.join(self.needed)})"
                if context is None
                else f"context: expected an object, got {_kind(context)}",
            )
        values = {col.name: self._field(col, context) for col in self._columns}
        allowed = self._allowed(body.get("candidates"))
        keep: dict[str, str] = {}
        user = body.get("user_id")
        if user is not None:
            if not isinstance(user, str | int) or isinstance(user, bool) or user == "":
                raise RequestError(422, f"user_id: expected a non-empty string, got {_kind(user)}")
            if self.id_key is None:
                raise RequestError(
                    422,
                    "user_id: this server stores no user ids (start it with the hashing key "
                    "set, ids.key_env, to store keyed hashes); send the request without it",
                )
            from bandits.deploy.privacy import USER_KEY, hash_id

            keep[USER_KEY] = hash_id(str(user), self.id_key)
        return values, allowed, keep

    def _field(self, col: _Column, context: Mapping[str, Any]) -> Any:
        where = f"context.{col.name}"
        if col.name not in context:
            raise RequestError(422, f"{where}: missing (the model reads {', '.join(self.needed)})")
        value = context[col.name]
        if col.kind == "categorical":
            if not isinstance(value, str):
                raise RequestError(
                    422,
                    f"{where}: expected a string (one of {list(col.levels)}), got {_kind(value)}",
                )
            shadow_levels = self._shadow_levels.get(col.name)
            if value not in col.levels or (
                shadow_levels is not None and value not in shadow_levels
            ):
                levels = col.levels if value not in col.levels else shadow_levels
                raise RequestError(
                    422, f"{where}: '{value[:60]}' is not one of {list(levels or ())}"
                )
            return value
        if col.kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(422, f"{where}: expected a number, got {_kind(value)}")
            if not math.isfinite(float(value)):
                raise RequestError(422, f"{where}: expected a finite number, got {value}")
            return float(value)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise RequestError(422, f"{where}: expected text or a number, got {_kind(value)}")
        return str(value)

    def _allowed(self, candidates: Any) -> np.ndarray | None:
        if candidates is None:
            return None
        if not isinstance(candidates, list) or not candidates:
            raise RequestError(
                422,
                "candidates: expected a non-empty list of variant ids"
                + (f", got {_kind(candidates)}" if not isinstance(candidates, list) else ""),
            )
        allowed = np.zeros((1, len(self.decision_ids)), dtype=bool)
        for c in candidates:
            if not isinstance(c, str):
                raise RequestError(422, f"candidates: expected variant ids (text), got {_kind(c)}")
            j = self._index.get(c)
            if j is None:
                shown = ", ".join(self.variant_ids[:6]) + (
                    ", …" if len(self.variant_ids) > 6 else ""
                )
                raise RequestError(
                    422, f"candidates: unknown variant '{c[:80]}' (variants: {shown})"
                )
            if allowed[0, j]:
                raise RequestError(422, f"candidates: variant '{c}' is listed twice")
            allowed[0, j] = True
        allowed[0, len(self.variant_ids) :] = True  # "no message" stays available
        return allowed

    def rank(self, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Decide for one request: ``(record, response)`` — the decision record to store
        (``{column: value}``, plus ``__start``) and the JSON answer (``event_id``,
        ``action``, ``propensity``, ``probabilities`` by variant id, ``model_version``, and
        ``group`` with a holdout)."""
        return self.rank_parsed([self.parse(body)])[0]

    def rank_parsed(self, parsed: Sequence[Parsed]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Decide for ``n`` checked requests (:meth:`parse`) at once, in order: one design
        matrix and one draw per row for the batch (the records are the ones ``n`` single
        calls would give with the same random streams, and the ones :meth:`decide_frame`
        gives for the same rows).

        The design matrix is built from the checked values directly
        (:meth:`FeatureSchema.design` on their level codes), not through a dataframe: for
        the one or few rows of a request, a dataframe's fixed cost per call is most of the
        decision's CPU time."""
        if not parsed:
            return []
        rows = [p[0] for p in parsed]
        allowed = self._stacked(parsed)
        ctx = Contexts(
            X=self._design(self.acting.spec.features, rows), make_frame=lambda: self._frame(rows)
        )
        with self.lock:
            decider = self._decider
            decider.allowed = allowed
            decided_at = decider.decided_at = utc_now()
            try:
                draws = decider.draw(ctx)
            finally:
                decider.allowed = None
            shadow = self._shadow_draws(ctx, rows, allowed) if self.shadow is not None else None
            acting = decider.deployed
        ids = decider.action_ids
        inputs = [c for c in acting.input_columns if c in self.needed]
        extra = [c for c in self.needed if c not in inputs]
        results = []
        for i, (event_id, (values, _, keep)) in enumerate(
            zip(decider.event_ids(draws), parsed, strict=True)
        ):
            mu = draws.mu[i].tolist()
            record: dict[str, Any] = {EVENT_ID: event_id, **keep}
            record.update((c, values[c]) for c in inputs)
            action = ids[int(draws.action[i])]
            record[ACTION] = action
            record[PROPENSITY] = float(draws.propensity[i])
            record[ACTION_PROBS] = mu
            if draws.h is not None and draws.group is not None:
                assert draws.pi is not None
                record[POLICY_PROBS] = draws.pi[i].tolist()
                record[HOLDOUT_PROBS] = draws.h[i].tolist()
                record[GROUP] = HOLDOUT if draws.group[i] else TREATMENT
            record[MODEL_VERSION] = acting.model_version
            record.update((c, values[c]) for c in extra)
            if shadow is not None:
                record.update(shadow[i])
            record[DECIDED_AT] = decided_at
            response: dict[str, Any] = {
                EVENT_ID: event_id,
                "action": action,
                "propensity": record[PROPENSITY],
                "probabilities": dict(zip(self.decision_ids, mu, strict=True)),
                "model_version": acting.model_version,
            }
            if GROUP in record:
                response["group"] = record[GROUP]
            record["__start"] = self.start
            results.append((record, response))
        return results

    def _frame(self, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
        """The rows' context frame (categorical columns as their ``Enum``, numbers as
        ``Float64``, other columns as text)."""
        return pl.DataFrame(
            [[row[c.name] for c in self._columns] for row in rows],
            schema=self._frame_schema,
            orient="row",
        )

    def _stacked(self, parsed: Sequence[Parsed]) -> np.ndarray | None:
        """The allowed masks of a batch ``(n, K')`` (None: every variant, every row)."""
        masks = [p[1] for p in parsed]
        if all(m is None for m in masks):
            return None
        full = np.ones((1, len(self.decision_ids)), dtype=bool)
        return np.vstack([full if m is None else m for m in masks])

    @staticmethod
    def _design(schema: FeatureSchema, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``X (n, dim)`` of ``schema`` for checked rows (their levels are known)."""
        levels = schema.level_codes
        codes = np.array(
            [[levels[c.name][row[c.name]] for c in schema.categorical] for row in rows],
            dtype=np.int64,
        ).reshape(len(rows), len(schema.categorical))
        values = np.array(
            [[row[c.name] for c in schema.numeric] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(schema.numeric))
        return schema.design(codes, values)

    def _shadow_draws(
        self, acting: Contexts, rows: Sequence[Mapping[str, Any]], allowed: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """The shadow columns of each row (module docstring); ``acting``: the rows'
        contexts for the acting policy (their frame is shared)."""
        shadow = self.shadow
        assert shadow is not None
        k = len(self.variant_ids)
        mask = None if allowed is None else allowed[:, :k]
        ctx = Contexts(X=self._design(shadow.spec.features, rows), make_frame=lambda: acting.frame)
        probs = restrict(shadow.policy.action_probs(ctx), mask)
        action, propensity = sample_from(probs, np.asarray(self._shadow_rng.random(probs.shape[0])))
        return [
            {
                SHADOW_ACTION: self.variant_ids[int(a)],
                SHADOW_PROPENSITY: float(p),
                SHADOW_PROBS: q.tolist(),
                SHADOW_MODEL_VERSION: shadow.model_version,
            }
            for a, p, q in zip(action, propensity, probs, strict=True)
        ]

    def decide_frame(
        self, frame: pl.DataFrame, allowed: np.ndarray | None, keep: Sequence[pl.Series] = ()
    ) -> pl.DataFrame:
        """Decision records, as a frame, for the rows of a context ``frame`` (the columns
        :attr:`needed`): what :meth:`rank_parsed` gives as dicts, through the batch path
        (:meth:`Decider.decide`)."""
        with self.lock:
            decider = self._decider
            decider.allowed = allowed
            decider.decided_at = utc_now()
            try:
                out = decider.decide(frame, keep)
            finally:
                decider.allowed = None
            extra = [frame[c] for c in self.needed if c not in out.columns]
            if extra:  # columns only the shadow policy reads
                decided = out[DECIDED_AT]
                out = out.drop(DECIDED_AT).with_columns(extra).with_columns(decided)
            if self.shadow is not None:
                out = self._with_shadow(out, frame, allowed)
        return out

    def _with_shadow(
        self, out: pl.DataFrame, frame: pl.DataFrame, allowed: np.ndarray | None
    ) -> pl.DataFrame:
        shadow = self.shadow
        assert shadow is not None
        k = len(self.variant_ids)
        mask = None if allowed is None else allowed[:, :k]
        probs = restrict(shadow.probs(frame), mask)
        action, propensity = sample_from(probs, np.asarray(self._shadow_rng.random(probs.shape[0])))
        ids = pl.Series(SHADOW_ACTION, self.variant_ids, dtype=pl.String)
        columns = [
            ids.gather(action),
            pl.Series(SHADOW_PROPENSITY, propensity, dtype=pl.Float64),
            pl.Series(SHADOW_PROBS, probs, dtype=pl.Array(pl.Float64, k)),
            pl.Series(
                SHADOW_MODEL_VERSION, [shadow.model_version] * probs.shape[0], dtype=pl.String
            ),
        ]
        decided = out[DECIDED_AT]
        return out.drop(DECIDED_AT).with_columns(columns).with_columns(decided)

    def record_schema(self) -> pl.Schema:
        """The polars schema of this ranker's records (a throwaway decision on a made-up
        context, with its own seed: the serving streams are not touched)."""
        example: dict[str, Any] = {}
        for col in self._columns:
            example[col.name] = (
                col.levels[0]
                if col.kind == "categorical"
                else (1.0 if col.kind == "numeric" else "x")
            )
        probe = Ranker(
            self.acting,
            seed=np.random.SeedSequence(0),
            batch="probe",
            holdout=self.holdout,
            shadow=self.shadow,
            id_key=self.id_key,
        )
        values, allowed, _ = probe.parse({"context": example})
        schema = dict(probe.decide_frame(probe._frame([values]), allowed).schema)
        if self.id_key is not None:  # user_key sits after event_id when a request has one
            schema = {"event_id": schema.pop("event_id"), "user_key": pl.String(), **schema}
        return pl.Schema(schema)


def now() -> dt.datetime:
    """The current time (naive UTC, µs): what ``decided_at`` and ``received_at`` hold."""
    return utc_now()
