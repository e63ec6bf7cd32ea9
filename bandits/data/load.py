"""``load_log``: read a whole log (file, parts, the simulate app's directory, or a frame),
validate it and return :class:`~bandits.data.contract.LoggedData`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bandits.data.columns import identifier_like_columns
from bandits.data.context import (
    as_feature_schema,
    choose_context,
    infer_features,
    metadata_features,
)
from bandits.data.contract import (
    ACTION,
    ACTION_PROBS,
    DEFAULT_COSTS,
    PROPENSITY,
    REWARD,
    TIME,
    VARIANT_ID,
    LoggedData,
)
from bandits.data.io import (
    LogSource,
    PathLike,
    collect,
    collect_schema,
    read_table,
    resolve_source,
    scan,
)
from bandits.data.validate import (
    REWARD_TYPES,
    LogArrays,
    check_action_index,
    check_catalog,
    check_columns,
    check_numeric_context,
    check_reward,
    time_order,
    time_values,
    validate_log,
)
from bandits.errors import ConfigError, DataError, first_rows
from bandits.features import FeatureSchema

if TYPE_CHECKING:
    from bandits.ope.propensity import LoggingPolicyFit

CatalogLike = pl.DataFrame | PathLike
FeaturesLike = FeatureSchema | Mapping[str, Any]
#: A target policy's probability columns: names, or a function of the log's column
#: names returning them (e.g. :meth:`bandits.policies.base.Policy.target_columns`).
TargetColumns = Sequence[str] | Callable[[Sequence[str]], Sequence[str]]

#: ``load_log(propensity=...)``: use the column if present else estimate / require it /
#: ignore it and estimate.
PROPENSITY_MODES: tuple[str, ...] = ("auto", "require", "estimate")
#: Cross-fitting folds of the estimated logging policy.
ESTIMATION_FOLDS = 5


@dataclass(frozen=True)
class LogPlan:
    """What to read from a log and how to interpret it (decided from the schema alone)."""

    label: str
    schema: pl.Schema
    read_columns: tuple[str, ...] | None  # None: every column
    context_columns: tuple[str, ...]
    features: FeatureSchema | None  # None: infer from the context columns
    required_context: tuple[str, ...]
    catalog: pl.DataFrame | None  # checked; None: infer from integer actions
    reward_column: str
    cost_columns: tuple[str, ...]
    estimate_propensity: bool = False  # ignore propensity / action_probs and estimate
    time_column: str | None = None  # present in the log: order and split by it
    target_columns: tuple[str, ...] = ()  # a target policy's probabilities: never context


def read_catalog(
    catalog: CatalogLike | None,
    found: os.PathLike[str] | None,
    id_column: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> pl.DataFrame | None:
    """The checked catalog: ``catalog`` (frame or path) if given, else the one found beside
    the log, else None. ``id_column``: the catalog's column holding the variant ids, when it
    is not ``variant_id`` (renamed to it); ``rename``: ``{our name: your column}`` for
    catalog columns a policy reads by name (e.g. ``{"category": "item_category"}``)."""
    if catalog is None:
        catalog = found
    if catalog is None:
        if rename:
            raise DataError("catalog_rename is set but there is no catalog (pass catalog=)")
        return None
    if rename:
        table = (
            catalog
            if isinstance(catalog, pl.DataFrame)
            else read_table(catalog, "catalog", text_columns=(id_column or VARIANT_ID,))
        )
        catalog = table.rename(column_renames({}, table.columns, "catalog", rename))
    if id_column and id_column != VARIANT_ID:
        table = (
            catalog
            if isinstance(catalog, pl.DataFrame)
            else read_table(catalog, "catalog", text_columns=(id_column,))
        )
        if id_column not in table.columns:
            raise DataError(
                f"catalog: no id column '{id_column}' (columns: {', '.join(table.columns)})"
            )
        if VARIANT_ID in table.columns:
            raise DataError(
                f"catalog: id column '{id_column}' given, but the catalog also has "
                f"'{VARIANT_ID}'; drop one"
            )
        renamed = table.rename({id_column: VARIANT_ID})
        catalog = renamed.with_columns(pl.col(VARIANT_ID).cast(pl.String))
    if isinstance(catalog, pl.DataFrame):
        return check_catalog(catalog)
    if not isinstance(catalog, str | os.PathLike):
        raise DataError(
            f"catalog must be a polars DataFrame or a parquet/CSV path, got "
            f"{type(catalog).__name__}"
        )
    table = read_table(catalog, "catalog", text_columns=(VARIANT_ID,))  # ids stay ids
    return check_catalog(table, f"catalog '{os.fspath(catalog)}'")


def plan_log(
    label: str,
    schema: pl.Schema,
    *,
    catalog: pl.DataFrame | None,
    metadata: os.PathLike[str] | None,
    context_columns: Sequence[str] | None,
    reward_column: str,
    cost_columns: Iterable[str],
    features: FeaturesLike | None,
    required_context: Sequence[str],
    columns: Sequence[str] | None,
    propensity: str = "require",
    propensity_hint: str = "",
    time_column: str | None = None,
    target_columns: TargetColumns = (),
) -> LogPlan:
    """Decide columns, context and features from the schema; fail fast on missing columns.

    ``propensity`` is :func:`load_log`'s mode; ``propensity_hint`` ends the message when
    the ``propensity`` column is missing but required. ``time_column`` (if in the log) is
    always read and never detected as context; a name other than the default ``timestamp``
    that the log lacks is an error. ``target_columns`` (see :func:`load_log`) are checked,
    always read and never context.
    """
    names = list(schema.names())
    if time_column is not None and time_column not in schema:
        if time_column != TIME:
            raise DataError(
                f"time column '{time_column}' is not in log '{label}' "
                f"(present: {', '.join(names)}); pass time_column=None for row order"
            )
        time_column = None
    estimate = _estimates(propensity, names)
    if propensity == "require" and not propensity_hint:
        propensity_hint = "pass propensity='auto' to estimate it from the log's context"
    if propensity == "auto" and PROPENSITY not in schema:  # has action_probs: not estimated
        propensity_hint = (
            f"the log has '{ACTION_PROBS}' but no '{PROPENSITY}': add the logged action's "
            f"probability as '{PROPENSITY}', or pass propensity='estimate' to ignore both"
        )
    if columns is not None:
        unknown = [c for c in columns if c not in schema]
        if unknown:
            raise DataError(
                f"log '{label}': unknown column(s) {', '.join(unknown)} requested "
                f"(present: {', '.join(names)})"
            )
    if features is not None:
        schema_f: FeatureSchema | None = as_feature_schema(features, "features")
    else:
        schema_f = metadata_features(metadata)
    if schema_f is not None:
        lacking = [c for c in schema_f.columns if c not in schema]
        if lacking:
            origin = (
                "the given features" if features is not None else f"the features in '{metadata}'"
            )
            plural = "s" if len(lacking) > 1 else ""
            raise DataError(
                f"missing context column{plural} {', '.join(repr(c) for c in lacking)} "
                f"needed by {origin} (present: {', '.join(names)})"
            )
    explicit = tuple(context_columns) if context_columns is not None else ()
    target = _target_columns(
        label, names, target_columns, (*explicit, *(schema_f.columns if schema_f else ()))
    )
    needed = tuple(
        dict.fromkeys([*required_context, *explicit, *(schema_f.columns if schema_f else ())])
    )
    check_columns(
        names,
        reward_column=reward_column,
        required_context=needed,
        require_propensity=not estimate,
        propensity_hint=propensity_hint,
    )
    read: tuple[str, ...] | None = None
    view = schema
    if columns is not None:
        logging = () if estimate else (PROPENSITY,)
        timing = () if time_column is None else (time_column,)
        read = tuple(
            c
            for c in names  # file order
            if c in {*columns, ACTION, reward_column, *logging, *timing, *needed, *target}
        )
        view = pl.Schema({c: schema[c] for c in read})
    costs = tuple(cost_columns)
    context = choose_context(view, context_columns, reward_column=reward_column, cost_columns=costs)
    if context_columns is None and time_column is not None:  # the time is bookkeeping
        context = tuple(c for c in context if c != time_column)
    context = tuple(c for c in context if c not in target)
    return LogPlan(
        label=label,
        schema=view,
        read_columns=read,
        context_columns=context,
        features=schema_f,
        required_context=needed,
        catalog=catalog,
        reward_column=reward_column,
        cost_columns=tuple(c for c in costs if c in view),
        estimate_propensity=estimate,
        time_column=time_column,
        target_columns=target,
    )


def _target_columns(
    label: str, names: Sequence[str], target_columns: TargetColumns, context: Sequence[str]
) -> tuple[str, ...]:
    """The ``target_columns`` of a log with columns ``names``, checked: in the log, and not
    the action, propensity or a ``context`` column (``action_probs`` may be a target: the
    logger evaluated on its own log)."""
    chosen = tuple(target_columns(names) if callable(target_columns) else target_columns)
    for col in chosen:
        if col not in names:
            raise DataError(
                f"log '{label}' has no column '{col}' for the target policy's probabilities "
                f"(columns: {', '.join(names)})"
            )
        if col in (ACTION, PROPENSITY) or col in context:
            role = "a context" if col in context else f"the {col}"
            raise DataError(
                f"log '{label}': column '{col}' is {role} column; it cannot also hold the "
                "target policy's probabilities"
            )
    return chosen


def _estimates(mode: str, columns: Sequence[str]) -> bool:
    """Whether ``load_log(propensity=mode)`` estimates the logging policy of a log with
    ``columns``: ``"estimate"`` always; ``"auto"`` when the log has neither ``propensity``
    nor ``action_probs`` (a log with ``action_probs`` only is an export that lost a column:
    it is reported, not estimated); ``"require"`` never."""
    if mode not in PROPENSITY_MODES:
        raise ConfigError(
            f"propensity must be one of {', '.join(repr(m) for m in PROPENSITY_MODES)}, "
            f"got {mode!r}"
        )
    if mode == "auto":
        return PROPENSITY not in columns and ACTION_PROBS not in columns
    return mode == "estimate"


def estimate_logging_policy_of(
    frame: pl.DataFrame,
    action: np.ndarray,
    n_actions: int,
    context_columns: Sequence[str],
    features: FeatureSchema,
    *,
    seed: int = 0,
) -> LoggingPolicyFit:
    """The one place a log's logging policy is estimated (:func:`load_log`,
    :func:`with_estimated_propensities`).

    ``X = features.transform(frame)`` is the log's feature matrix ``(n, d)``, the one the
    estimators use (``data.problem_spec().contexts(data.frame).X``); the model is
    :func:`bandits.ope.propensity.fit_logging_policy_on_log` (cross-fitted multinomial
    logistic regression, with cells of the context columns that best explain the logged
    action) with :data:`ESTIMATION_FOLDS` folds. Returns ``probs (n, K)`` and diagnostics.
    """
    from bandits.ope.propensity import fit_logging_policy_on_log  # scipy: only when needed

    return fit_logging_policy_on_log(
        frame,
        features.transform(frame),
        action,
        n_actions,
        context_columns,
        folds=ESTIMATION_FOLDS,
        seed=seed,
    )


def with_estimated_propensities(data: LoggedData, *, seed: int = 0) -> LoggedData:
    """``data`` with ``propensity (n,)`` and ``logging_probs (n, K)`` replaced by the logging
    policy estimated from its own actions and context (``propensity_source="estimated"``),
    e.g. to check a logged column with
    :func:`bandits.ope.propensity.check_logged_propensities`."""
    fit = estimate_logging_policy_of(
        data.frame, data.action, data.n_actions, data.context_columns, data.features, seed=seed
    )
    return dataclasses.replace(
        data,
        propensity=fit.probs[np.arange(data.n), data.action],
        logging_probs=fit.probs,
        propensity_source="estimated",
        propensity_model=fit.describe(),
    )


def assemble(
    plan: LogPlan, arrays: LogArrays, features: FeatureSchema, row_offset: int = 0
) -> LoggedData:
    """Package validated arrays as LoggedData."""
    if arrays.propensity is None:
        raise DataError(f"log '{plan.label}': no '{PROPENSITY}' column was read")
    return LoggedData(
        frame=arrays.frame,
        catalog=arrays.catalog,
        action_ids=tuple(arrays.catalog["variant_id"].to_list()),
        action=arrays.action,
        reward=arrays.reward,
        propensity=arrays.propensity,
        logging_probs=arrays.logging_probs,
        context_columns=plan.context_columns,
        features=features,
        source=plan.label,
        catalog_inferred=arrays.catalog_inferred,
        cost_columns=plan.cost_columns,
        row_offset=row_offset,
        time_column=plan.time_column,
        target_columns=plan.target_columns,
    )


def _reorder(arrays: LogArrays, order: np.ndarray) -> LogArrays:
    """``arrays`` with their rows (frame and arrays alike) taken in ``order``."""
    return dataclasses.replace(
        arrays,
        frame=arrays.frame[pl.Series(order)],
        action=arrays.action[order],
        reward=arrays.reward[order],
        propensity=None if arrays.propensity is None else arrays.propensity[order],
        logging_probs=None if arrays.logging_probs is None else arrays.logging_probs[order],
    )


def order_by_time(data: LoggedData, time_column: str | None = None) -> LoggedData:
    """``data`` in time order (stable: ties keep their order), by ``time_column`` (default
    ``data.time_column``); unchanged if already in order or it has no time column.

    Returns ``data`` with ``time_column`` set and, when rows moved, ``reordered=True`` and
    ``frame``, ``action``, ``reward``, ``propensity`` and ``logging_probs`` permuted alike.

    Raises:
        DataError: the column is missing, or has null or unparseable times (one line
            naming the column and the first rows).
    """
    column = time_column or data.time_column
    if column is None:
        return data
    if column not in data.frame.columns:
        raise DataError(
            f"time column '{column}' is not in the log (present: {', '.join(data.frame.columns)})"
        )
    order = time_order(time_values(data.frame[column], data.row_offset))
    if order is None:
        return data if data.time_column == column else dataclasses.replace(data, time_column=column)
    return dataclasses.replace(
        data,
        frame=data.frame[pl.Series(order)],
        action=data.action[order],
        reward=data.reward[order],
        propensity=data.propensity[order],
        logging_probs=None if data.logging_probs is None else data.logging_probs[order],
        time_column=column,
        reordered=True,
    )


def check_declarations(
    context_columns: Sequence[str] | None,
    features: object | None,
    categorical: Sequence[str],
    numeric: Sequence[str],
    exclude_columns: Sequence[str],
    user_column: str | None,
    reward_type: str | None = None,
) -> None:
    """Config-level checks of :func:`load_log`'s column declarations (before any reading)."""
    if reward_type is not None and reward_type not in REWARD_TYPES:
        raise ConfigError(
            f"reward_type must be one of {', '.join(REWARD_TYPES)} (or null), got {reward_type!r}"
        )
    for name, value in (
        ("categorical", categorical),
        ("numeric", numeric),
        ("exclude_columns", exclude_columns),
    ):
        if isinstance(value, str):
            raise ConfigError(f"{name} must be a list of column names, got {value!r}")
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise ConfigError(f"column '{both[0]}' is declared both categorical and numeric")
    if (categorical or numeric) and features is not None:
        raise ConfigError(
            "categorical / numeric declarations apply to inferred features; the given "
            "feature schema already fixes how each column is encoded"
        )
    chosen = set(context_columns or ())
    for col in [*exclude_columns, *([user_column] if user_column else [])]:
        if col in chosen:
            raise ConfigError(f"column '{col}' is both a context column and excluded from it")
    for col in [*categorical, *numeric]:
        if col in exclude_columns or col == user_column:
            raise ConfigError(f"column '{col}' is declared a feature and excluded from the context")


def _declared_exclusions(
    label: str, columns: Sequence[str], exclude_columns: Sequence[str], user_column: str | None
) -> dict[str, str]:
    """``{column: reason}`` for the columns the caller keeps out of the context (checked to
    exist in the log)."""
    out: dict[str, str] = {}
    for col in exclude_columns:
        out[col] = "excluded by the column mapping"
    if user_column:
        out[user_column] = "the user column: an identifier, never a feature"
    missing = [c for c in out if c not in columns]
    if missing:
        raise DataError(
            f"log '{label}': excluded column '{missing[0]}' is not in the log "
            f"(columns: {', '.join(columns)})"
        )
    return out


def exclude_from_context(
    plan: LogPlan,
    *,
    detected: bool,
    exclude_columns: Sequence[str] = (),
    user_column: str | None = None,
    declared_features: Sequence[str] = (),
    frame: pl.DataFrame | None = None,
    distinct: Callable[[Sequence[str]], tuple[int, dict[str, int]]] | None = None,
) -> tuple[LogPlan, dict[str, str]]:
    """``plan`` without the context columns the caller excluded (``exclude_columns``,
    ``user_column``) and, when the context was ``detected`` (neither context columns nor a
    feature schema given), without the ones that look like identifiers, indexes or personal
    data (:func:`~bandits.data.columns.identifier_like_columns` on ``frame``, or ``distinct``
    counts for a scan); columns in ``declared_features`` are never flagged. Returns the plan
    and ``{column: reason}`` of what was left out, in column order."""
    declared = _declared_exclusions(plan.label, plan.schema.names(), exclude_columns, user_column)
    excluded = {c: why for c, why in declared.items() if c in plan.context_columns}
    if detected and plan.features is None:
        candidates = [
            c for c in plan.context_columns if c not in declared and c not in declared_features
        ]
        excluded |= identifier_like_columns(
            frame, candidates, schema=plan.schema, distinct=distinct
        )
    if not excluded:
        return plan, {}
    kept = tuple(c for c in plan.context_columns if c not in excluded)
    ordered = {c: excluded[c] for c in plan.context_columns if c in excluded}
    return dataclasses.replace(plan, context_columns=kept), ordered


def _apply_overrides(
    frame: pl.DataFrame,
    context: Sequence[str],
    categorical: Sequence[str],
    numeric: Sequence[str],
) -> pl.DataFrame:
    """``frame`` with the ``categorical`` columns as text (one level per distinct value) and
    the ``numeric`` ones as float64 (text parsed). Both must be context columns."""
    for col in [*categorical, *numeric]:
        if col not in context:
            kind = "categorical" if col in categorical else "numeric"
            raise DataError(
                f"column '{col}' is declared {kind} but is not a context column "
                f"(context: {', '.join(context) or 'none'})"
            )
    casts: list[pl.Expr | pl.Series] = [pl.col(c).cast(pl.String) for c in categorical]
    for col in numeric:
        s = frame[col]
        if s.dtype.is_numeric():
            casts.append(pl.col(col).cast(pl.Float64))
            continue
        parsed = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        bad = (parsed.is_null() & s.is_not_null()).to_numpy()
        if bad.any():
            shown = ", ".join(repr(v) for v in s.filter(pl.Series(bad)).head(3).to_list())
            raise DataError(
                f"column '{col}': declared numeric but has values that are not numbers in "
                f"{first_rows(bad)}, e.g. {shown}"
            )
        casts.append(parsed.alias(col))
    return frame.with_columns(casts)


@contextmanager
def in_file_names(renames: Mapping[str, str], label: str | None = None) -> Iterator[None]:
    """Re-raise a DataError about a renamed column under the name it has in the file, e.g.
    ``column 'reward'`` → ``column 'clicked' (read as reward)``; ``renames`` is
    ``{your column: our name}``. With ``label``, an error about a column's values
    (``column '…': …``) ends naming the log it is in (``… (in log 'clicks.csv')``): a damaged
    file without page checksums fails there."""
    try:
        yield
    except DataError as exc:
        message = str(exc)
        for theirs, ours in renames.items():
            message = message.replace(f"column '{ours}'", f"column '{theirs}' (read as {ours})")
        if label and message.startswith("column '") and label not in message:
            message = f"{message} (in log '{label}')"
        if message == str(exc):
            raise
        raise DataError(message) from None


#: Roles a user's column can be mapped to (``column_map={"action": "item_id", ...}``).
MAPPABLE_ROLES: tuple[str, ...] = (ACTION, REWARD, PROPENSITY, ACTION_PROBS, TIME)


def column_renames(
    column_map: Mapping[str, str | None],
    columns: Sequence[str],
    label: str,
    rename: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{user column: role}`` for a ``column_map`` of ``{role: user column}`` (``None``
    entries are ignored) plus ``rename`` ``{our name: user column}`` for columns a policy
    needs by name (``{"segment": "crm_segment", "last_viewed_category": "last_cat"}``),
    checked against the log's ``columns``: known roles only in ``column_map``, mapped columns
    present, and no other column already named like the target."""
    renames: dict[str, str] = {}
    free = dict(rename or {})
    overlap = sorted(set(free) & {r for r, c in column_map.items() if c is not None})
    if overlap:
        raise ConfigError(f"column mapping: '{overlap[0]}' is both a role and a rename target")
    for role, name in [*column_map.items(), *free.items()]:
        if name is None or name == role:
            continue
        if role not in MAPPABLE_ROLES and role not in free:
            raise ConfigError(
                f"column mapping: unknown role '{role}' (known: {', '.join(MAPPABLE_ROLES)})"
            )
        if name not in columns:
            raise DataError(
                f"column mapping {role}={name}: log '{label}' has no column '{name}' "
                f"(columns: {', '.join(columns)})"
            )
        if role in columns:
            raise DataError(
                f"column mapping {role}={name}: log '{label}' also has a column named "
                f"'{role}'; drop it or map it elsewhere"
            )
        if name in renames:
            raise ConfigError(
                f"column mapping: column '{name}' is mapped twice ({renames[name]}, {role})"
            )
        renames[name] = role
    return renames


def load_log(
    path: PathLike | pl.DataFrame,
    catalog: CatalogLike | None = None,
    *,
    context_columns: Sequence[str] | None = None,
    reward_column: str = REWARD,
    cost_columns: Iterable[str] = DEFAULT_COSTS,
    features: FeaturesLike | None = None,
    required_context: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    target_columns: TargetColumns = (),
    propensity: str = "auto",
    seed: int = 0,
    action_index: str = "id",
    time_column: str | None = TIME,
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
) -> LoggedData:
    """Read, validate and index a whole decision log.

    Args:
        path: a ``.parquet`` / ``.csv`` file, a glob of parts, a directory (the simulate
            app's ``decision_log/``: ``decision_log.parquet`` + ``catalog.parquet`` +
            ``metadata.json``, or a directory of parts), or a polars DataFrame.
        catalog: the action catalog (frame or parquet/CSV path) with ``variant_id``;
            defaults to the directory's ``catalog.*``; without one, integer actions
            define the catalog ``0..max(action)`` (``catalog_inferred=True``). With one,
            actions map to catalog rows by ``variant_id`` (see ``action_index``).
        context_columns: the context; default: every featurisable column that is not
            required, bookkeeping, cost or ground truth (see :mod:`bandits.data.contract`).
        reward_column: the column read as ``reward``.
        cost_columns: outcome columns that are never context (default ``unsubscribed``).
        features: the FeatureSchema (or its dict); default ``metadata.json``'s, else
            inferred from the context columns. Its columns must be in the log.
        required_context: further context columns the policy needs.
        columns: read only these columns (plus the required ones and the needed context).
        target_columns: the columns holding a target policy's probabilities (e.g. the
            ``given`` policy's ``target_probs``, or ``p_<variant id>`` columns), or a
            function of the log's column names returning them (a policy's
            :meth:`~bandits.policies.base.Policy.target_columns`): each must be in the log;
            they are always read, never context, and listed in
            ``LoggedData.target_columns``.
        propensity: ``"auto"`` (default): the ``propensity`` column if present, else (no
            ``propensity`` and no ``action_probs``) the logging policy is estimated;
            ``"require"``: a missing ``propensity`` column is an error; ``"estimate"``:
            ``propensity`` and ``action_probs`` are ignored (not read or checked) and the
            logging policy is estimated. Estimating fits a cross-fitted multinomial logistic
            regression of the logged action on the log's features
            (:func:`estimate_logging_policy_of`); the result has
            ``propensity_source="estimated"``, ``logging_probs`` the estimate and
            ``propensity`` its entry at the logged action. A ``propensity`` column with
            nulls is an error (no part of a column is estimated).
        seed: seeds the estimation's fold split (only used when estimating).
        action_index: with a catalog, ``"id"`` (default): every action is a variant id,
            whatever the file type or how the ids look (integer ``49`` in parquet, or
            ``"49"`` in a CSV, read as text, is the row whose ``variant_id`` is ``"49"``,
            wherever it is in the catalog); ``"position"``: integer actions are catalog
            row positions ``0..K-1`` (strings are still ids). Without a catalog, integer
            actions are positions and the ids ``"0".."K-1"``.
        time_column: the column the log is ordered by (datetimes, dates, numbers, or CSV
            text parsed as datetimes); default ``timestamp``, ignored if the log has none
            (any other name must exist); None keeps row order. Rows out of time order are
            sorted (stably) and the result says so (``reordered=True``); ``time_column``
            records the column and :func:`bandits.offline.split_log` then cuts by time.
        column_map: ``{role: your column}`` for logs whose columns are not named like ours,
            e.g. ``{"action": "item_id", "reward": "click", "propensity": "ps",
            "timestamp": "ts"}`` (roles: :data:`MAPPABLE_ROLES`); the columns are renamed to
            the roles before anything else, so every rule below applies to them.
        catalog_id_column: the catalog's id column when it is not ``variant_id``.
        rename: ``{our name: your column}`` for context columns a policy reads by name
            (``segment``, ``channel``, ``last_viewed_category``, ``days_since_view``), renamed
            with ``column_map``; ``catalog_rename``: the same for the catalog's columns
            (``category``, ``mentions_last_viewed``, ``channels``).
        reward_type: the declared kind of reward, ``"click"`` (0/1), ``"count"`` or
            ``"revenue"`` (:data:`~bandits.data.validate.REWARD_TYPES`): rewards breaking it
            are an error naming the first rows (a ``-1`` in a click log); ``"click"`` fixes
            the range the intervals and bounds use to [0, 1].
        reward_range: the declared ``[min, max]`` of the reward: rewards outside are an
            error; intervals are clipped to it and the support bounds use it.
        categorical: context columns to one-hot encode whatever their type (e.g. integer
            store codes); ``numeric``: context columns to read as numbers (text is parsed;
            unparseable values are an error). Both apply to inferred features only.
        exclude_columns: columns never used as context (recorded in ``excluded_columns``).
        user_column: the column identifying the user: never context, whatever the rules.

    Returns:
        LoggedData with ``action``, ``reward``, ``propensity`` of shape ``(n,)`` and
        ``logging_probs`` ``(n, K)`` when the log has ``action_probs`` or it was estimated.

    Raises:
        DataError: one line naming the file or column and the first offending rows
            (null or unparseable times included; row numbers are the file's).
    """
    check_action_index(action_index)
    check_declarations(
        context_columns, features, categorical, numeric, exclude_columns, user_column
    )
    source: LogSource | None = None
    mapping = dict(column_map or {})
    if isinstance(path, pl.DataFrame):
        label = "<frame>"
        renames = column_renames(mapping, path.columns, label, rename)
        path = path.rename(renames)
        lf, schema = path.lazy(), path.schema
        checked_catalog = read_catalog(catalog, None, catalog_id_column, catalog_rename)
    else:
        source = resolve_source(path)
        checked_catalog = read_catalog(catalog, source.catalog, catalog_id_column, catalog_rename)
        by_id = checked_catalog is not None and action_index == "id"
        label = source.label
        action_name = mapping.get(ACTION) or ACTION
        lf = scan(source, text_columns=(action_name,) if by_id else ())  # CSV ids stay text
        renames = column_renames(mapping, list(collect_schema(lf, label)), label, rename)
        if renames:
            lf = lf.rename(renames)
        schema = collect_schema(lf, label)
    with in_file_names(renames, None if source is None else label):
        plan = plan_log(
            label,
            schema,
            catalog=checked_catalog,
            metadata=source.metadata if source else None,
            context_columns=context_columns,
            reward_column=reward_column,
            cost_columns=cost_columns,
            features=features,
            required_context=required_context,
            columns=columns,
            target_columns=target_columns,
            propensity=propensity,
            time_column=time_column,
        )
        if isinstance(path, pl.DataFrame):
            frame = path if plan.read_columns is None else path.select(plan.read_columns)
        else:
            if plan.read_columns is not None:
                lf = lf.select(plan.read_columns)
            frame = collect(lf, label)
            if frame.height == 0:
                raise DataError(f"log '{label}' is empty (0 rows)")
        arrays = validate_log(
            frame,
            plan.catalog,
            required_context=plan.required_context,
            reward_column=reward_column,
            propensity="ignore" if plan.estimate_propensity else "require",
            action_index=action_index,
        )
        declared_range = check_reward(arrays.reward, reward_column, reward_type, reward_range)
        if categorical or numeric:  # before reordering: error rows are the file's
            frame = _apply_overrides(arrays.frame, plan.context_columns, categorical, numeric)
            arrays = dataclasses.replace(arrays, frame=frame)
        reordered = False
        if plan.time_column is not None:
            order = time_order(time_values(arrays.frame[plan.time_column]))
            if order is not None:
                arrays, reordered = _reorder(arrays, order), True
        plan, excluded = exclude_from_context(
            plan,
            detected=context_columns is None,
            exclude_columns=exclude_columns,
            user_column=user_column,
            declared_features=(*categorical, *numeric),
            frame=arrays.frame,
        )
        check_numeric_context(arrays.frame, plan.context_columns)
        schema_f = plan.features or infer_features(arrays.frame, plan.context_columns)
        extra: dict[str, Any] = {
            "reordered": reordered,
            "reward_column": reward_column,
            "excluded_columns": tuple(excluded.items()),
            "reward_type": reward_type,
            "reward_range": declared_range,
            "renamed_from": tuple((ours, theirs) for theirs, ours in renames.items()),
        }
        if not plan.estimate_propensity:
            return dataclasses.replace(assemble(plan, arrays, schema_f), **extra)
        fit = estimate_logging_policy_of(
            arrays.frame,
            arrays.action,
            arrays.catalog.height,
            plan.context_columns,
            schema_f,
            seed=seed,
        )
        arrays = dataclasses.replace(
            arrays,
            propensity=fit.probs[np.arange(arrays.frame.height), arrays.action],
            logging_probs=fit.probs,
        )
        return dataclasses.replace(
            assemble(plan, arrays, schema_f),
            propensity_source="estimated",
            propensity_model=fit.describe(),
            **extra,
        )
