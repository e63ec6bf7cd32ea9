"""``iter_log_batches``: stream a parquet log larger than memory in validated row batches.

Parts are scanned lazily as one log and read in consecutive slices of exactly ``batch_rows``
rows (the last may be shorter); polars decodes only the row groups a slice overlaps, so peak
memory is about one batch plus one parquet row group, whatever the log's size. Everything that needs
the whole log — the catalog size for integer actions without a catalog, and an inferred
:class:`~bandits.features.FeatureSchema` — is computed up front by lazy aggregate queries
over only the columns concerned, so every batch shares one catalog and one schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import polars as pl

from bandits.data.context import infer_features_lazy
from bandits.data.contract import ACTION, DEFAULT_COSTS, REWARD, LoggedData
from bandits.data.io import PathLike, collect, collect_schema, resolve_source, scan
from bandits.data.load import (
    CatalogLike,
    FeaturesLike,
    LogPlan,
    TargetColumns,
    assemble,
    check_declarations,
    column_renames,
    exclude_from_context,
    in_file_names,
    plan_log,
    read_catalog,
)
from bandits.data.validate import (
    catalog_of_size,
    check_action_index,
    check_reward,
    validate_log,
)
from bandits.errors import ConfigError, DataError


def _lazy_overrides(
    lf: pl.LazyFrame, plan: LogPlan, categorical: Sequence[str], numeric: Sequence[str]
) -> pl.LazyFrame:
    """The scan with the ``categorical`` context columns cast to text and the ``numeric``
    ones to float64 (numeric columns only: parsing text needs the whole log)."""
    for col in [*categorical, *numeric]:
        if col not in plan.context_columns:
            kind = "categorical" if col in categorical else "numeric"
            raise DataError(
                f"column '{col}' is declared {kind} but is not a context column "
                f"(context: {', '.join(plan.context_columns) or 'none'})"
            )
    for col in numeric:
        if not plan.schema[col].is_numeric():
            raise DataError(
                f"column '{col}' is declared numeric but is {plan.schema[col]}: streaming "
                "does not parse text; load the log whole, or write the column as numbers"
            )
    casts = [pl.col(c).cast(pl.String) for c in categorical]
    casts += [pl.col(c).cast(pl.Float64) for c in numeric]
    return lf.with_columns(casts) if casts else lf


def _frames(lf: pl.LazyFrame, label: str, total: int, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Consecutive slices of ``batch_rows`` rows (the last one shorter) of a parquet scan.

    Polars pushes each slice down to the parquet reader, which uses the files' row counts to
    decode only the row groups overlapping the slice.
    """
    for offset in range(0, total, batch_rows):
        yield collect(lf.slice(offset, batch_rows), label)


def _inferred_catalog(lf: pl.LazyFrame, schema: pl.Schema, label: str) -> pl.DataFrame | None:
    """``0..max(action)`` for integer actions over the whole log (one lazy aggregate)."""
    dtype = schema[ACTION]
    if not (dtype.is_integer() or dtype.is_float()):
        return None  # validate_log explains what is wrong with the first batch
    top = collect(lf.select(pl.col(ACTION).max()), label, streaming=True).item()
    if top is None or top != top or top < 0:  # empty, all null/NaN, or all negative
        return None
    return catalog_of_size(int(top) + 1)


def iter_log_batches(
    path: PathLike,
    catalog: CatalogLike | None = None,
    *,
    batch_rows: int = 1_000_000,
    columns: Sequence[str] | None = None,
    target_columns: TargetColumns = (),
    context_columns: Sequence[str] | None = None,
    reward_column: str = REWARD,
    cost_columns: Iterable[str] = DEFAULT_COSTS,
    features: FeaturesLike | None = None,
    required_context: Sequence[str] = (),
    action_index: str = "id",
    column_map: Mapping[str, str | None] | None = None,
    catalog_id_column: str | None = None,
    rename: Mapping[str, str] | None = None,
    catalog_rename: Mapping[str, str] | None = None,
    reward_type: str | None = None,
    reward_range: Sequence[float] | None = None,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    exclude_columns: Sequence[str] = (),
    user_column: str | None = None,
) -> Iterator[LoggedData]:
    """Stream a parquet log (a file, a directory of parts or the simulate app's layout, or a
    glob) as validated :class:`LoggedData` batches of ``batch_rows`` rows, in log order.

    Each batch has ``action``, ``reward``, ``propensity`` of shape ``(b,)`` and
    ``logging_probs`` ``(b, K)`` (when logged), the same ``catalog`` and ``features`` as every
    other batch, and ``row_offset``: the global index of its first row, also used in error
    messages. Arguments are as for :func:`~bandits.data.load_log` (with a catalog, actions
    map to it by ``variant_id`` unless ``action_index="position"``); ``columns`` limits what
    is read (the required and needed context columns are always read). Batches come in
    file order: streaming does not sort by time (``time_column`` is None).

    ``target_columns`` (a target policy's probabilities, see
    :func:`~bandits.data.load_log`) are always read and never context.

    The source, schema, catalog and features are checked when this is called; a bad row
    raises DataError when its batch is reached (earlier batches were already yielded).
    Streaming needs the ``propensity`` column (estimating a logging policy needs the whole
    log: use :func:`~bandits.data.load_log`, which estimates it when the column is absent).

    The column declarations (``column_map``, ``catalog_id_column``, ``rename``,
    ``catalog_rename``, ``reward_type``,
    ``reward_range``, ``categorical``, ``numeric``, ``exclude_columns``, ``user_column``)
    mean what they mean for :func:`~bandits.data.load_log`; a detected context leaves out
    identifier-like columns by the same rules, with distinct counts from one approximate
    lazy aggregate (HyperLogLog, ``approx_n_unique``) over the scan. ``numeric`` takes
    numeric columns only when streaming (text is parsed by ``load_log``).
    """
    if int(batch_rows) < 1:
        raise ConfigError(f"batch_rows must be >= 1, got {batch_rows}")
    check_action_index(action_index)
    source = resolve_source(path)
    if source.format != "parquet":
        raise DataError(
            f"cannot stream log '{source.label}': streaming reads parquet; "
            "use load_log for CSV or convert it with write_log(frame, 'log.parquet')"
        )
    check_declarations(
        context_columns, features, categorical, numeric, exclude_columns, user_column
    )
    lf = scan(source)
    renames = column_renames(
        dict(column_map or {}), list(collect_schema(lf, source.label)), source.label, rename
    )
    if renames:
        lf = lf.rename(renames)
    schema = collect_schema(lf, source.label)
    plan = plan_log(
        source.label,
        schema,
        catalog=read_catalog(catalog, source.catalog, catalog_id_column, catalog_rename),
        metadata=source.metadata,
        context_columns=context_columns,
        reward_column=reward_column,
        cost_columns=cost_columns,
        features=features,
        required_context=required_context,
        columns=columns,
        target_columns=target_columns,
        propensity_hint=(
            "streaming reads logged propensities: load the log whole with "
            "load_log(..., propensity='auto') to estimate them"
        ),
    )
    total = int(collect(lf.select(pl.len()), source.label).item())  # from the footers
    if total == 0:
        raise DataError(f"log '{source.label}' is empty (0 rows)")
    shared_catalog, inferred, index_by = plan.catalog, False, action_index
    if shared_catalog is None:
        shared_catalog = _inferred_catalog(lf, plan.schema, source.label)
        inferred = shared_catalog is not None
        index_by = "position"  # the inferred catalog's rows are the integer actions

    def distinct(cols: Sequence[str]) -> tuple[int, dict[str, int]]:
        counts = collect(
            lf.select(pl.col(c).approx_n_unique().alias(c) for c in cols),
            source.label,
            streaming=True,
        ).row(0, named=True)
        return total, {c: min(int(counts[c]), total) for c in cols}  # an estimate: ±~1%

    plan, excluded = exclude_from_context(
        plan,
        detected=context_columns is None,
        exclude_columns=exclude_columns,
        user_column=user_column,
        declared_features=(*categorical, *numeric),
        distinct=distinct,
    )
    lf = _lazy_overrides(lf, plan, categorical, numeric)
    schema_f = plan.features or infer_features_lazy(
        lf, collect_schema(lf, source.label), plan.context_columns, source.label
    )

    projected = lf if plan.read_columns is None else lf.select(plan.read_columns)
    extra: dict[str, Any] = {
        "excluded_columns": tuple(excluded.items()),
        "reward_column": reward_column,
        "reward_type": reward_type,
        "renamed_from": tuple((ours, theirs) for theirs, ours in renames.items()),
    }

    def batches() -> Iterator[LoggedData]:
        offset = 0
        for frame in _frames(projected, source.label, total, int(batch_rows)):
            with in_file_names(renames, source.label):
                arrays = validate_log(
                    frame,
                    shared_catalog,
                    required_context=plan.required_context,
                    reward_column=reward_column,
                    row_offset=offset,
                    action_index=index_by,
                )
                declared = check_reward(
                    arrays.reward, reward_column, reward_type, reward_range, offset=offset
                )
            data = assemble(plan, arrays, schema_f, row_offset=offset)
            data = dataclasses.replace(data, reward_range=declared, **extra)
            if inferred:
                data = dataclasses.replace(data, catalog_inferred=True)
            yield data
            offset += frame.height

    return batches()
