"""Batch decisions for an audience: one row per user with its exact propensity.

For ``n`` users with contexts ``x_i`` the deployed policy gives ``π(·|x_i)`` over ``K``
variants (:meth:`DeployedPolicy.probs`). Without a holdout, ``a_i ~ π(·|x_i)`` and the
row's ``propensity = π(a_i|x_i)``. With a holdout of share ``s`` and holdout arm ``h``
(the ``baseline`` policy's probabilities, or "no message" — a pseudo-variant
:data:`NO_MESSAGE` added to the catalog), each user is in the holdout with probability
``s`` (``group = holdout``) and then ``a_i ~ h(·|x_i)``, else ``a_i ~ π(·|x_i)``
(``group = treatment``). What was shown was drawn from the mixture

    μ(a|x) = s·h(a|x) + (1 − s)·π(a|x),

so ``propensity = μ(a_i|x_i)`` and ``action_probs = μ(·|x_i)``: the logging policy's exact
distribution, which is what off-policy estimators need. ``policy_probs`` (``π``) and
``holdout_probs`` (``h``) are written too, so ``evaluate policy=given
policy.column=policy_probs`` estimates the deployed policy and ``holdout_probs`` the
holdout arm on the same log.

Randomness: ``seed`` is split (:class:`numpy.random.SeedSequence`) into three streams —
holdout assignment, the policy's draw, the holdout arm's draw — each drawing one uniform
per user in row order, so the decisions depend on the seed and the rows only, not on how
the audience is cut into batches. Every step is a whole-array numpy / polars operation
(hashing user ids, when requested, is the one per-row step).

Decision records (one schema for batch files and, later, a server's store):

=================  ==============================  ========================================
column             type                            meaning
=================  ==============================  ========================================
``event_id``       string                          ``<batch id>-<row>``: unique per decision
``user_key``       string (optional)               HMAC-SHA256 of the user id (privacy.py)
``timestamp``      datetime (optional)             the audience's own time column, if mapped
context columns    as read                         only the columns the policy reads
``action``         string                          the variant id shown
``propensity``     float64                         μ(action|x), exact
``action_probs``   array[float64, K]               μ(·|x), catalog order
``policy_probs``   array[float64, K] (holdout)     π(·|x)
``holdout_probs``  array[float64, K] (holdout)     h(·|x)
``group``          string (holdout)                ``treatment`` or ``holdout``
``model_version``  string                          the deployed policy's version
``decided_at``     datetime (µs, UTC)              when the batch was decided
=================  ==============================  ========================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bandits.data.contract import ACTION, ACTION_PROBS, PROPENSITY, TIME, VARIANT_ID
from bandits.deploy.bundle import DeployedPolicy
from bandits.errors import ConfigError, DataError
from bandits.policies.base import Contexts, Policy, sample_from

EVENT_ID = "event_id"
MODEL_VERSION = "model_version"
DECIDED_AT = "decided_at"
GROUP = "group"
POLICY_PROBS = "policy_probs"
HOLDOUT_PROBS = "holdout_probs"
TREATMENT, HOLDOUT = "treatment", "holdout"
NO_MESSAGE = "no_message"
HOLDOUT_ARMS = ("baseline", "none")
#: Rows decided per batch (memory: the feature matrix is ``batch_rows × d`` float64).
BATCH_ROWS = 262_144

__all__ = [
    "DECIDED_AT",
    "EVENT_ID",
    "GROUP",
    "HOLDOUT",
    "HOLDOUT_PROBS",
    "MODEL_VERSION",
    "NO_MESSAGE",
    "POLICY_PROBS",
    "TREATMENT",
    "DecideSummary",
    "Decider",
    "Holdout",
    "decide",
    "decide_file",
    "utc_now",
]


def utc_now() -> dt.datetime:
    """The current time in UTC as a naive datetime at microsecond resolution (the form
    ``decided_at`` is stored in)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Holdout:
    """A randomised holdout: ``share`` of the users (0 < share < 1) get the holdout arm.

    ``arm="baseline"``: the ``baseline`` policy (a registered, non-learning policy bound to
    the model's catalog and features, e.g. ``retargeting``) with ``baseline_settings``;
    ``arm="none"``: no message, recorded as the pseudo-variant ``none_variant``.
    """

    share: float
    arm: str = "baseline"
    baseline: str = "retargeting"
    baseline_settings: Mapping[str, Any] = field(default_factory=dict)
    none_variant: str = NO_MESSAGE

    def check(self) -> None:
        try:
            share = float(self.share)
        except (TypeError, ValueError):
            raise ConfigError(f"holdout.share must be a number, got {self.share!r}") from None
        if not 0.0 < share < 1.0:
            raise ConfigError(f"holdout.share={self.share}: must be in (0, 1)")
        if self.arm not in HOLDOUT_ARMS:
            raise ConfigError(f"holdout.arm={self.arm!r}: must be one of {', '.join(HOLDOUT_ARMS)}")
        if self.arm == "none" and not str(self.none_variant).strip():
            raise ConfigError("holdout.none_variant must be a non-empty variant id")


def extended_catalog(catalog: pl.DataFrame, variant: str) -> pl.DataFrame:
    """``catalog`` plus one row for the "no message" pseudo-variant ``variant``: booleans
    false, numbers 0, text ``"none"`` (nothing is shown, nothing is mentioned)."""
    if variant in catalog[VARIANT_ID].to_list():
        raise ConfigError(
            f"holdout.none_variant='{variant}' is already a variant of the catalog: pick "
            "another id for 'no message'"
        )
    row: dict[str, Any] = {}
    for name, dtype in catalog.schema.items():
        if name == VARIANT_ID:
            row[name] = variant
        elif dtype == pl.Boolean:
            row[name] = False
        elif dtype.is_numeric():
            row[name] = 0
        else:
            row[name] = "none"
    extra = pl.DataFrame([row]).cast(
        {
            k: (pl.String if isinstance(v, pl.Enum | pl.Categorical) else v)
            for k, v in catalog.schema.items()
        }
    )
    plain = catalog.cast(
        {k: pl.String for k, v in catalog.schema.items() if isinstance(v, pl.Enum | pl.Categorical)}
    )
    return pl.concat([plain, extra], how="vertical")


def _seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def batch_id(model_version: str, seed: int, decided_at: dt.datetime, label: str) -> str:
    """16 hex digits naming a batch of decisions: SHA-256 of the model version, the seed,
    the decision time and the audience's label. Event ids are ``<batch id>-<row>``."""
    text = json.dumps([model_version, int(seed), decided_at.isoformat(), label])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Decider:
    """Decides batch after batch of one audience (rows in order): same seed, same rows →
    same decisions, however the rows are cut into batches.

    Args:
        deployed: the policy to deploy.
        seed: drives every draw (split into holdout / policy / holdout-arm streams).
        holdout: optional :class:`Holdout`.
        batch: the batch id event ids start with.
        decided_at: the decision time written in every row (default: now, UTC).
    """

    def __init__(
        self,
        deployed: DeployedPolicy,
        *,
        seed: int | np.random.SeedSequence,
        holdout: Holdout | None = None,
        batch: str = "",
        decided_at: dt.datetime | None = None,
    ) -> None:
        ss = _seed_sequence(seed)
        group_ss, policy_ss, arm_ss, baseline_ss = ss.spawn(4)
        self.deployed = deployed
        self.holdout = holdout
        self.decided_at = decided_at or utc_now()
        self.batch = batch or hashlib.sha256(repr(ss.entropy).encode()).hexdigest()[:16]
        self._group_rng = np.random.default_rng(group_ss)
        self._policy_rng = np.random.default_rng(policy_ss)
        self._arm_rng = np.random.default_rng(arm_ss)
        self.rows_done = 0
        self.action_ids: tuple[str, ...] = deployed.action_ids
        self.catalog = deployed.spec.catalog
        self.baseline: Policy | None = None
        if holdout is not None:
            holdout.check()
            if holdout.arm == "baseline":
                from bandits.policies import POLICIES, make_policy

                if holdout.baseline in POLICIES and POLICIES[holdout.baseline].learns:
                    raise ConfigError(
                        f"holdout.baseline='{holdout.baseline}' learns: a holdout arm must be "
                        "a fixed policy (e.g. retargeting, fixed, uniform)"
                    )
                self.baseline = make_policy(holdout.baseline, dict(holdout.baseline_settings))
                self.baseline.reset(deployed.spec, baseline_ss)
            else:
                self.catalog = extended_catalog(self.catalog, str(holdout.none_variant))
                self.action_ids = (*self.action_ids, str(holdout.none_variant))
        self._ids = pl.Series(ACTION, self.action_ids, dtype=pl.String)

    @property
    def n_actions(self) -> int:
        """Variants in the decision file's catalog (``K``, or ``K + 1`` with "no message")."""
        return len(self.action_ids)

    def read_columns(self, available: Sequence[str]) -> tuple[str, ...]:
        """The columns to read from an audience with columns ``available``."""
        return self.deployed.columns_for(available)

    def probabilities(self, ctx: Contexts) -> tuple[np.ndarray, np.ndarray | None]:
        """``π (n, K')`` and the holdout arm's ``h (n, K')`` (None without a holdout) over the
        decision file's ``K'`` variants, for the ``n`` rounds of ``ctx``."""
        pi = self.deployed.policy.action_probs(ctx)
        if self.holdout is None:
            return pi, None
        if self.baseline is not None:
            return pi, self.baseline.action_probs(ctx)
        n, k = pi.shape
        pi = np.hstack([pi, np.zeros((n, 1))])
        h = np.zeros((n, k + 1))
        h[:, k] = 1.0
        return pi, h

    def draw(self, ctx: Contexts) -> Draws:
        """The decisions for the next ``n`` rows of the audience (their contexts ``ctx``):
        one uniform per row from each stream (module docstring), in row order."""
        n = len(ctx)
        pi, h = self.probabilities(ctx)
        u_policy = self._policy_rng.random(n)
        if h is None:
            action, propensity = sample_from(pi, u_policy)
            mu = pi
            group = None
        else:
            share = float(self.holdout.share)  # type: ignore[union-attr]
            in_holdout = self._group_rng.random(n) < share
            a_treat, _ = sample_from(pi, u_policy)
            a_hold, _ = sample_from(h, self._arm_rng.random(n))
            action = np.where(in_holdout, a_hold, a_treat)
            mu = share * h + (1.0 - share) * pi
            propensity = mu[np.arange(n), action]
            group = in_holdout
        start = self.rows_done
        self.rows_done += n
        return Draws(start, action, propensity, mu, pi if h is not None else None, h, group)

    def event_ids(self, draws: Draws) -> list[str]:
        """``<batch id>-<row>`` of each decision of ``draws``."""
        return [f"{self.batch}-{i}" for i in range(draws.start, draws.start + draws.n)]

    def decide(self, frame: pl.DataFrame, keep: Sequence[pl.Series] = ()) -> pl.DataFrame:
        """Decision records (module docstring) for the next ``n`` rows of the audience.

        ``frame``: the rows' context (at least :meth:`read_columns`); ``keep``: series of
        ``n`` values written first after ``event_id`` (e.g. ``user_key``, ``timestamp``)."""
        n = frame.height
        draws = self.draw(self.deployed.contexts(frame))
        k = self.n_actions
        start = draws.start
        rows = pl.int_range(start, start + n, eager=True, dtype=pl.Int64).cast(pl.String)
        columns: list[pl.Series] = [
            (f"{self.batch}-" + rows).alias(EVENT_ID),
            *keep,
            *(frame[c] for c in self.deployed.input_columns if c in frame.columns),
            self._ids.gather(draws.action),
            pl.Series(PROPENSITY, draws.propensity, dtype=pl.Float64),
            pl.Series(ACTION_PROBS, draws.mu, dtype=pl.Array(pl.Float64, k)),
        ]
        if draws.h is not None and draws.group is not None:
            columns += [
                pl.Series(POLICY_PROBS, draws.pi, dtype=pl.Array(pl.Float64, k)),
                pl.Series(HOLDOUT_PROBS, draws.h, dtype=pl.Array(pl.Float64, k)),
                pl.Series(GROUP, np.where(draws.group, HOLDOUT, TREATMENT), dtype=pl.String),
            ]
        out = pl.DataFrame(columns)
        return out.with_columns(
            pl.lit(self.deployed.model_version, dtype=pl.String).alias(MODEL_VERSION),
            pl.lit(self.decided_at, dtype=pl.Datetime("us")).alias(DECIDED_AT),
        )


@dataclass(frozen=True)
class Draws:
    """``n`` decisions drawn by :meth:`Decider.draw`: rows ``start … start + n − 1`` of the
    audience, the chosen variant indices ``action (n,)``, ``propensity (n,)`` = μ(action|x),
    the distribution drawn from ``mu (n, K')``; with a holdout also ``pi (n, K')``,
    ``h (n, K')`` and ``group (n,)`` (True: in the holdout)."""

    start: int
    action: np.ndarray
    propensity: np.ndarray
    mu: np.ndarray
    pi: np.ndarray | None
    h: np.ndarray | None
    group: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.action.shape[0])


def decide(
    deployed: DeployedPolicy,
    frame: pl.DataFrame,
    *,
    seed: int | np.random.SeedSequence,
    holdout: Holdout | None = None,
    batch: str = "",
    decided_at: dt.datetime | None = None,
    batch_rows: int = BATCH_ROWS,
) -> pl.DataFrame:
    """Decision records (module docstring) for every row of ``frame`` (the audience's
    context), in ``batch_rows`` pieces; the result does not depend on ``batch_rows``."""
    if frame.height == 0:
        raise DataError("the audience is empty (0 rows)")
    decider = Decider(deployed, seed=seed, holdout=holdout, batch=batch, decided_at=decided_at)
    parts = [decider.decide(piece) for piece in _pieces(frame, batch_rows)]
    return pl.concat(parts, how="vertical")


def _pieces(frame: pl.DataFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    step = max(1, int(batch_rows))
    for start in range(0, frame.height, step):
        yield frame.slice(start, step)


# ---------------------------------------------------------------------------- files


@dataclass(frozen=True)
class DecideSummary:
    """What a :func:`decide_file` call did."""

    output: str
    rows: int
    treatment: int
    holdout: int
    model_version: str
    batch: str
    seed: int
    decided_at: str
    seconds: float
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "rows": self.rows,
            "treatment": self.treatment,
            "holdout": self.holdout,
            "model_version": self.model_version,
            "batch": self.batch,
            "seed": self.seed,
            "decided_at": self.decided_at,
            "seconds": self.seconds,
            "columns": list(self.columns),
        }


def read_audience(
    path: str | os.PathLike[str],
    decider: Decider,
    *,
    rename: Mapping[str, str] | None = None,
    user_column: str | None = None,
    time_column: str | None = None,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The audience's columns the decisions need (nothing else is read): the policy's
    input columns (renamed from ``rename`` ``{our name: your column}``), the user column and
    the time column when given. Returns the frame and ``{your column: our name}``.

    Raises:
        DataError: unreadable file, a missing column (named, with the file's columns), or
            an empty audience.
    """
    from bandits.data.io import collect, collect_schema, resolve_source, scan
    from bandits.data.load import column_renames

    source = resolve_source(path)
    label = source.label
    lf = scan(source, text_columns=tuple(c for c in (user_column,) if c))
    names = list(collect_schema(lf, label))
    renames = column_renames({}, names, label, rename)
    ours = [renames.get(c, c) for c in names]
    needed = decider.read_columns(ours)
    theirs = {v: k for k, v in renames.items()}
    missing = [c for c in needed if c not in ours]
    if missing:
        shown = ", ".join(f"'{theirs.get(c, c)}'" for c in missing)
        raise DataError(
            f"audience '{label}' lacks context column{'s' if len(missing) > 1 else ''} {shown} "
            f"that the model needs (columns: {', '.join(names)}; map yours with "
            "columns.rename={our name: your column})"
        )
    for role, col in (("user", user_column), ("timestamp", time_column)):
        if col is not None and col not in names:
            raise DataError(
                f"columns.{role}={col}: audience '{label}' has no column '{col}' "
                f"(columns: {', '.join(names)})"
            )
    read = [theirs.get(c, c) for c in needed]
    read += [c for c in (user_column, time_column) if c and c not in read]
    frame = collect(lf.select(read), label, "audience")
    if frame.height == 0:
        raise DataError(f"audience '{label}' is empty (0 rows)")
    return frame.rename(renames), renames


def output_kind(output: str | os.PathLike[str]) -> str:
    """``"parquet"``, ``"csv"`` or ``"directory"`` (a path without a file suffix: the
    simulate app's layout, ``decision_log.parquet`` + ``catalog.parquet`` +
    ``metadata.json``, which ``evaluate`` and ``compare`` read with no further settings)."""
    suffix = Path(os.fspath(output)).suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if suffix == "":
        return "directory"
    raise ConfigError(
        f"output={output}: unsupported file type '{suffix}' (use .parquet, .csv, or a "
        "directory path without a suffix)"
    )


def write_decisions(
    output: str | os.PathLike[str],
    parts: Iterator[pl.DataFrame],
    *,
    catalog: pl.DataFrame,
    metadata: Mapping[str, Any],
) -> tuple[Path, int]:
    """Write decision records atomically: to ``<file>.tmp`` in the output's folder, fsync,
    rename — never a partial file under the final name. A directory output gets its
    ``catalog.parquet`` and ``metadata.json`` first and ``decision_log.parquet`` last (its
    presence marks a complete log). Returns the written log file and its row count."""
    from bandits.data.io import ParquetAppender, _replace_atomically, write_log

    kind = output_kind(output)
    path = Path(os.fspath(output))
    if kind == "csv":
        frames = list(parts)
        frame = pl.concat(frames, how="vertical")
        write_log(frame, path)
        return path, frame.height
    if kind == "directory":
        if path.exists() and not path.is_dir():
            raise ConfigError(f"output={output}: exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        write_log(catalog, path / "catalog.parquet")
        text = json.dumps(dict(metadata), indent=2, default=str)
        _replace_atomically(path / "metadata.json", lambda tmp: Path(tmp).write_text(text, "utf-8"))
        path = path / "decision_log.parquet"
    with ParquetAppender(path, row_group_rows=BATCH_ROWS) as out:
        for frame in parts:
            out.write(frame)
    return path, out.rows_written


def decide_file(
    deployed: DeployedPolicy,
    audience: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    seed: int,
    holdout: Holdout | None = None,
    rename: Mapping[str, str] | None = None,
    user_column: str | None = None,
    time_column: str | None = None,
    id_key: bytes | None = None,
    decided_at: dt.datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    metadata: Mapping[str, Any] | None = None,
) -> DecideSummary:
    """Decide for every user of the ``audience`` file and write the records to ``output``
    (``.parquet``, ``.csv`` or a directory; see :func:`output_kind`), atomically.

    Only the policy's input columns are read and written, plus ``user_key`` (the HMAC of
    ``user_column`` under ``id_key``; required with a user column) and ``timestamp`` (the
    audience's ``time_column``). ``metadata`` is added to a directory's ``metadata.json``
    (which also holds the feature schema, the model version and the holdout).
    """
    from bandits.deploy.privacy import hash_ids

    t0 = time.perf_counter()
    if user_column is not None and id_key is None:
        raise ConfigError("a user column needs the hashing key (id_key): raw ids are never stored")
    kind = output_kind(output)
    decided_at = decided_at or utc_now()
    label = os.fspath(audience)
    bid = batch_id(deployed.model_version, seed, decided_at, label)
    decider = Decider(deployed, seed=seed, holdout=holdout, batch=bid, decided_at=decided_at)
    frame, _ = read_audience(
        audience, decider, rename=rename, user_column=user_column, time_column=time_column
    )
    counts = {"holdout": 0}

    def parts() -> Iterator[pl.DataFrame]:
        for piece in _pieces(frame, batch_rows):
            keep: list[pl.Series] = []
            if user_column is not None:
                assert id_key is not None
                keep.append(hash_ids(piece[user_column], id_key, user_column))
            if time_column is not None:
                keep.append(piece[time_column].alias(TIME))
            out = decider.decide(piece, keep)
            if GROUP in out.columns:
                counts["holdout"] += int((out[GROUP] == HOLDOUT).sum())
            yield out

    meta: dict[str, Any] = {
        "features": deployed.spec.features.to_dict(),
        "model_version": deployed.model_version,
        "policy": deployed.name,
        "batch": bid,
        "seed": int(seed),
        "decided_at": decided_at.isoformat(),
        "holdout": None
        if holdout is None
        else {
            "share": float(holdout.share),
            "arm": holdout.arm,
            "baseline": holdout.baseline if holdout.arm == "baseline" else None,
            "none_variant": holdout.none_variant if holdout.arm == "none" else None,
        },
        **dict(metadata or {}),
    }
    if kind != "directory" and holdout is not None and holdout.arm == "none":
        raise ConfigError(
            "holdout.arm=none adds a 'no message' variant to the catalog: write to a "
            "directory (output=path/without/suffix) so the catalog is kept with the decisions"
        )
    path, rows = write_decisions(output, parts(), catalog=decider.catalog, metadata=meta)
    columns = tuple(pl.read_parquet_schema(path)) if path.suffix == ".parquet" else ()
    return DecideSummary(
        output=str(path),
        rows=rows,
        treatment=rows - counts["holdout"],
        holdout=counts["holdout"],
        model_version=deployed.model_version,
        batch=bid,
        seed=int(seed),
        decided_at=decided_at.isoformat(),
        seconds=time.perf_counter() - t0,
        columns=columns,
    )
