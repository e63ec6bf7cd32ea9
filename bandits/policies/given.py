"""Policies given from outside: probabilities in the log itself, or a table per context cell.

Evaluate the live system's own distribution, or a vendor's policy, on a decision log without
writing Python. Neither policy learns (``learns = False``): the ``evaluate`` app's
``mode=auto`` treats them as fixed and runs every estimator, and the estimates are exactly
those of the same probabilities given in Python.

``given`` -- the target policy's probabilities are columns of the log (set exactly one of):

* ``column``: one array / list column of ``K`` probabilities per row, in catalog order (a CSV
  log stores it as text ``[0.1, 0.9]``), e.g. ``target_probs``; ``action_probs`` evaluates
  the logger on its own log;
* ``columns``: one column per variant, in catalog order;
* ``prefix``: one column per variant named ``<prefix><variant id>``, e.g. ``p_email_a``.

The ``evaluate`` app loads the log with ``load_log(target_columns=policy.target_columns)``,
so these columns are never context (no reward model sees them) and the column table shows
them as "target policy probabilities".

``table`` -- a parquet / CSV file (or, from Python, a polars frame) of probabilities per
context cell. ``keys`` names the columns that identify a cell (e.g. ``[segment, channel]``;
``[]``: one row for everyone); the rest is, either

* wide: one column per variant id, every id of the catalog and nothing else; or
* long: columns ``variant_id`` and ``probability`` (a table with both is read as long), one
  row per (cell, variant); variants a cell does not list have probability 0.

Each log row takes the probabilities of the cell its key columns match (text keys match by
text -- an Enum ``email`` matches ``"email"`` --, numeric keys by value). Rows whose cell is
not in the table are an error naming the first such cells (``missing: uniform`` gives them
``1/K`` instead). The ``table`` policy needs only context columns, so it also runs in the
simulator (``python -m experiments.simulate policy=table ...``).

Probabilities are checked, never repaired: negative, NaN or missing entries and rows (cells)
that do not sum to 1 within ``1e-6`` (:data:`~bandits.ope.validation.PROB_SUM_TOL`) are a
one-line :class:`~bandits.errors.DataError` naming the column or file and the first rows or
cells; nothing is renormalised. Row numbers are positions in the rows the policy is given:
the log as evaluated (in time order when ``load_log`` sorted it), a batch when streamed.

Example (a wide table for two variants, keyed by channel)::

    import polars as pl
    from bandits.policies import make_policy
    cells = pl.DataFrame({"channel": ["email", "sms"], "a": [0.9, 0.2], "b": [0.1, 0.8]})
    policy = make_policy("table", {"table": cells, "keys": ["channel"]})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import ConfigError, DataError, first_rows
from bandits.ope.validation import PROB_SUM_TOL
from bandits.policies.base import Contexts, Policy, ProblemSpec
from bandits.policies.registry import register_policy

__all__ = ["CellTable", "GivenProbabilities", "check_distributions"]

_SHOWN = 3  # offending values / cells quoted in a message
_SOURCES = ("column", "columns", "prefix")
#: ``table``'s ``missing`` setting: what a log row whose cell is not in the table gets.
MISSING = ("error", "uniform")
#: Column names of a long table.
LONG_VARIANT, LONG_PROBABILITY = "variant_id", "probability"
_CELL = "__cell__"


def check_distributions(
    probs: np.ndarray,
    where: str,
    locate: Callable[[np.ndarray], str],
    entries: tuple[str, Sequence[str]] | None = None,
) -> np.ndarray:
    """Return ``probs`` ``(m, K)`` if every row is a probability distribution, else raise.

    Args:
        probs: ``(m, K)`` float64 rows (log rows or table cells); NaN marks a missing entry.
        where: what the rows are, to start the message (e.g. ``"policy 'given': column
            'target_probs'"``).
        locate: ``(m,)`` boolean mask -> the offending rows in words (e.g.
            :func:`bandits.errors.first_rows`).
        entries: ``(noun, K labels)`` naming the ``K`` entries of a row (e.g. ``("columns",
            ["p_a", "p_b"])``), to say where negative or NaN entries are.

    Raises:
        DataError: one line: negative / NaN entries, or rows not summing to 1 within
            :data:`~bandits.ope.validation.PROB_SUM_TOL` (not renormalised).
    """
    if probs.size == 0:
        return probs
    if not probs.min() >= 0.0:  # NaN fails the comparison too
        bad = np.asarray(~(probs >= 0.0), dtype=bool)
        rows: np.ndarray = np.asarray(bad.any(axis=1))
        shown = [float(v) for v in probs[bad][:_SHOWN]]
        at = ""
        if entries is not None:
            noun, labels = entries
            names = [repr(labels[int(j)]) for j in np.flatnonzero(bad.any(axis=0))]
            noun = noun if len(names) > 1 else noun.removesuffix("s")
            at = f" ({noun} {', '.join(names[:_SHOWN])}{', …' if len(names) > _SHOWN else ''})"
        raise DataError(
            f"{where}: negative, NaN or missing probabilities{at} in {locate(rows)}, e.g. {shown}"
        )
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOL
    if off.any():
        shown_sums = ", ".join(f"{s:.10g}" for s in sums[off][:_SHOWN])
        raise DataError(
            f"{where}: probabilities that do not sum to 1 (tolerance {PROB_SUM_TOL:g}; they are "
            f"not renormalised) in {locate(off)}, e.g. sums {shown_sums}"
        )
    return probs


def _names(columns: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", … ({len(columns)} in all)" if len(columns) > limit else "")


# --------------------------------------------------------------------------- given
def _text_lists(s: pl.Series, where: str) -> pl.Series:
    """A text column of lists ``"[0.1, 0.9]"`` (a CSV log) -> a list-of-float64 column."""
    body = s.str.strip_chars()
    framed = (body.str.starts_with("[") & body.str.ends_with("]")).fill_null(True)
    items = body.str.strip_prefix("[").str.strip_suffix("]").str.split(",")
    values = items.list.eval(pl.element().str.strip_chars().cast(pl.Float64, strict=False))
    unparsed = (values.list.drop_nulls().list.len() != items.list.len()).fill_null(False)
    bad = (~framed | unparsed).to_numpy()
    if bad.any():
        shown = s.filter(pl.Series(bad)).head(_SHOWN).to_list()
        raise DataError(
            f"{where}: text that is not a list of numbers in {first_rows(bad)}: {shown}"
        )
    return values


def _array_probs(s: pl.Series, k: int, where: str) -> np.ndarray:
    """An array / list (or CSV text) column of ``K`` probabilities per row -> ``(n, K)``."""
    if s.dtype == pl.String:
        s = _text_lists(s, where)
    if not isinstance(s.dtype, pl.Array | pl.List) or not s.dtype.inner.is_numeric():
        raise DataError(f"{where}: expected a list of K = {k} probabilities per row, got {s.dtype}")
    if s.null_count():
        raise DataError(f"{where}: missing (null) rows in {first_rows(s.is_null().to_numpy())}")
    if isinstance(s.dtype, pl.List):
        lengths = s.list.len().to_numpy()
        bad = lengths != k
        if bad.any():
            seen = sorted({int(n) for n in lengths[bad]})[:_SHOWN]
            raise DataError(
                f"{where}: lists of {', '.join(map(str, seen))} probabilities but the catalog "
                f"has K = {k} variants, in {first_rows(bad)}"
            )
        s = s.list.to_array(k)
    elif s.dtype.size != k:
        raise DataError(
            f"{where}: arrays of {s.dtype.size} probabilities but the catalog has K = {k} "
            "variants (every row)"
        )
    probs: np.ndarray = s.cast(pl.Array(pl.Float64, k)).to_numpy()  # inner nulls -> NaN
    return probs


@register_policy("given")
class GivenProbabilities(Policy):
    """The target policy's probabilities ``(n, K)``, read from the log's own columns.

    Set exactly one of ``column`` (one array / list column of ``K`` probabilities, catalog
    order), ``columns`` (one column per variant, catalog order) or ``prefix`` (columns
    ``<prefix><variant id>``). Rows are checked (no negative / NaN entries, sums 1 within
    1e-6), never renormalised. See :mod:`bandits.policies.given`.
    """

    learns = False

    def __init__(
        self,
        column: str | None = None,
        columns: Sequence[str] | None = None,
        prefix: str | None = None,
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.column = column
        self.columns = columns
        self.prefix = prefix

    def _check_settings(self) -> None:
        super()._check_settings()
        chosen = [f"policy.{n}" for n in _SOURCES if getattr(self, n) is not None]
        if len(chosen) > 1:
            raise ConfigError(
                f"policy 'given' reads one of policy.column, policy.columns, policy.prefix; "
                f"got {' and '.join(chosen)}"
            )
        for name in ("column", "prefix"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"policy.{name} must be a column name, got {value!r}")
        if self.columns is not None:
            names = self.columns
            if isinstance(names, str) or not all(isinstance(c, str) and c for c in names):
                raise ConfigError(f"policy.columns must be a list of column names, got {names!r}")
            if len(set(names)) != len(names) or not names:
                raise ConfigError(f"policy.columns must name distinct columns, got {list(names)}")

    def _require_source(self) -> None:
        self._check_settings()
        if all(getattr(self, n) is None for n in _SOURCES):
            raise ConfigError(
                "policy 'given' needs to know where the target's probabilities are: "
                "policy.column=<array column> (K probabilities per row), "
                "policy.columns=[<one column per variant>] or policy.prefix=<prefix> "
                "(columns <prefix><variant id>)"
            )

    def target_columns(self, columns: Sequence[str]) -> tuple[str, ...]:
        """The log's probability columns among ``columns`` (the log's column names)."""
        self._require_source()
        if self.prefix is not None:
            found = tuple(c for c in columns if c.startswith(self.prefix))
            if not found:
                self._no_prefixed_columns(columns)
            return found
        names = (self.column,) if self.column is not None else tuple(self.columns or ())
        self._check_present(names, columns)
        return names

    def _no_prefixed_columns(self, columns: Sequence[str]) -> None:
        raise DataError(
            f"policy 'given' reads its probabilities from the log, which has no column starting "
            f"with '{self.prefix}' (policy.prefix; columns: {_names(list(columns))})"
        )

    def _check_present(self, names: Sequence[str], columns: Sequence[str]) -> None:
        missing = [c for c in names if c not in columns]
        if missing:
            setting = "policy.column" if self.column is not None else "policy.columns"
            raise DataError(
                f"policy 'given' reads its probabilities from the log, which has no column "
                f"'{missing[0]}' ({setting}; columns: {_names(list(columns))})"
            )

    def _reset(self, spec: ProblemSpec) -> None:
        self._require_source()
        k = spec.n_actions
        if self.columns is not None and len(self.columns) != k:
            raise ConfigError(
                f"policy.columns names {len(self.columns)} columns but the catalog has {k} "
                "variants (one column per variant, in catalog order)"
            )
        if self.column is not None:
            self.columns_: tuple[str, ...] = (self.column,)
        elif self.columns is not None:
            self.columns_ = tuple(self.columns)
        else:
            self.columns_ = tuple(f"{self.prefix}{v}" for v in spec.action_ids)

    def _check_prefixed(self, columns: Sequence[str]) -> None:
        """Columns ``<prefix>*`` must be exactly one per variant id."""
        prefix = str(self.prefix)
        if not any(c.startswith(prefix) for c in columns):
            self._no_prefixed_columns(columns)
        unknown = [c for c in columns if c.startswith(prefix) and c not in self.columns_]
        missing = [c for c in self.columns_ if c not in columns]
        if unknown or missing:
            parts = []
            if missing:
                ids = [repr(c[len(prefix) :]) for c in missing]
                parts.append(f"no column for variant(s) {_names(ids)}")
            if unknown:
                ids = [repr(c[len(prefix) :]) for c in unknown]
                parts.append(
                    f"columns {_names(unknown)} name variant(s) {_names(ids)} not in the catalog"
                )
            raise DataError(
                f"policy 'given': the '{prefix}<variant id>' columns do not match the catalog's "
                f"ids: {'; '.join(parts)} (variants: {_names(list(self.spec_.action_ids))})"
            )

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        frame, k = ctx.frame, self.spec_.n_actions
        if self.prefix is not None:
            self._check_prefixed(frame.columns)
        self._check_present(self.columns_, frame.columns)
        if self.column is not None:
            where = f"policy 'given': column '{self.column}'"
            return check_distributions(
                _array_probs(frame[self.column], k, where), where, first_rows
            )
        kinds = {c: frame.schema[c] for c in self.columns_}
        wrong = [c for c, t in kinds.items() if not (t.is_numeric() or t == pl.Null)]
        if wrong:
            c = wrong[0]
            raise DataError(f"policy 'given': column '{c}' holds {kinds[c]}, not probabilities")
        probs = frame.select(pl.col(c).cast(pl.Float64) for c in self.columns_).to_numpy()
        where = (
            f"policy 'given': columns '{self.prefix}<variant id>'"
            if self.prefix is not None
            else f"policy 'given': columns {_names(list(self.columns_), 3)}"
        )
        return check_distributions(probs, where, first_rows, ("columns", self.columns_))

    @classmethod
    def example_settings(cls, spec: ProblemSpec) -> dict[str, Any]:
        return {"prefix": "p_"}

    @classmethod
    def example_frame(cls, spec: ProblemSpec, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with columns ``p_<variant id>``: a different distribution per row."""
        n, k = frame.height, spec.n_actions
        weights = 1.0 + (np.arange(n)[:, None] * 5 + np.arange(k)[None, :] * 3) % 7
        probs = weights / weights.sum(axis=1, keepdims=True)
        return frame.with_columns(
            pl.Series(f"p_{v}", probs[:, j]) for j, v in enumerate(spec.action_ids)
        )


# --------------------------------------------------------------------------- table
def _describe_cells(cells: pl.DataFrame) -> str:
    """``"segment=loyal, channel=sms; …"`` for the first rows of ``cells`` (key columns)."""
    if not cells.columns:
        return "the one cell (no keys)"
    rows = [
        ", ".join(f"{k}={v}" for k, v in row.items())
        for row in cells.head(_SHOWN).iter_rows(named=True)
    ]
    return "; ".join(rows) + ("; …" if cells.height > _SHOWN else "")


def _comparable(left: pl.DataType, right: pl.DataType) -> pl.DataType:
    """The type two key columns are matched in: numbers by value, everything else as text."""
    return pl.Float64() if left.is_numeric() and right.is_numeric() else pl.String()


def _wide_probs(
    table: pl.DataFrame, keys: Sequence[str], ids: Sequence[str], label: str
) -> np.ndarray:
    """``(m, K)`` from a wide table (one column per variant id)."""
    rest = [c for c in table.columns if c not in keys]
    missing = [v for v in ids if v not in rest]
    unknown = [c for c in rest if c not in ids]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no column for variant(s) {_names(missing)}")
        if unknown:
            parts.append(
                f"column(s) {_names(unknown)} are neither keys (policy.keys={list(keys)}) nor "
                "variant ids"
            )
        raise DataError(
            f"{label}: the variant columns do not match the catalog: {'; '.join(parts)} "
            f"(variants: {_names(list(ids))}; a long table has columns "
            f"{LONG_VARIANT}, {LONG_PROBABILITY})"
        )
    wrong = [v for v in ids if not (table.schema[v].is_numeric() or table.schema[v] == pl.Null)]
    if wrong:
        raise DataError(
            f"{label}: column '{wrong[0]}' holds {table.schema[wrong[0]]}, not probabilities"
        )
    return table.select(pl.col(v).cast(pl.Float64) for v in ids).to_numpy()


def _long_probs(
    table: pl.DataFrame, cells: pl.DataFrame, keys: Sequence[str], ids: Sequence[str], label: str
) -> np.ndarray:
    """``(m, K)`` for the ``cells`` of a long table (``variant_id``, ``probability``)."""
    extra = [c for c in table.columns if c not in (*keys, LONG_VARIANT, LONG_PROBABILITY)]
    if extra:
        raise DataError(
            f"{label}: a long table has the keys, {LONG_VARIANT} and {LONG_PROBABILITY}; "
            f"column(s) {_names(extra)} are none of these (add them to policy.keys or drop them)"
        )
    if not (
        table.schema[LONG_PROBABILITY].is_numeric() or table.schema[LONG_PROBABILITY] == pl.Null
    ):
        raise DataError(
            f"{label}: column '{LONG_PROBABILITY}' holds {table.schema[LONG_PROBABILITY]}, not "
            "probabilities"
        )
    variant = table[LONG_VARIANT].cast(pl.String)
    index = {v: j for j, v in enumerate(ids)}
    unknown = (~variant.is_in(list(ids))).fill_null(True).to_numpy()
    if unknown.any():
        shown = variant.filter(pl.Series(unknown)).unique(maintain_order=True).head(_SHOWN)
        raise DataError(
            f"{label}: {LONG_VARIANT} values not in the catalog in {first_rows(unknown)}, e.g. "
            f"{shown.to_list()} (variants: {_names(list(ids))})"
        )
    pairs = table.select(*keys, variant.alias(LONG_VARIANT))
    dup = pairs.is_duplicated().to_numpy()
    if dup.any():
        raise DataError(
            f"{label}: (cell, variant) pairs listed more than once: "
            f"{_describe_cells(pairs.filter(pl.Series(dup)).unique(maintain_order=True))} "
            f"(in {first_rows(dup)})"
        )
    if keys:
        cell = table.select(keys).join(
            cells.with_row_index(_CELL), on=list(keys), how="left", maintain_order="left"
        )[_CELL]
        rows = cell.cast(pl.Int64).to_numpy()
    else:
        rows = np.zeros(table.height, np.int64)
    probs = np.zeros((cells.height, len(ids)))
    cols = variant.replace_strict(index, return_dtype=pl.Int64).to_numpy()
    probs[rows, cols] = table[LONG_PROBABILITY].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return probs


def read_cell_table(
    table: pl.DataFrame, keys: Sequence[str], ids: Sequence[str], label: str
) -> tuple[pl.DataFrame, np.ndarray]:
    """Check a table of probabilities per cell and return its ``cells`` (the key columns, one
    row per cell) and ``probs`` ``(m, K)`` in catalog order ``ids``.

    Raises:
        DataError: one line naming ``label`` and the first offending rows or cells: an empty
            table, absent or null key columns, duplicate cells, variant columns (or long
            ``variant_id`` values) that do not match the catalog, non-numeric, negative or NaN
            probabilities, cells not summing to 1 within 1e-6.
    """
    if table.height == 0:
        raise DataError(f"{label} is empty (0 rows)")
    absent = [k for k in keys if k not in table.columns]
    if absent:
        raise DataError(
            f"{label}: no key column '{absent[0]}' (policy.keys; columns: {_names(table.columns)})"
        )
    for k in keys:
        if table[k].null_count():
            raise DataError(
                f"{label}: key column '{k}' has missing values in "
                f"{first_rows(table[k].is_null().to_numpy())}"
            )
    long = LONG_VARIANT in table.columns and LONG_PROBABILITY in table.columns
    if long:
        cells = table.select(keys).unique(maintain_order=True)
        probs = _long_probs(table, cells, keys, ids, label)
    else:
        probs = _wide_probs(table, keys, ids, label)
        cells = table.select(keys)
        dup = cells.is_duplicated().to_numpy() if keys else np.arange(table.height) > 0
        if dup.any():
            shown = _describe_cells(cells.filter(pl.Series(dup)).unique(maintain_order=True))
            raise DataError(f"{label}: cells listed more than once: {shown} (in {first_rows(dup)})")

    def locate(mask: np.ndarray) -> str:
        return (
            f"cells [{_describe_cells(cells.filter(pl.Series(mask)))}] ({int(mask.sum())} in all)"
        )

    noun = ("variants", list(ids))
    return cells, check_distributions(probs, label, locate, noun)


@register_policy("table")
class CellTable(Policy):
    """Probabilities per context cell, from a table: each row gets its cell's ``(K,)`` row.

    ``table`` is a parquet / CSV path (or, from Python, a polars frame), ``keys`` its columns
    that identify a cell (log columns of the same names); the table is wide (one column per
    variant id) or long (``variant_id``, ``probability``). ``missing``: ``"error"`` (default)
    or ``"uniform"`` for log rows whose cell is not in the table. See
    :mod:`bandits.policies.given`.
    """

    learns = False

    def __init__(
        self,
        table: str | os.PathLike[str] | pl.DataFrame | None = None,
        keys: Sequence[str] | None = None,
        missing: str = "error",
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.table = table
        self.keys = keys
        self.missing = missing

    def _check_settings(self) -> None:
        super()._check_settings()
        if self.missing not in MISSING:
            raise ConfigError(
                f"policy.missing must be one of {', '.join(MISSING)}, got {self.missing!r}"
            )
        if self.keys is not None:
            keys = self.keys
            if isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys):
                raise ConfigError(f"policy.keys must be a list of column names, got {keys!r}")
            if len(set(keys)) != len(keys):
                raise ConfigError(f"policy.keys names a column twice: {list(keys)}")
        table = self.table
        if table is not None and not isinstance(table, pl.DataFrame):
            if not isinstance(table, str | os.PathLike) or not str(table).strip():
                raise ConfigError(f"policy.table must be a parquet/CSV path, got {table!r}")
            if not Path(table).is_file():
                raise ConfigError(f"policy.table: no such file: {table}")

    def _reset(self, spec: ProblemSpec) -> None:
        if self.table is None:
            raise ConfigError(
                "policy 'table' needs policy.table=<parquet/CSV file of probabilities per cell> "
                "and policy.keys=[<its key columns>, e.g. segment, channel]"
            )
        if self.keys is None:
            raise ConfigError(
                "policy 'table' needs policy.keys: the table's columns that identify a cell "
                "(e.g. [segment, channel]); [] for one row for everyone"
            )
        if isinstance(self.table, pl.DataFrame):
            frame, self.label_ = self.table, "policy 'table': the table"
        else:
            from bandits.data.io import read_table

            self.label_ = f"policy 'table': table '{os.fspath(self.table)}'"
            frame = read_table(self.table, "policy table", text_columns=(LONG_VARIANT,))
        self.cells_, self.probs_ = read_cell_table(
            frame, list(self.keys), spec.action_ids, self.label_
        )

    def _cell_index(self, frame: pl.DataFrame) -> np.ndarray:
        """``(n,)`` int64 cell of each row of ``frame``; -1 where the table has no cell."""
        keys = list(self.keys or ())
        absent = [k for k in keys if k not in frame.columns]
        if absent:
            raise DataError(
                f"{self.label_}: key column(s) {_names(absent)} are not in the log "
                f"(columns: {_names(frame.columns)})"
            )
        if not keys:
            return np.zeros(frame.height, np.int64)
        types = {k: _comparable(frame.schema[k], self.cells_.schema[k]) for k in keys}
        left = frame.select(pl.col(k).cast(t) for k, t in types.items())
        right = self.cells_.select(pl.col(k).cast(t) for k, t in types.items()).with_row_index(
            _CELL
        )
        joined = left.join(right, on=keys, how="left", maintain_order="left")
        if joined.height != frame.height:  # e.g. cells 0.0 and -0.0: one value once matched
            raise DataError(
                f"{self.label_}: some cells of the table are the same cell once their keys are "
                f"matched to the log's ({', '.join(f'{k} as {t}' for k, t in types.items())})"
            )
        return joined[_CELL].cast(pl.Int64).fill_null(-1).to_numpy()

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        cell = self._cell_index(ctx.frame)
        outside = cell < 0
        if not outside.any():
            return self.probs_[cell]
        if self.missing == "error":
            keys = list(self.keys or ())
            cells = ctx.frame.filter(pl.Series(outside)).select(keys).unique(maintain_order=True)
            raise DataError(
                f"{self.label_}: log rows whose cell is not in the table, {first_rows(outside)}: "
                f"cells [{_describe_cells(cells)}] ({cells.height} in all); add them to the table "
                "or set policy.missing=uniform"
            )
        probs = self.probs_[np.maximum(cell, 0)]
        probs[outside] = 1.0 / self.spec_.n_actions
        return probs

    @classmethod
    def example_settings(cls, spec: ProblemSpec) -> dict[str, Any]:
        """A wide table over the levels of ``spec``'s first categorical feature (one cell for
        everyone if it has none), a different distribution per cell."""
        ids = list(spec.action_ids)
        cats = spec.features.categorical
        keys = [cats[0].name] if cats else []
        levels = list(cats[0].levels) if cats else [None]
        m, k = len(levels), len(ids)
        weights = 1.0 + (np.arange(m)[:, None] * 2 + np.arange(k)[None, :]) % 5
        probs = weights / weights.sum(axis=1, keepdims=True)
        columns = {keys[0]: levels} if keys else {}
        table = pl.DataFrame({**columns, **{v: probs[:, j] for j, v in enumerate(ids)}})
        return {"table": table, "keys": keys}
