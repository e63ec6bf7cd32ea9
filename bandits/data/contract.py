"""The logged-data contract: column names, which columns are context, and :class:`LoggedData`.

See the package docstring (:mod:`bandits.data`) for the contract in prose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from bandits.errors import DataError
from bandits.features import FeatureSchema

if TYPE_CHECKING:
    from bandits.policies.base import ProblemSpec

ACTION = "action"
REWARD = "reward"
PROPENSITY = "propensity"
ACTION_PROBS = "action_probs"
VARIANT_ID = "variant_id"
#: The default time column: with it, a log is ordered by time and split by time.
TIME = "timestamp"

#: Where ``LoggedData.propensity`` came from: the log's column, or a model of the logger.
PROPENSITY_SOURCES: tuple[str, ...] = ("logged", "estimated")

#: Optional bookkeeping columns: never context unless named in ``context_columns``.
#: (``round`` and ``day`` are the simulator's opportunity and day indices; ``event_id``,
#: ``model_version`` and ``decided_at`` are written by :mod:`bandits.deploy`.)
BOOKKEEPING: tuple[str, ...] = (
    "timestamp",
    "user_id",
    "user_key",
    "round",
    "day",
    "event_id",
    "model_version",
    "decided_at",
    "group",  # decide / serve: treatment or holdout
    "shadow_action",  # serve shadow mode: what the candidate would have shown …
    "shadow_propensity",
    "shadow_model_version",
)
#: Cost columns recognised by default (outcomes, never context).
DEFAULT_COSTS: tuple[str, ...] = ("unsubscribed",)
#: Simulation-only ground truth: ``expected_reward`` and every column prefixed ``true_``.
TRUTH_PREFIX = "true_"
TRUTH_COLUMNS: tuple[str, ...] = ("expected_reward",)


def is_ground_truth(name: str) -> bool:
    """Whether ``name`` is a simulation-only ground-truth column (never context)."""
    return name.startswith(TRUTH_PREFIX) or name in TRUTH_COLUMNS


def _is_context_dtype(dtype: pl.DataType) -> bool:
    """Numeric, boolean and categorical-like (string / Categorical / Enum) columns."""
    return (
        dtype.is_numeric()
        or dtype == pl.Boolean
        or dtype == pl.String
        or isinstance(dtype, pl.Categorical | pl.Enum)
    )


def detect_context_columns(
    schema: pl.Schema | dict[str, pl.DataType],
    *,
    reward_column: str = REWARD,
    cost_columns: Iterable[str] = DEFAULT_COSTS,
) -> tuple[str, ...]:
    """Context columns of a log with column ``schema``, in file order.

    Everything that is not a required column (``action``, the reward column, ``propensity``),
    ``action_probs``, a bookkeeping column (:data:`BOOKKEEPING`), a cost column or ground
    truth (``true_*``, ``expected_reward``), and whose type can be featurised (numeric,
    boolean, string, Categorical, Enum). Datetimes, lists and structs are skipped.
    """
    skip = {ACTION, REWARD, PROPENSITY, ACTION_PROBS, reward_column, *BOOKKEEPING, *cost_columns}
    return tuple(
        name
        for name, dtype in schema.items()
        if name not in skip and not is_ground_truth(name) and _is_context_dtype(dtype)
    )


def check_context_names(
    columns: Sequence[str], *, reward_column: str = REWARD, cost_columns: Iterable[str] = ()
) -> tuple[str, ...]:
    """Validate explicitly requested context column names (not required/truth/cost columns)."""
    banned = {ACTION, PROPENSITY, ACTION_PROBS, reward_column, *cost_columns}
    for name in columns:
        if is_ground_truth(name):
            raise DataError(
                f"column '{name}' is simulation ground truth and cannot be used as context"
            )
        if name in banned:
            raise DataError(f"column '{name}' is an outcome/logging column, not context")
    return tuple(columns)


@dataclass(frozen=True)
class LoggedData:
    """A validated log of ``n`` decisions over a catalog of ``K`` actions.

    Attributes:
        frame: the log as read (``n`` rows, every column, in file order).
        catalog: ``K`` rows in action-index order, ``variant_id`` (string) first.
        action_ids: ``(K,)`` variant ids, ``catalog["variant_id"]`` as a tuple.
        action: ``(n,)`` int64 action indices in ``[0, K)``.
        reward: ``(n,)`` float64.
        propensity: ``(n,)`` float64 in (0, 1]: the logging policy's probability of the
            logged action (see ``propensity_source``).
        logging_probs: ``(n, K)`` float64 logging distribution (from ``action_probs``) or None.
        context_columns: names of the context columns in ``frame``.
        features: how context becomes features (from ``metadata.json``, given, or inferred).
        source: where the log was read from (a path, or ``"<frame>"``).
        catalog_inferred: True when no catalog was given and it is ``0..max(action)``.
        cost_columns: cost columns present in ``frame`` (e.g. ``unsubscribed``).
        target_columns: columns of ``frame`` holding a target policy's probabilities
            (``load_log(target_columns=...)``, read by the ``given`` policy): never context.
        row_offset: global index of this log's first row (batches of a stream), else 0.
        propensity_source: ``"logged"``: ``propensity`` (and ``logging_probs``) are the
            log's columns; ``"estimated"``: the log had no propensities (or they were
            ignored), ``logging_probs`` is the logging policy estimated from the log's own
            actions and context (:func:`bandits.ope.propensity.estimate_logging_policy`,
            cross-fitted) and ``propensity[i] = logging_probs[i, action[i]]``. Estimators'
            intervals then treat the estimate as known.
        propensity_model: when estimated, one line describing the fitted model; else ``""``.
        time_column: the column of ``frame`` the log is ordered by (``timestamp`` by
            default; datetimes, dates or numbers), or None when the log has none (then row
            order is the only order, e.g. for :func:`bandits.offline.split_log`).
        reordered: True when the file's rows were out of time order and ``frame`` and the
            arrays were sorted by ``time_column`` (stable: ties keep file order).
        reward_column: the column the rewards were read from.
        excluded_columns: ``(column, reason)`` of columns left out of a *detected* context
            because they look like identifiers, row indexes or personal data
            (:mod:`bandits.data.columns`).
        reward_type: the declared reward type (:data:`bandits.data.validate.REWARD_TYPES`)
            or None when not declared.
        reward_range: the declared ``(r_min, r_max)`` (a ``click`` reward: ``(0, 1)``) the
            estimators' intervals and bounds use, or None (they infer it from the rewards).
        renamed_from: ``(our name, your column)`` for every column a column mapping renamed
            (``load_log(column_map=, rename=)``); messages and the column table use both.
        cutoff: for the evaluation part of a time split
            (:func:`bandits.offline.split_log`), the time of its first row: training rows
            are at or before it, evaluation rows at or after it; else None.

    Arrays come from polars without copying where possible and may be read-only.
    """

    frame: pl.DataFrame
    catalog: pl.DataFrame
    action_ids: tuple[str, ...]
    action: NDArray[np.int64]
    reward: NDArray[np.float64]
    propensity: NDArray[np.float64]
    logging_probs: NDArray[np.float64] | None
    context_columns: tuple[str, ...]
    features: FeatureSchema
    source: str
    catalog_inferred: bool = False
    cost_columns: tuple[str, ...] = ()
    target_columns: tuple[str, ...] = ()
    row_offset: int = 0
    propensity_source: str = "logged"
    propensity_model: str = ""
    time_column: str | None = None
    reordered: bool = False
    cutoff: dt.datetime | dt.date | float | int | None = None
    reward_column: str = REWARD
    excluded_columns: tuple[tuple[str, str], ...] = ()
    reward_type: str | None = None
    reward_range: tuple[float, float] | None = None
    renamed_from: tuple[tuple[str, str], ...] = ()

    def original_name(self, column: str) -> str:
        """The name ``column`` has in the file (before a column mapping renamed it)."""
        return dict(self.renamed_from).get(column, column)

    def __post_init__(self) -> None:
        if self.propensity_source not in PROPENSITY_SOURCES:
            raise ValueError(
                f"propensity_source must be one of {', '.join(PROPENSITY_SOURCES)}, "
                f"got {self.propensity_source!r}"
            )

    @property
    def n(self) -> int:
        """Number of logged decisions."""
        return int(self.action.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions ``K`` in the catalog."""
        return len(self.action_ids)

    @property
    def context(self) -> pl.DataFrame:
        """The context columns, ``n`` rows (a zero-copy selection of ``frame``)."""
        return self.frame.select(self.context_columns)

    def costs(self, name: str) -> NDArray[np.float64]:
        """Cost column ``name`` as ``(n,)`` float64."""
        if name not in self.frame.columns:
            raise DataError(
                f"missing cost column '{name}' (present: {', '.join(self.frame.columns)})"
            )
        return self.frame[name].cast(pl.Float64).to_numpy()

    def problem_spec(self) -> ProblemSpec:
        """The :class:`~bandits.policies.base.ProblemSpec` (actions, catalog, features)."""
        from bandits.policies.base import ProblemSpec

        return ProblemSpec(action_ids=self.action_ids, catalog=self.catalog, features=self.features)
