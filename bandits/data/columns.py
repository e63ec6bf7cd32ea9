"""Saying what was inferred about a log's columns, and keeping identifiers and personal data
out of the context.

* :func:`identifier_like_columns` -- context candidates that look like identifiers, row
  indexes or personal data, with the reason. When the context is *detected* (the caller
  named neither ``context_columns`` nor ``features``), :func:`bandits.data.load_log` leaves
  them out of the context and records them in ``LoggedData.excluded_columns``; naming a
  column in ``context_columns`` uses it anyway.
* :func:`column_table` -- one row per column of the loaded log: its role (action, reward,
  propensity, time, cost, ground truth, target policy probabilities, context, excluded,
  bookkeeping, unused), its type and a short summary (levels or range). The apps print it
  and log it as ``tables/columns.csv``.

Rules (all cheap: one ``n_unique`` per candidate column):

* names of row indexes written by dataframe libraries: ``""``, ``index``, ``Unnamed: 0``,
  ``__index_level_0__``;
* identifier names: ``id``, ``uuid``, ``guid`` or ending in ``_id`` / ``_uuid`` / ``_key``;
* personal data by name: ``email``, ``name``, ``first_name``, ``last_name``, ``full_name``,
  ``phone``, ``address``, ``ip``, ``ip_address``, ``birth_date``, ``date_of_birth``, ``dob``,
  ``ssn`` (case-insensitive, ``-`` and spaces read as ``_``);
* string or integer columns (not floats: a continuous feature is unique per row by nature)
  with at least 100 rows and distinct values in at least 90% of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import polars as pl

__all__ = ["column_lines", "column_table", "identifier_like_columns"]

_INDEX_NAMES = frozenset({"", "index", "unnamed: 0", "__index_level_0__"})
_ID_NAME = re.compile(r"^(id|uuid|guid)$|_(id|uuid|guid|key)$")
_PERSONAL = frozenset(
    {
        "email",
        "e_mail",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "surname",
        "phone",
        "phone_number",
        "address",
        "street",
        "ip",
        "ip_address",
        "birth_date",
        "date_of_birth",
        "dob",
        "ssn",
    }
)
MIN_ROWS_FOR_UNIQUENESS = 100
UNIQUE_SHARE = 0.9


def _normalised(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def identifier_like_columns(
    frame: pl.DataFrame | None,
    columns: Sequence[str],
    *,
    schema: pl.Schema | None = None,
    distinct: Callable[[Sequence[str]], tuple[int, dict[str, int]]] | None = None,
) -> dict[str, str]:
    """``{column: reason}`` for the ``columns`` that look like identifiers, row indexes or
    personal data (rules in the module docstring), in ``columns`` order.

    The counts come from ``frame`` (``n_unique`` per candidate); for a log that is not in
    memory pass ``schema`` and ``distinct(candidates) -> (rows, {column: distinct values})``
    (e.g. one lazy aggregate over a scan)."""
    if schema is None:
        if frame is None:
            raise ValueError("identifier_like_columns needs a frame or a schema")
        schema = frame.schema
    out: dict[str, str] = {}
    candidates: list[str] = []
    for col in columns:
        key = _normalised(col)
        if key in _INDEX_NAMES or col.strip().lower() in _INDEX_NAMES:
            out[col] = "looks like a row index written by a dataframe library (its name)"
        elif key in _PERSONAL:
            out[col] = "looks like personal data (its name)"
        elif _ID_NAME.search(key):
            out[col] = "looks like an identifier (its name)"
        elif schema[col] == pl.String or schema[col].is_integer():
            candidates.append(col)
    if candidates:
        if distinct is not None:
            n, counts = distinct(candidates)
        else:
            assert frame is not None
            n, counts = frame.height, {c: frame[c].n_unique() for c in candidates}
        if n >= MIN_ROWS_FOR_UNIQUENESS:
            for col in candidates:
                if counts[col] >= UNIQUE_SHARE * n:
                    out[col] = (
                        f"looks like an identifier ({counts[col]:,} distinct values in {n:,} rows)"
                    )
    return {c: out[c] for c in columns if c in out}


def _summary(s: pl.Series) -> str:
    if (
        s.dtype == pl.String
        or isinstance(s.dtype, pl.Categorical | pl.Enum)
        or (s.dtype == pl.Boolean)
    ):
        levels = s.drop_nulls().cast(pl.String).unique().sort()
        shown = ", ".join(levels.head(5).to_list())
        more = f", … ({levels.len()} levels)" if levels.len() > 5 else ""
        return f"levels {shown}{more}"
    if s.dtype.is_numeric() or s.dtype.is_temporal():
        lo, hi = s.min(), s.max()
        return f"range {lo!s} … {hi!s}"
    return str(s.dtype)


def column_table(data: object) -> pl.DataFrame:
    """One row per column of a loaded log (``LoggedData``): ``column`` (our name),
    ``file_column`` (its name in the file, when a mapping renamed it), ``role``, ``type``,
    ``summary`` and, for excluded columns, ``reason``."""
    from bandits.data.contract import (
        ACTION,
        ACTION_PROBS,
        BOOKKEEPING,
        PROPENSITY,
        is_ground_truth,
    )

    frame: pl.DataFrame = data.frame  # type: ignore[attr-defined]
    context = set(data.context_columns)  # type: ignore[attr-defined]
    costs = set(data.cost_columns)  # type: ignore[attr-defined]
    targets = set(getattr(data, "target_columns", ()))
    excluded = dict(getattr(data, "excluded_columns", ()))
    time_column = getattr(data, "time_column", None)
    source = getattr(data, "propensity_source", "logged")
    renamed = dict(getattr(data, "renamed_from", ()))
    rows = []
    for col in frame.columns:
        if col == ACTION:
            role = "action"
        elif col == PROPENSITY:
            role = "propensity" if source == "logged" else "propensity (ignored: estimated)"
        elif col == ACTION_PROBS:
            role = "logging distribution"
        elif col in targets:
            role = "target policy probabilities"
        elif col == time_column:
            role = "time (rows ordered and split by it)"
        elif col in costs:
            role = "cost"
        elif is_ground_truth(col):
            role = "ground truth (simulation only)"
        elif col in context:
            role = "context"
        elif col in excluded:
            role = "excluded from the context"
        elif col in BOOKKEEPING:
            role = "bookkeeping (not context)"
        elif col == getattr(data, "reward_column", "reward"):
            kind = getattr(data, "reward_type", None)
            span = getattr(data, "reward_range", None)
            if kind:
                role = f"reward ({kind}, declared)"
            elif span:
                role = f"reward (in [{span[0]:g}, {span[1]:g}])"
            else:
                role = "reward"
        else:
            role = "unused"
        s = frame[col]
        if col in excluded:  # never echo identifiers or personal data
            summary = f"{s.n_unique():,} distinct values"
        elif isinstance(s.dtype, pl.List | pl.Array):
            summary = ""
        else:
            summary = _summary(s)
        rows.append(
            {
                "column": col,
                "file_column": renamed.get(col, col),
                "role": role,
                "type": str(s.dtype) if len(str(s.dtype)) <= 14 else str(s.dtype.base_type()),
                "summary": summary,
                "reason": excluded.get(col, ""),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "column": pl.String,
            "file_column": pl.String,
            "role": pl.String,
            "type": pl.String,
            "summary": pl.String,
            "reason": pl.String,
        },
    )


def column_lines(table: pl.DataFrame) -> list[str]:
    """The :func:`column_table` as console lines, one per column."""
    names = [
        (r["column"] or '""')
        + (f" ← {r['file_column']}" if r.get("file_column", r["column"]) != r["column"] else "")
        for r in table.iter_rows(named=True)
    ]
    width = max((len(c) for c in names), default=6)
    role_width = max((len(r) for r in table["role"].to_list()), default=6)
    lines = []
    for name, r in zip(names, table.iter_rows(named=True), strict=True):
        why = f" — {r['reason']}" if r["reason"] else ""
        lines.append(
            f"  {name:<{width}}  {r['role']:<{role_width}}  {r['type']:<14}  {r['summary']}{why}"
        )
    return lines
