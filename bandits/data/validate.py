"""Frame-level validation of a decision log against its catalog.

Each check is vectorised and cheap when the data are valid (null counts are metadata,
ranges are one ``min``/``max``); only a failing check builds a mask to locate the rows.
Every failure is a one-line :class:`~bandits.errors.DataError` naming the column, the
problem and the first offending rows, e.g.::

    column 'propensity': values outside (0, 1] in rows [3, 17] (2 in all), e.g. [0.0, 1.2]

Row numbers are global: a batch of a stream passes its ``row_offset``. Array-level checks
the estimators repeat anyway (:mod:`bandits.ope.validation`) use the same tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from bandits.data.contract import ACTION, ACTION_PROBS, PROPENSITY, REWARD, VARIANT_ID
from bandits.errors import ConfigError, DataError, first_rows
from bandits.ope.validation import PROB_SUM_TOL

_SHOWN = 3  # example values quoted in a message

#: ``action_index=``: integer actions with a catalog are variant ids (``"id"``, the default)
#: or catalog row positions (``"position"``). Without a catalog they are always positions.
ACTION_INDEX_MODES: tuple[str, ...] = ("id", "position")

# one JSON-style list of numbers, e.g. "[0.1, 0.9]" (CSV logs store action_probs as text)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_JSON_LIST = rf"^\s*\[\s*(?:{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)*)?\]\s*$"


@dataclass(frozen=True)
class LogArrays:
    """The validated arrays of a log of ``n`` rows over ``K`` actions.

    ``frame`` is the input with the converted columns rechunked, so the arrays (read-only,
    zero-copy where polars allows) share its memory. ``catalog`` is the checked catalog
    (``variant_id`` as strings, first) or the one inferred from integer actions.
    """

    frame: pl.DataFrame
    catalog: pl.DataFrame
    catalog_inferred: bool
    action: NDArray[np.int64]  # (n,) in [0, K)
    reward: NDArray[np.float64]  # (n,)
    propensity: NDArray[np.float64] | None  # (n,) in (0, 1]; None: not read (estimated later)
    logging_probs: NDArray[np.float64] | None  # (n, K)


def _rows(mask_or_index: NDArray, offset: int) -> str:
    """``rows [..] (m in all)`` with global row numbers (local index + ``offset``)."""
    arr = np.asarray(mask_or_index)
    idx = np.flatnonzero(arr) if arr.dtype == bool else arr.ravel()
    return first_rows(idx + offset)


def _values(values: Sequence[object], limit: int = 40) -> str:
    """The example values of an error message (text longer than ``limit`` cut with "…",
    so a damaged file's 4 KiB field stays a short line)."""
    shown = [v.item() if isinstance(v, np.generic) else v for v in values]
    return repr([v[:limit] + "…" if isinstance(v, str) and len(v) > limit else v for v in shown])


def _fail(
    column: str, problem: str, mask: NDArray, offset: int, examples: Sequence[object] = ()
) -> DataError:
    eg = f", e.g. {_values(examples)}" if len(examples) else ""
    return DataError(f"column '{column}': {problem} in {_rows(mask, offset)}{eg}")


def _examples(s: pl.Series, mask: NDArray[np.bool_], unique: bool = False) -> list[object]:
    bad = s.filter(pl.Series(mask))
    if unique:
        bad = bad.unique(maintain_order=True)
    return bad.head(_SHOWN).to_list()


# ---------------------------------------------------------------- catalog


def check_catalog(catalog: pl.DataFrame, label: str = "catalog") -> pl.DataFrame:
    """Check a catalog frame: a ``variant_id`` column, at least one row, no null or duplicate
    ids. Returns it with ``variant_id`` cast to strings and moved first."""
    if not isinstance(catalog, pl.DataFrame):
        raise DataError(
            f"{label} must be a polars DataFrame or a parquet/CSV path, got "
            f"{type(catalog).__name__}"
        )
    if VARIANT_ID not in catalog.columns:
        raise DataError(
            f"{label}: missing required column '{VARIANT_ID}' "
            f"(present: {', '.join(catalog.columns) or 'none'})"
        )
    if catalog.height == 0:
        raise DataError(f"{label} is empty (0 variants)")
    ids = catalog[VARIANT_ID]
    if ids.dtype.is_nested() or ids.dtype in (pl.Binary, pl.Null):
        raise DataError(f"{label}: column '{VARIANT_ID}' must hold strings, got {ids.dtype}")
    ids = ids.cast(pl.String)
    if ids.null_count():
        raise DataError(
            f"{label}: column '{VARIANT_ID}': null ids in {_rows(ids.is_null().to_numpy(), 0)}"
        )
    dup = ids.is_duplicated()
    if dup.any():
        mask = dup.to_numpy()
        raise DataError(
            f"{label}: column '{VARIANT_ID}': duplicate ids in {_rows(mask, 0)}, "
            f"e.g. {_values(_examples(ids, mask, unique=True))}"
        )
    return catalog.with_columns(ids).select(VARIANT_ID, pl.exclude(VARIANT_ID))


def catalog_of_size(k: int) -> pl.DataFrame:
    """The catalog inferred for integer actions ``0..k-1``: ``variant_id`` = ``"0".."k-1"``."""
    return pl.DataFrame({VARIANT_ID: pl.int_range(k, eager=True).cast(pl.String)})


# ---------------------------------------------------------------- columns


def check_columns(
    columns: Sequence[str],
    *,
    reward_column: str = REWARD,
    required_context: Sequence[str] = (),
    require_propensity: bool = True,
    propensity_hint: str = "",
) -> None:
    """Required columns (``action``, the reward column, ``propensity`` unless
    ``require_propensity`` is False) and the context the policy needs are present in
    ``columns`` (a schema check: no data read). ``propensity_hint`` is appended to the
    message when ``propensity`` is missing (e.g. how to estimate it instead)."""
    present = set(columns)
    required = (
        (ACTION, reward_column, PROPENSITY) if require_propensity else (ACTION, reward_column)
    )
    missing = [c for c in required if c not in present]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        plural = "s" if len(missing) > 1 else ""
        hint = f"; {propensity_hint}" if propensity_hint and PROPENSITY in missing else ""
        raise DataError(
            f"missing required column{plural} {names} "
            f"(present: {', '.join(columns) or 'none'}){hint}"
        )
    lacking = [c for c in dict.fromkeys(required_context) if c not in present]
    if lacking:
        names = ", ".join(f"'{c}'" for c in lacking)
        plural = "s" if len(lacking) > 1 else ""
        raise DataError(
            f"missing context column{plural} {names} needed by the policy's features "
            f"(present: {', '.join(columns)})"
        )


def _type_error(s: pl.Series, expected: str, offset: int) -> DataError:
    """Wrong dtype: for text, point at the values that are not numbers."""
    everything = np.ones(s.len(), dtype=bool)
    if s.dtype == pl.String:
        parsed = s.str.strip_chars().cast(pl.Float64, strict=False)
        bad = (parsed.is_null() & s.is_not_null()).to_numpy()
        if bad.any():
            return _fail(s.name, f"expected {expected}, got text", bad, offset, _examples(s, bad))
        return _fail(
            s.name,
            "numbers stored as text (cast the column to a numeric type)",
            everything,
            offset,
            s.head(_SHOWN).to_list(),
        )
    shown = [str(v) for v in s.head(_SHOWN).to_list()]
    return _fail(s.name, f"expected {expected}, got type {s.dtype}", everything, offset, shown)


def _null_error(s: pl.Series, offset: int) -> DataError:
    mask = s.is_null().to_numpy()
    return _fail(s.name, "null values", mask, offset)


#: Largest magnitude a reward or numeric context value may have: sums and squares of
#: ``n`` such values stay far from overflow and exact to ~1e-1 relative at 1e9 rows; beyond
#: it a value is a unit mistake or a decoding error (rescale: thousands, not units).
MAX_ABS_VALUE = 1e15
#: Smallest usable logged propensity: weights ``1/p`` above 1e12 carry no information an
#: estimate can use (and their squares overflow sums); such rows are a logging bug.
MIN_PROPENSITY = 1e-12


def _float_column(s: pl.Series, offset: int, *, allow_bool: bool = False) -> NDArray[np.float64]:
    """A numeric column as finite float64 ``(n,)`` with ``|x| <= MAX_ABS_VALUE`` (zero-copy
    if already Float64)."""
    if not (s.dtype.is_numeric() or (allow_bool and s.dtype == pl.Boolean)):
        raise _type_error(s, "numbers", offset)
    if s.null_count():
        raise _null_error(s, offset)
    x = s.cast(pl.Float64).to_numpy() if s.dtype != pl.Float64 else s.to_numpy()
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: the exact test below
        total = np.add.reduce(x)
    if not np.isfinite(total):  # NaN / inf propagate
        bad = ~np.isfinite(x)
        if bad.any():
            raise _fail(s.name, "NaN or infinite values", bad, offset, x[bad][:_SHOWN].tolist())
    check_magnitude(x, s.name, offset)
    return x


def check_numeric_context(frame: pl.DataFrame, columns: Sequence[str], offset: int = 0) -> None:
    """The numeric ``columns`` of ``frame`` hold no nulls, NaN or infinities and stay within
    ``±MAX_ABS_VALUE`` (DataError naming the column and the first rows)."""
    for name in columns:
        s = frame[name]
        if s.dtype.is_numeric():
            _float_column(s, offset)


def check_magnitude(x: NDArray[np.float64], column: str, offset: int = 0) -> None:
    """DataError naming ``column`` and the first rows of finite ``x (n,)`` beyond
    ``±MAX_ABS_VALUE`` (a unit mistake or a file decoded into garbage)."""
    if x.size and max(float(x.max()), -float(x.min())) > MAX_ABS_VALUE:
        bad = np.abs(x) > MAX_ABS_VALUE
        raise _fail(
            column,
            f"values beyond ±{MAX_ABS_VALUE:.0e} (a unit mistake or a damaged file; rescale)",
            bad,
            offset,
            x[bad][:_SHOWN].tolist(),
        )


def check_action_index(mode: str) -> str:
    """``mode`` if it is one of :data:`ACTION_INDEX_MODES` (ConfigError otherwise)."""
    if mode not in ACTION_INDEX_MODES:
        raise ConfigError(
            f"action_index must be one of {', '.join(repr(m) for m in ACTION_INDEX_MODES)}, "
            f"got {mode!r}"
        )
    return mode


def _unknown_ids(s: pl.Series, bad: NDArray[np.bool_], k: int, offset: int) -> DataError:
    """Actions whose id is not a catalog ``variant_id``; when they are integers (or text
    that looks like integers) the message says how to read them as row positions."""
    err = _fail(
        ACTION,
        f"variant ids not in the catalog ({k} variants)",
        bad,
        offset,
        _examples(s, bad, unique=True),
    )
    shown = s.filter(pl.Series(bad))
    numeric = shown.dtype.is_integer() or (
        shown.dtype == pl.String and bool(shown.str.contains(r"^\s*[+-]?\d+\s*$").all())
    )
    if not numeric:
        return err
    return DataError(
        f"{err}; integer-looking actions are read as catalog '{VARIANT_ID}'s: pass "
        "action_index='position' if they are row positions of the catalog"
    )


def _integer_ids(a: pl.Series, catalog: pl.DataFrame, offset: int) -> NDArray[np.int64] | None:
    """Integer actions mapped *by id*: action ``49`` is the catalog row whose ``variant_id``
    is ``"49"`` (ids such as ``"049"`` or ``"a"`` match no integer). None when the catalog's
    ids are ``"0".."K-1"`` in order, where ids and positions coincide."""
    ids = catalog[VARIANT_ID]
    as_int = ids.cast(pl.Int64, strict=False)
    canonical = (as_int.cast(pl.String) == ids).fill_null(False)
    positions = pl.int_range(ids.len(), eager=True, dtype=pl.Int64)
    if bool(canonical.all()) and bool((as_int == positions).all()):
        return None
    codes = a.replace_strict(
        as_int.filter(canonical),
        positions.filter(canonical),
        default=None,
        return_dtype=pl.Int64,
    )
    if codes.null_count():
        raise _unknown_ids(a, codes.is_null().to_numpy(), ids.len(), offset)
    return codes.to_numpy()


def _action_index(
    s: pl.Series, catalog: pl.DataFrame | None, offset: int, by: str = "id"
) -> tuple[NDArray[np.int64], pl.DataFrame, bool]:
    """Map ``action`` to indices ``(n,)`` into the catalog (inferred if None).

    With a catalog, every action is a variant id (``by="id"``: integers too, as their decimal
    text) unless ``by="position"``, where integer actions are catalog row positions (strings
    are still ids). Without a catalog, integer actions are positions of ``0..max(action)``.
    """
    dtype = s.dtype
    categorical = dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    if not (dtype.is_integer() or dtype.is_float() or categorical):
        raise _type_error(s, "integer indices or variant id strings", offset)
    if s.null_count():
        raise _null_error(s, offset)
    if categorical:
        if catalog is None:
            raise DataError(
                f"column '{ACTION}' holds variant ids ({dtype}) but no catalog was given: "
                f"pass catalog= (a frame or parquet/CSV file with '{VARIANT_ID}')"
            )
        ids = catalog[VARIANT_ID]
        levels = ids.to_list()
        if isinstance(dtype, pl.Enum) and dtype.categories.to_list() == levels:
            return s.to_physical().cast(pl.Int64).to_numpy(), catalog, False
        text = s.cast(pl.String)
        codes = text.cast(pl.Enum(levels), strict=False)
        if codes.null_count():
            bad = codes.is_null().to_numpy()
            raise _unknown_ids(text, bad, len(levels), offset)
        return codes.to_physical().cast(pl.Int64).to_numpy(), catalog, False
    if dtype.is_float():
        x = s.to_numpy()
        integral = np.isfinite(x) & (x == np.round(x))
        if not integral.all():
            raise _fail(ACTION, "non-integer action indices", ~integral, offset, x[~integral][:3])
        s = s.cast(pl.Int64)
    if catalog is not None and by == "id":
        by_id = _integer_ids(s.cast(pl.Int64), catalog, offset)
        if by_id is not None:
            return by_id, catalog, False
    a = s.to_numpy() if s.dtype == pl.Int64 else s.cast(pl.Int64).to_numpy()
    inferred = catalog is None
    if catalog is None:
        if int(a.min()) < 0:
            bad = a < 0
            raise _fail(
                ACTION,
                "negative action indices (no catalog given: actions index 0..max(action))",
                bad,
                offset,
                np.unique(a[bad])[:_SHOWN].tolist(),
            )
        catalog = catalog_of_size(int(a.max()) + 1)
    k = catalog.height
    if not (a.min() >= 0 and a.max() < k):
        bad = (a < 0) | (a >= k)
        raise _fail(
            ACTION,
            f"action indices not in the catalog (K = {k}, valid 0..{k - 1})",
            bad,
            offset,
            _examples(pl.Series(a), bad, unique=True),
        )
    return a, catalog, inferred


def _decode_text_probs(s: pl.Series, offset: int) -> pl.Series:
    """``action_probs`` stored as text ``"[0.1, 0.9]"`` (CSV) -> a list column."""
    ok = s.str.contains(_JSON_LIST).fill_null(True).to_numpy()
    if not ok.all():
        raise _fail(
            ACTION_PROBS, "text that is not a list of numbers", ~ok, offset, _examples(s, ~ok)
        )
    return s.str.json_decode(pl.List(pl.Float64))


def _logging_probs(
    s: pl.Series, action: NDArray[np.int64], propensity: NDArray[np.float64], k: int, offset: int
) -> NDArray[np.float64]:
    """``action_probs`` as ``(n, K)`` float64 rows summing to 1, agreeing with propensity."""
    if s.dtype == pl.String:
        s = _decode_text_probs(s, offset)
    if not isinstance(s.dtype, pl.Array | pl.List) or not s.dtype.inner.is_numeric():
        raise _type_error(s, f"arrays of {k} probabilities", offset)
    if s.null_count():
        raise _null_error(s, offset)
    if isinstance(s.dtype, pl.List):
        lengths = s.list.len().to_numpy()
        if not (lengths.min() == k and lengths.max() == k):
            bad = lengths != k
            raise _fail(
                ACTION_PROBS,
                f"lists whose length is not the catalog size K = {k}",
                bad,
                offset,
                [f"length {n}" for n in np.unique(lengths[bad])[:_SHOWN].tolist()],
            )
        s = s.list.to_array(k)
    elif s.dtype.size != k:
        raise _fail(
            ACTION_PROBS,
            f"arrays of {s.dtype.size} entries but the catalog has K = {k} variants",
            np.ones(s.len(), dtype=bool),
            offset,
        )
    if s.dtype != pl.Array(pl.Float64, k):
        s = s.cast(pl.Array(pl.Float64, k))
    p: NDArray[np.float64] = s.to_numpy()  # (n, K); inner nulls become NaN
    if not p.min() >= 0.0:  # NaN fails the comparison
        bad = ~(p >= 0.0)
        rows = np.asarray(bad.any(axis=1))
        first = p[rows][bad[rows]][:_SHOWN].tolist()
        raise _fail(ACTION_PROBS, "negative, NaN or null entries", rows, offset, first)
    sums = np.einsum("ij->i", p)
    if not (sums.min() >= 1.0 - PROB_SUM_TOL and sums.max() <= 1.0 + PROB_SUM_TOL):
        bad = np.abs(sums - 1.0) > PROB_SUM_TOL
        raise _fail(
            ACTION_PROBS,
            f"rows that do not sum to 1 (tol {PROB_SUM_TOL:g}; sums shown)",
            bad,
            offset,
            sums[bad][:_SHOWN].tolist(),
        )
    logged = p[np.arange(p.shape[0]), action]
    gap = np.abs(logged - propensity)
    if not gap.max() <= PROB_SUM_TOL:
        bad = gap > PROB_SUM_TOL
        pairs = [
            f"{a:.6g} vs {b:.6g}"
            for a, b in zip(logged[bad][:_SHOWN], propensity[bad][:_SHOWN], strict=True)
        ]
        raise _fail(
            ACTION_PROBS,
            f"probability of the logged action disagrees with '{PROPENSITY}' "
            "(action_probs vs propensity)",
            bad,
            offset,
            pairs,
        )
    return p


def validate_log(
    frame: pl.DataFrame,
    catalog: pl.DataFrame | None,
    *,
    required_context: Sequence[str] = (),
    reward_column: str = REWARD,
    row_offset: int = 0,
    propensity: str = "require",
    action_index: str = "id",
) -> LogArrays:
    """Validate a decision log of ``n`` rows against a catalog of ``K`` variants.

    Checks, in order: non-empty; required columns present; ``required_context`` columns
    present and without nulls; the catalog (``variant_id``, no duplicates); types
    (``reward`` numeric or boolean, ``propensity`` numeric, ``action`` integer or string);
    no null / NaN / inf in the required columns; ``propensity`` in (0, 1]; every action in
    the catalog; and, when present, ``action_probs`` rows of ``K`` non-negative entries
    summing to 1 whose entry at the logged action equals ``propensity`` (within
    :data:`~bandits.ope.validation.PROB_SUM_TOL`).

    Args:
        frame: the log (``n`` rows).
        catalog: ``K`` variants with ``variant_id``; None infers ``0..max(action)`` from
            integer actions.
        required_context: context columns the policy needs.
        reward_column: the column read as reward.
        row_offset: global index of ``frame``'s first row (used in messages).
        propensity: ``"require"``: the ``propensity`` column must be present and valid;
            ``"ignore"``: ``propensity`` and ``action_probs`` are neither required nor read
            (``LogArrays.propensity`` and ``logging_probs`` are None; the caller estimates
            them, see :func:`~bandits.data.load_log`).
        action_index: with a catalog, ``"id"`` (default) maps every action to the catalog
            row with that ``variant_id`` (integer actions by their decimal text, so ``49``
            is id ``"49"``, not row 49); ``"position"`` reads integer actions as catalog
            row positions. Without a catalog, integer actions are positions ``0..K-1``.

    Returns:
        :class:`LogArrays` with ``action (n,)``, ``reward (n,)``, ``propensity (n,)`` and
        ``logging_probs (n, K)`` or None.

    Raises:
        DataError: one line naming the column, the problem and the first offending rows.
    """
    if propensity not in ("require", "ignore"):
        raise ConfigError(f"propensity must be 'require' or 'ignore', got {propensity!r}")
    read_propensity = propensity == "require"
    check_action_index(action_index)
    if frame.height == 0:
        raise DataError(f"log is empty (0 rows; columns: {', '.join(frame.columns) or 'none'})")
    check_columns(
        frame.columns,
        reward_column=reward_column,
        required_context=required_context,
        require_propensity=read_propensity,
    )
    for name in dict.fromkeys(required_context):
        s = frame[name]
        if s.null_count():
            raise _null_error(s, row_offset)
        if s.dtype.is_float() and s.is_nan().any():
            raise _fail(name, "NaN values", s.is_nan().to_numpy(), row_offset)
    if catalog is not None:
        catalog = check_catalog(catalog)

    convert = [ACTION, reward_column]
    if read_propensity:
        convert.append(PROPENSITY)
        if ACTION_PROBS in frame.columns:
            convert.append(ACTION_PROBS)
    chunked = [frame[c].rechunk() for c in convert if frame[c].n_chunks() > 1]
    if chunked:  # contiguous columns: the arrays below are views into the frame
        frame = frame.with_columns(chunked)

    reward = _float_column(frame[reward_column], row_offset, allow_bool=True)
    prop = _propensity_column(frame[PROPENSITY], row_offset) if read_propensity else None
    action, catalog, inferred = _action_index(frame[ACTION], catalog, row_offset, action_index)
    probs = None
    if prop is not None and ACTION_PROBS in frame.columns:
        probs = _logging_probs(frame[ACTION_PROBS], action, prop, catalog.height, row_offset)
    return LogArrays(
        frame=frame,
        catalog=catalog,
        catalog_inferred=inferred,
        action=action,
        reward=reward,
        propensity=prop,
        logging_probs=probs,
    )


def _propensity_column(s: pl.Series, offset: int) -> NDArray[np.float64]:
    """``propensity`` as float64 ``(n,)`` in (0, 1]."""
    p = _float_column(s, offset)
    if not (p.min() > 0.0 and p.max() <= 1.0):
        bad = ~((p > 0.0) & (p <= 1.0))
        raise _fail(PROPENSITY, "values outside (0, 1]", bad, offset, p[bad][:_SHOWN].tolist())
    if p.min() < MIN_PROPENSITY:
        bad = p < MIN_PROPENSITY
        raise _fail(
            PROPENSITY,
            f"values below {MIN_PROPENSITY:g} (weights above {1 / MIN_PROPENSITY:.0e} carry no "
            "usable information; check how the logger records probabilities)",
            bad,
            offset,
            p[bad][:_SHOWN].tolist(),
        )
    return p


# ---------------------------------------------------------------- reward

#: Declared reward types (``load_log(reward_type=...)``, config ``columns.reward_type``):
#: ``click`` 0/1 outcomes (clicks, conversions; range [0, 1]); ``count`` non-negative
#: integers (clicks per send, items bought); ``revenue`` non-negative amounts (refunds need a
#: declared ``reward_range`` with a negative minimum).
REWARD_TYPES: tuple[str, ...] = ("click", "count", "revenue")


def check_reward(
    reward: NDArray[np.float64],
    column: str,
    reward_type: str | None = None,
    reward_range: Sequence[float] | None = None,
    offset: int = 0,
) -> tuple[float, float] | None:
    """Check ``reward (n,)`` against its declared type and range; return the declared range
    the estimators' intervals and bounds use (``click``: ``(0, 1)``; a declared
    ``reward_range`` wins for every type), or None when nothing was declared (the
    estimators then infer it: [0, 1] if every reward is in it, else the observed range).

    Raises:
        ConfigError: an unknown type, or a range that is not ``[min, max]`` with min < max
            (or, for ``click``, not inside [0, 1]).
        DataError: one line naming the column and the first rows whose reward breaks the
            declaration, e.g. ``column 'click': values other than 0 and 1 (declared
            reward_type=click) in rows [3, 17] (2 in all), e.g. -1.0``.
    """
    if reward_type is not None and reward_type not in REWARD_TYPES:
        raise ConfigError(
            f"reward_type must be one of {', '.join(REWARD_TYPES)} (or null), got {reward_type!r}"
        )
    declared: tuple[float, float] | None = None
    if reward_range is not None:
        try:
            lo, hi = (float(v) for v in reward_range)
        except (TypeError, ValueError):
            raise ConfigError(
                f"reward_range must be [min, max] (two numbers), got {reward_range!r}"
            ) from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(f"reward_range must be finite with min < max, got [{lo}, {hi}]")
        declared = (lo, hi)
    said = f"declared reward_type={reward_type}"
    if reward_type == "click":
        if declared is not None and (declared[0] < 0.0 or declared[1] > 1.0):
            raise ConfigError(f"reward_type=click has rewards in [0, 1]; reward_range={declared}")
        bad = (reward != 0.0) & (reward != 1.0)
        if bad.any():
            raise _fail(
                column,
                f"values other than 0 and 1 ({said})",
                bad,
                offset,
                reward[bad][:_SHOWN].tolist(),
            )
        declared = declared or (0.0, 1.0)
    elif reward_type == "count":
        bad = (reward < 0.0) | (reward != np.floor(reward))
        if bad.any():
            raise _fail(
                column,
                f"values that are not counts 0, 1, 2, … ({said})",
                bad,
                offset,
                reward[bad][:_SHOWN].tolist(),
            )
    elif reward_type == "revenue" and declared is None:
        bad = reward < 0.0
        if bad.any():
            raise _fail(
                column,
                f"negative values ({said}; declare reward_range with a negative minimum "
                "if refunds are rewards)",
                bad,
                offset,
                reward[bad][:_SHOWN].tolist(),
            )
    if declared is not None:
        bad = (reward < declared[0]) | (reward > declared[1])
        if bad.any():
            raise _fail(
                column,
                f"values outside the declared reward_range [{declared[0]:g}, {declared[1]:g}]",
                bad,
                offset,
                reward[bad][:_SHOWN].tolist(),
            )
    return declared


# ---------------------------------------------------------------- time


def time_values(s: pl.Series, offset: int = 0) -> pl.Series:
    """A log's time column as a sortable series: datetimes, dates and numbers as they are,
    text (a CSV column polars could not read as dates) parsed as datetimes.

    Raises:
        DataError: one line naming the column and the first rows with a null, NaN or
            infinite time, text that is not a date or time, or a column of another type.
    """
    dtype = s.dtype
    timelike = dtype == pl.String or isinstance(dtype, pl.Datetime) or dtype == pl.Date
    if not (timelike or dtype.is_numeric()):
        everything = np.ones(s.len(), dtype=bool)
        shown = [str(v) for v in s.head(_SHOWN).to_list()]
        raise _fail(
            s.name,
            f"expected times (datetimes, dates or numbers), got type {dtype}",
            everything,
            offset,
            shown,
        )
    if s.null_count():
        raise _fail(s.name, "null times", s.is_null().to_numpy(), offset)
    if dtype == pl.String:
        try:
            parsed = s.str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:  # no format fits the first values
            parsed = pl.Series(s.name, [None] * s.len(), dtype=pl.Datetime("us"))
        bad = parsed.is_null().to_numpy()
        if bad.any():
            raise _fail(s.name, "text that is not a date or time", bad, offset, _examples(s, bad))
        return parsed
    if dtype.is_float():
        x = s.to_numpy()
        bad = ~np.isfinite(x)
        if bad.any():
            raise _fail(s.name, "NaN or infinite times", bad, offset, x[bad][:_SHOWN].tolist())
    return s


def time_order(times: pl.Series) -> NDArray[np.int64] | None:
    """The stable permutation ``(n,)`` that puts ``times`` (from :func:`time_values`) in
    order (ties keep their row order), or None when they already are."""
    if times.dtype.is_temporal():
        x = times.to_physical().to_numpy()
    elif times.dtype.is_integer() or times.dtype.is_float():
        x = times.to_numpy()
    else:  # e.g. Decimal
        x = times.cast(pl.Float64).to_numpy()
    if x.shape[0] < 2 or not np.any(x[1:] < x[:-1]):
        return None
    return np.argsort(x, kind="stable").astype(np.int64, copy=False)
