"""The durable decision / reward store of the HTTP service.

Every decision the service answers is a *decision record* — the row
:class:`bandits.deploy.decide.Decider` writes for a batch file (``event_id``, the context
columns the policy reads, ``action``, ``propensity``, ``action_probs``, ``model_version``,
``decided_at``, and with a holdout ``group`` / ``policy_probs`` / ``holdout_probs``), plus
the shadow columns in shadow mode (:mod:`bandits.serve.ranker`). :meth:`DecisionStore.export`
writes them back as exactly that frame, so ``join`` and then ``evaluate`` / ``compare
source=logs`` read a server's log as they read ``decide``'s.

Backends. A path (``pilot.db``) is an embedded SQLite database opened with the standard
library: WAL journal and ``synchronous=FULL`` by default, so a commit returns only once the
write-ahead log is on disk (fsync). A URL (``sqlite:///pilot.db``,
``postgresql://host/db``) goes through SQLAlchemy with the same SQL (portable types and
``:name`` parameters); for a SQLite URL the same pragmas are set. Only SQLite is tested here
(a server database was not available); the other dialects run the same statements.

Durability and throughput. All writes go through one writer thread: a request submits its
rows and waits on a future; the writer takes everything queued (up to
:data:`MAX_GROUP` items), writes it in **one transaction** and commits (one fsync), then
resolves the futures — *group commit*. A decision's future resolves only after its commit,
and the service answers only after that, so every answered decision is on disk; under load
several requests share one fsync (measured cost in ``experiments/benchmarks/serve_results.md``).

Tables (all created if absent)::

    decisions(event_id PK, seq, start_id, decided_at, model_version, action, propensity,
              record JSON, learned_version)
    rewards(event_id PK, reward, occurred_at, received_at)
    starts(start_id PK, started_at, model_version, seed, batch, settings JSON)
    models(version PK, seq, path, base_version, created_at, trained_on)
    meta(key PK, value)   # record schema, catalog (parquet, base64), features, action ids

One reward per decision: a second reward for the same ``event_id`` is refused
(:class:`StoreConflict`), a reward for an event id with no decision too
(:class:`StoreNotFound`).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import ConfigError, DataError

#: Most queued items one transaction takes (one fsync for all of them).
MAX_GROUP = 512
SYNC_MODES = ("full", "normal", "off")

__all__ = [
    "MAX_GROUP",
    "SYNC_MODES",
    "DecisionStore",
    "StoreConflict",
    "StoreError",
    "StoreNotFound",
    "decode_schema",
    "encode_schema",
]


class StoreError(RuntimeError):
    """The store could not write (disk full, read-only, locked): the request is not
    answered as if it had been recorded."""


class StoreNotFound(LookupError):
    """A reward names an event id the store has no decision for."""


class StoreConflict(LookupError):
    """A reward for an event id that already has one."""


_SCHEMA_SQL = (
    "CREATE TABLE IF NOT EXISTS decisions (event_id VARCHAR(80) PRIMARY KEY, seq BIGINT NOT "
    "NULL, start_id INTEGER NOT NULL, decided_at VARCHAR(32) NOT NULL, model_version "
    "VARCHAR(80) NOT NULL, action VARCHAR(200) NOT NULL, propensity DOUBLE PRECISION NOT NULL, "
    "record TEXT NOT NULL, learned_version VARCHAR(80))",
    "CREATE INDEX IF NOT EXISTS decisions_seq ON decisions (seq)",
    "CREATE TABLE IF NOT EXISTS rewards (event_id VARCHAR(80) PRIMARY KEY, reward DOUBLE "
    "PRECISION NOT NULL, occurred_at VARCHAR(32) NOT NULL, received_at VARCHAR(32) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS starts (start_id INTEGER PRIMARY KEY, started_at VARCHAR(32) "
    "NOT NULL, model_version VARCHAR(80) NOT NULL, seed BIGINT NOT NULL, batch VARCHAR(40) NOT "
    "NULL, settings TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS models (version VARCHAR(80) PRIMARY KEY, seq INTEGER NOT NULL, "
    "path TEXT NOT NULL, base_version VARCHAR(80) NOT NULL, created_at VARCHAR(32) NOT NULL, "
    "trained_on BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR(80) PRIMARY KEY, value TEXT NOT NULL)",
)


# ------------------------------------------------------------------ record schema codec


def encode_schema(schema: pl.Schema | Mapping[str, pl.DataType]) -> list[list[Any]]:
    """A decision record's polars schema as JSON: ``[[name, kind, arg], …]`` with kind
    ``string | float | int | bool | datetime | enum (levels) | array (size) | list``."""
    out: list[list[Any]] = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Enum):
            out.append([name, "enum", [str(v) for v in dtype.categories.to_list()]])
        elif isinstance(dtype, pl.Array):
            out.append([name, "array", int(dtype.size)])
        elif isinstance(dtype, pl.List):
            out.append([name, "list", None])
        elif isinstance(dtype, pl.Datetime):
            out.append([name, "datetime", None])
        elif dtype == pl.Boolean:
            out.append([name, "bool", None])
        elif dtype.is_integer():
            out.append([name, "int", None])
        elif dtype.is_float():
            out.append([name, "float", None])
        else:
            out.append([name, "string", None])
    return out


def decode_schema(spec: Sequence[Sequence[Any]]) -> pl.Schema:
    """The inverse of :func:`encode_schema`."""
    kinds: dict[str, Callable[[Any], pl.DataType]] = {
        "enum": lambda a: pl.Enum(list(a)),
        "array": lambda a: pl.Array(pl.Float64, int(a)),
        "list": lambda a: pl.List(pl.Float64),
        "datetime": lambda a: pl.Datetime("us"),
        "bool": lambda a: pl.Boolean(),
        "int": lambda a: pl.Int64(),
        "float": lambda a: pl.Float64(),
        "string": lambda a: pl.String(),
    }
    return pl.Schema({str(n): kinds[str(k)](a) for n, k, a in spec})


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pl.Series):
        return value.to_list()
    return value


def record_json(row: Mapping[str, Any]) -> str:
    """One decision record (``{column: value}``) as JSON. Floats are written with
    ``repr`` (shortest round-trip), so probabilities read back bit for bit."""
    return json.dumps({k: _plain(v) for k, v in row.items()}, allow_nan=False)


def records_frame(texts: Iterable[str], schema: pl.Schema) -> pl.DataFrame:
    """Decision records (JSON texts from :func:`record_json`) as one frame of ``schema``."""
    rows = [json.loads(t) for t in texts]
    if not rows:
        return pl.DataFrame(schema=schema)
    columns = {}
    for name, dtype in schema.items():
        values = [r.get(name) for r in rows]
        if isinstance(dtype, pl.Datetime):
            columns[name] = pl.Series(name, values, dtype=pl.String).str.to_datetime(time_unit="us")
        else:
            columns[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(columns)


# ------------------------------------------------------------------------ connections


class _Connection:
    """The few calls the store makes, on sqlite3 or SQLAlchemy (``:name`` parameters)."""

    def __init__(self, target: str, sync: str) -> None:
        self.target = target
        self.sync = sync
        self.url = "://" in target
        if self.url:
            self._open_sqlalchemy()
        else:
            self._open_sqlite(target)

    def _open_sqlite(self, path: str) -> None:
        try:
            self.raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.raw.execute("PRAGMA busy_timeout = 10000")
            self.raw.execute("PRAGMA journal_mode = WAL")
            self.raw.execute(f"PRAGMA synchronous = {self.sync.upper()}")
        except sqlite3.Error as exc:
            raise ConfigError(f"store={path}: cannot open it as SQLite ({exc})") from None

    def _open_sqlalchemy(self) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:  # pragma: no cover - installed with MLflow
            raise ConfigError(
                f"store={self.target}: a database URL needs SQLAlchemy (pip install sqlalchemy)"
            ) from None
        try:
            engine = sa.create_engine(self.target, poolclass=sa.pool.NullPool)
        except Exception as exc:  # bad URL / unknown dialect: many exception types
            raise ConfigError(f"store={self.target}: not a usable database URL ({exc})") from None
        if engine.dialect.name == "sqlite":
            sync = self.sync.upper()

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout = 10000")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute(f"PRAGMA synchronous = {sync}")
                cur.close()

        self._sa = sa
        try:
            self.conn = engine.connect()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ConfigError(f"store={self.target}: cannot connect ({first})") from None
        self.engine = engine

    def begin(self) -> None:
        if self.url:
            self.conn.begin()
        else:
            self.raw.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.url:
            self.conn.commit()
        else:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        try:
            if self.url:
                self.conn.rollback()
            else:
                self.raw.execute("ROLLBACK")
        except Exception:  # nothing to roll back
            pass

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        if self.url:
            self.conn.execute(self._sa.text(sql), dict(params or {}))
        else:
            self.raw.execute(sql, dict(params or {}))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self.url:
            self.conn.execute(self._sa.text(sql), [dict(r) for r in rows])
        else:
            self.raw.executemany(sql, rows)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.url:
            result = self.conn.execute(self._sa.text(sql), dict(params or {}))
            rows = [tuple(r) for r in result]
            if not self.conn.in_transaction():
                return rows
            self.conn.commit()  # end the implicit read transaction (see fresh snapshots)
            return rows
        return [tuple(r) for r in self.raw.execute(sql, dict(params or {}))]

    def close(self) -> None:
        if self.url:
            self.conn.close()
            self.engine.dispose()
        else:
            self.raw.close()


# ------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class StoreCounts:
    decisions: int
    rewards: int
    learned: int
    starts: int


class DecisionStore:
    """Decision records and reward events, durable, with group commit (module docstring).

    Args:
        target: a SQLite file path (created) or a database URL.
        sync: ``full`` (fsync every commit; the default), ``normal`` (WAL is synced at
            checkpoints only: a power cut may lose the last commits, a killed process does
            not), ``off`` (benchmarks only).
    """

    def __init__(self, target: str | os.PathLike[str], *, sync: str = "full") -> None:
        if sync not in SYNC_MODES:
            raise ConfigError(f"sync={sync!r}: must be one of {', '.join(SYNC_MODES)}")
        text = os.fspath(target)
        if not text.strip():
            raise ConfigError("store is empty: give a SQLite path or a database URL")
        if "://" not in text:
            parent = Path(text).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"store={text}: folder '{parent}' does not exist")
            text = str(Path(text).expanduser().resolve())
        self.target = text
        self.sync = sync
        self._db = _Connection(text, sync)  # the writer's connection
        try:
            for stmt in _SCHEMA_SQL:
                self._db.execute(stmt)
            if self._db.url:
                self._db.commit()
        except Exception as exc:
            self._db.close()
            raise ConfigError(f"store={text}: cannot create its tables ({exc})") from None
        self._queue: queue.SimpleQueue[tuple[str, Any, Future[Any]] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._read_lock = threading.Lock()
        self._reader: _Connection | None = None
        rows = self._db.query("SELECT MAX(seq) FROM decisions")
        self._seq = int(rows[0][0]) if rows and rows[0][0] is not None else 0
        #: Transactions committed and items written (for the benchmark's group sizes).
        self.commits = 0
        self.items = 0

    # ---------------------------------------------------------------- meta and starts
    def meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = :k", {"k": key})
        return str(rows[0][0]) if rows else None

    def ensure_meta(self, values: Mapping[str, str], what: Mapping[str, str]) -> None:
        """Write ``values`` the first time; on a store that has them, each must be equal,
        else a :class:`ConfigError` naming the key (``what[key]`` says it in words)."""
        for key, value in values.items():
            have = self.meta(key)
            if have is None:
                self._write_now(
                    "INSERT INTO meta (key, value) VALUES (:k, :v)", {"k": key, "v": value}
                )
            elif have != value:
                raise ConfigError(
                    f"store={self.target} holds decisions with another {what.get(key, key)} "
                    "than this server's: use a new store for a changed catalog or features"
                )

    def record_start(self, model_version: str, seed: int, settings: Mapping[str, Any]) -> int:
        """Record a server start; returns its index (0, 1, …): the batch id and the random
        streams of a start are derived from it, so every start draws fresh numbers and event
        ids never repeat across restarts."""
        rows = self._read("SELECT MAX(start_id) FROM starts")
        start = 0 if not rows or rows[0][0] is None else int(rows[0][0]) + 1
        self._write_now(
            "INSERT INTO starts (start_id, started_at, model_version, seed, batch, settings) "
            "VALUES (:s, :t, :m, :seed, :b, :settings)",
            {
                "s": start,
                "t": _now_text(),
                "m": model_version,
                "seed": int(seed),
                "b": str(settings.get("batch", "")),
                "settings": json.dumps(dict(settings), default=str),
            },
        )
        return start

    def set_start_batch(self, start: int, batch: str) -> None:
        self._write_now(
            "UPDATE starts SET batch = :b WHERE start_id = :s", {"b": batch, "s": int(start)}
        )

    def _write_now(self, sql: str, params: Mapping[str, Any]) -> None:
        """A write outside the writer thread (before it starts only)."""
        if self._writer is not None:
            raise RuntimeError("the writer thread owns the connection: submit instead")
        self._db.begin()
        try:
            self._db.execute(sql, params)
            self._db.commit()
        except Exception:
            self._db.rollback()
            raise

    # ---------------------------------------------------------------- writer thread
    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="store-writer", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        """Finish queued writes, stop the writer and close the connections."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        self._db.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def submit_decisions(self, records: Sequence[Mapping[str, Any]]) -> Future[None]:
        """Queue decision records (``{column: value}`` rows of the record schema); the
        future resolves once they are committed (or fails with :class:`StoreError`)."""
        fut: Future[None] = Future()
        self._queue.put(("decisions", list(records), fut))
        return fut

    def submit_reward(
        self, event_id: str, reward: float, occurred_at: dt.datetime, received_at: dt.datetime
    ) -> Future[None]:
        """Queue a reward event; the future fails with :class:`StoreNotFound` (no such
        decision), :class:`StoreConflict` (it has a reward already) or :class:`StoreError`."""
        fut: Future[None] = Future()
        item = {
            "e": str(event_id),
            "r": float(reward),
            "o": time_text(occurred_at),
            "t": time_text(received_at),
        }
        self._queue.put(("reward", item, fut))
        return fut

    def submit_model(
        self,
        version: str,
        path: str,
        base_version: str,
        event_ids: Sequence[str],
    ) -> Future[None]:
        """Queue a learned model version (its snapshot folder ``path``) and the decisions it
        learned from (marked ``learned_version``), in one transaction."""
        fut: Future[None] = Future()
        self._queue.put(("model", (version, path, base_version, list(event_ids)), fut))
        return fut

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write_group(group)
            if stop:
                return

    def _write_group(self, group: list[tuple[str, Any, Future[Any]]]) -> None:
        outcomes: list[BaseException | None] = [None] * len(group)
        try:
            self._db.begin()
            decisions: list[dict[str, Any]] = []
            for i, (kind, payload, _) in enumerate(group):
                if kind == "decisions":
                    decisions += self._decision_rows(payload)
                elif kind == "reward":
                    outcomes[i] = self._reward(payload)
                else:
                    self._model(payload)
            self._db.executemany(
                "INSERT INTO decisions (event_id, seq, start_id, decided_at, model_version, "
                "action, propensity, record) VALUES (:event_id, :seq, :start_id, :decided_at, "
                ":model_version, :action, :propensity, :record)",
                decisions,
            )
            self._db.commit()
        except Exception as exc:
            self._db.rollback()
            self._seq -= sum(len(p) for k, p, _ in group if k == "decisions")
            error = StoreError(_one_line(exc))
            for _, _, fut in group:
                fut.set_exception(error)
            return
        self.commits += 1
        self.items += len(group)
        for (_, _, fut), outcome in zip(group, outcomes, strict=True):
            if outcome is None:
                fut.set_result(None)
            else:
                fut.set_exception(outcome)

    def _decision_rows(self, records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for rec in records:
            self._seq += 1
            rows.append(
                {
                    "event_id": str(rec["event_id"]),
                    "seq": self._seq,
                    "start_id": int(rec.get("__start", 0)),
                    "decided_at": time_text(rec["decided_at"]),
                    "model_version": str(rec["model_version"]),
                    "action": str(rec["action"]),
                    "propensity": float(rec["propensity"]),
                    "record": record_json({k: v for k, v in rec.items() if k != "__start"}),
                }
            )
        return rows

    def _reward(self, item: dict[str, Any]) -> BaseException | None:
        seen = self._db.query("SELECT 1 FROM decisions WHERE event_id = :e", {"e": item["e"]})
        if not seen:
            return StoreNotFound(item["e"])
        had = self._db.query(
            "SELECT received_at FROM rewards WHERE event_id = :e", {"e": item["e"]}
        )
        if had:
            return StoreConflict(str(had[0][0]))
        self._db.execute(
            "INSERT INTO rewards (event_id, reward, occurred_at, received_at) "
            "VALUES (:e, :r, :o, :t)",
            item,
        )
        return None

    def _model(self, payload: tuple[str, str, str, list[str]]) -> None:
        version, path, base, ids = payload
        rows = self._db.query("SELECT MAX(seq) FROM models")
        seq = 0 if not rows or rows[0][0] is None else int(rows[0][0]) + 1
        self._db.execute(
            "INSERT INTO models (version, seq, path, base_version, created_at, trained_on) "
            "VALUES (:v, :s, :p, :b, :t, :n)",
            {"v": version, "s": seq, "p": path, "b": base, "t": _now_text(), "n": len(ids)},
        )
        self._db.executemany(
            "UPDATE decisions SET learned_version = :v WHERE event_id = :e",
            [{"v": version, "e": e} for e in ids],
        )

    # ---------------------------------------------------------------- reads
    def _read(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """A read on its own connection (WAL: readers never wait for the writer)."""
        with self._read_lock:
            if self._reader is None:
                self._reader = _Connection(self.target, self.sync)
            return self._reader.query(sql, params)

    def counts(self) -> StoreCounts:
        d = self._read("SELECT COUNT(*), COUNT(learned_version) FROM decisions")[0]
        r = self._read("SELECT COUNT(*) FROM rewards")[0]
        s = self._read("SELECT COUNT(*) FROM starts")[0]
        return StoreCounts(int(d[0]), int(r[0]), int(d[1]), int(s[0]))

    def event_ids(self) -> list[str]:
        """Every decision's event id, in decision order."""
        return [str(r[0]) for r in self._read("SELECT event_id FROM decisions ORDER BY seq")]

    def schema(self) -> pl.Schema:
        text = self.meta("record_schema")
        if text is None:
            raise DataError(f"store={self.target} has no decisions yet (no record schema)")
        return decode_schema(json.loads(text))

    def decisions(self, where: str = "", params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Decision records (the record schema; decision order), optionally filtered by an
        SQL condition on the ``decisions`` table."""
        schema = self.schema()
        sql = (
            "SELECT record FROM decisions" + (f" WHERE {where}" if where else "") + " ORDER BY seq"
        )
        return records_frame((str(r[0]) for r in self._read(sql, params)), schema)

    def rewards(self, event_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Reward events: ``event_id``, ``reward`` (float64), ``occurred_at`` and
        ``received_at`` (datetime µs, UTC), in arrival order."""
        rows = self._read("SELECT event_id, reward, occurred_at, received_at FROM rewards")
        frame = pl.DataFrame(
            rows,
            schema={
                "event_id": pl.String,
                "reward": pl.Float64,
                "occurred_at": pl.String,
                "received_at": pl.String,
            },
            orient="row",
        ).with_columns(
            pl.col("occurred_at").str.to_datetime(time_unit="us"),
            pl.col("received_at").str.to_datetime(time_unit="us"),
        )
        frame = frame.sort("received_at", maintain_order=True)
        if event_ids is not None:
            frame = frame.filter(pl.col("event_id").is_in(list(event_ids)))
        return frame

    def unlearned(self, closed_before: dt.datetime, limit: int) -> pl.DataFrame:
        """Decisions not learned from yet whose reward is final: it arrived (one reward per
        decision), or the attribution window closed (``decided_at`` before
        ``closed_before``). At most ``limit``, oldest first."""
        sql = (
            "SELECT record FROM decisions WHERE learned_version IS NULL AND (decided_at <= :c "
            "OR event_id IN (SELECT event_id FROM rewards)) ORDER BY seq LIMIT :n"
        )
        rows = self._read(sql, {"c": time_text(closed_before), "n": int(limit)})
        return records_frame((str(r[0]) for r in rows), self.schema())

    def latest_model(self, base_version: str) -> tuple[str, str] | None:
        """``(version, snapshot path)`` of the newest model learned from ``base_version``."""
        rows = self._read(
            "SELECT version, path FROM models WHERE base_version = :b ORDER BY seq DESC LIMIT 1",
            {"b": base_version},
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def catalog(self) -> pl.DataFrame:
        text = self.meta("catalog")
        if text is None:
            raise DataError(f"store={self.target} has no catalog yet (no server has started)")
        return pl.read_parquet(io.BytesIO(base64.b64decode(text)))

    def export(self, directory: str | os.PathLike[str]) -> dict[str, Any]:
        """Write ``<directory>/decisions/`` (the ``decide`` app's directory layout:
        ``decision_log.parquet``, ``catalog.parquet``, ``metadata.json``; atomic) and
        ``<directory>/rewards.parquet`` (``event_id``, ``reward``, ``occurred_at``) — the two
        inputs of ``python -m experiments.join``. Returns the counts."""
        from bandits.data.io import write_log
        from bandits.deploy.decide import write_decisions

        d = Path(os.fspath(directory))
        d.mkdir(parents=True, exist_ok=True)
        frame = self.decisions()
        if frame.height == 0:
            raise DataError(f"store={self.target} has no decisions to export")
        features = json.loads(self.meta("features") or "null")
        meta = {
            "features": features,
            "store": self.target,
            "model_versions": sorted(set(frame["model_version"].to_list())),
            "exported_at": _now_text(),
        }
        path, rows = write_decisions(
            d / "decisions", iter([frame]), catalog=self.catalog(), metadata=meta
        )
        events = self.rewards().select("event_id", "reward", "occurred_at")
        write_log(events, d / "rewards.parquet")
        return {
            "decisions": rows,
            "rewards": events.height,
            "decision_log": str(path),
            "rewards_file": str(d / "rewards.parquet"),
        }


def catalog_text(catalog: pl.DataFrame) -> str:
    """The catalog as base64 parquet (stored in ``meta``)."""
    buf = io.BytesIO()
    catalog.write_parquet(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _now_text() -> str:
    return time_text(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def time_text(when: dt.datetime) -> str:
    """A naive UTC time as fixed-width ISO text (``YYYY-MM-DDTHH:MM:SS.ffffff``), so the
    store's time columns compare as text in time order."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")
