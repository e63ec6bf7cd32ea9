"""Which columns of a log are context, and the :class:`FeatureSchema` that featurises them.

The schema comes, in order of precedence, from the caller, from ``metadata.json``
(``{"features": FeatureSchema.to_dict()}``, as the simulate app writes it), or is inferred
from the context columns with the rules of :meth:`FeatureSchema.infer` — eagerly for a
loaded frame, or with one lazy aggregate query for a stream, so every batch of a stream
is featurised with the same schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from bandits.data.contract import check_context_names, detect_context_columns
from bandits.data.io import collect, read_metadata
from bandits.errors import DataError
from bandits.features import CategoricalFeature, FeatureSchema, NumericFeature

MAX_LEVELS = 200
_HINT = (
    "declare it numeric= (columns.numeric) or exclude_columns= (columns.exclude), or pass "
    "context_columns= or features= to choose the context"
)


def choose_context(
    schema: pl.Schema,
    context_columns: Sequence[str] | None,
    *,
    reward_column: str,
    cost_columns: Iterable[str],
) -> tuple[str, ...]:
    """The given ``context_columns`` (checked) or the ones detected from ``schema``."""
    costs = tuple(cost_columns)
    if context_columns is not None:
        return check_context_names(
            list(context_columns), reward_column=reward_column, cost_columns=costs
        )
    return detect_context_columns(schema, reward_column=reward_column, cost_columns=costs)


def as_feature_schema(features: FeatureSchema | Mapping[str, Any], origin: str) -> FeatureSchema:
    """A FeatureSchema from a schema or its ``to_dict()`` form (DataError if malformed)."""
    if isinstance(features, FeatureSchema):
        return features
    if not isinstance(features, Mapping):
        raise DataError(f"{origin}: 'features' must be a FeatureSchema dict, got {features!r}")
    try:
        return FeatureSchema.from_dict(features)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{origin}: malformed 'features' ({exc})") from None


def metadata_features(path: object | None) -> FeatureSchema | None:
    """The ``features`` entry of a ``metadata.json`` (None if no file or no entry)."""
    if path is None:
        return None
    meta = read_metadata(path)  # type: ignore[arg-type]
    if "features" not in meta:
        return None
    return as_feature_schema(meta["features"], f"metadata '{path}'")


def infer_features(frame: pl.DataFrame, columns: Sequence[str]) -> FeatureSchema:
    """:meth:`FeatureSchema.infer` over ``columns`` of a loaded frame."""
    try:
        return FeatureSchema.infer(frame, columns, max_levels=MAX_LEVELS)
    except DataError as exc:
        raise DataError(f"{exc}; or {_HINT}") from None


def _categorical_like(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Boolean) or isinstance(dtype, pl.Categorical | pl.Enum)


def infer_features_lazy(
    lf: pl.LazyFrame, schema: pl.Schema, columns: Sequence[str], label: str
) -> FeatureSchema:
    """Same rules as :meth:`FeatureSchema.infer`, computed by one streaming aggregate over a
    scan (levels of categorical columns, mean and population std of numeric ones), so a log
    larger than memory gets one schema for all its batches."""
    cats = [c for c in columns if _categorical_like(schema[c])]
    nums = [c for c in columns if c not in cats]
    for c in nums:
        if not schema[c].is_numeric():
            raise DataError(f"context column '{c}' has unsupported type {schema[c]}; or {_HINT}")
    aggs: list[pl.Expr] = []
    for c in cats:
        values = pl.col(c).drop_nulls().unique().cast(pl.String)  # unique first: cheap on Enum
        aggs.append(values.implode().alias(c))
    for c in nums:
        x = pl.col(c).cast(pl.Float64).fill_nan(None)
        aggs += [x.mean().alias(f"{c}\0mean"), x.std(ddof=0).alias(f"{c}\0std")]
    if not aggs:
        return FeatureSchema()
    row = collect(lf.select(aggs), label, streaming=True).row(0, named=True)
    categorical = []
    for c in cats:
        levels = tuple(sorted(str(v) for v in row[c]))
        if len(levels) > MAX_LEVELS:
            raise DataError(
                f"context column '{c}' has {len(levels)} distinct values (more than "
                f"{MAX_LEVELS}): pass it as numeric or drop it; or {_HINT}"
            )
        categorical.append(CategoricalFeature(c, levels))
    numeric = []
    for c in nums:
        mean, sd = row[f"{c}\0mean"], row[f"{c}\0std"]
        center = float("nan") if mean is None else float(mean)
        numeric.append(NumericFeature(c, center, float(sd) if sd else 1.0))
    return FeatureSchema(categorical=tuple(categorical), numeric=tuple(numeric))
