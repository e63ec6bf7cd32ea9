"""Logged bandit feedback: the file contract, loading, validation, streaming and writing.

The contract
------------
One row per decision.

Required columns (``propensity``: see below)
    ``action``      with a catalog, a variant id found in its ``variant_id``, whatever the
                    file type or how the ids look: integer ``49`` (parquet) or ``"49"``
                    (CSV, read as text) is the row whose id is ``"49"``, not row 49
                    (``load_log(action_index="position")`` reads integers as row
                    positions); without a catalog, an integer index ``0..K-1``;
    ``reward``      float (booleans are read as 0/1; another column via ``reward_column=``);
    ``propensity``  probability the logging policy gave the chosen action, in (0, 1];
                    strongly wanted but optional: without it (and without ``action_probs``)
                    ``load_log(propensity="auto")`` estimates the logging policy from the log
                    (``propensity_source="estimated"``; see :mod:`bandits.ope.propensity`).

Optional columns
    ``timestamp``, ``user_id`` / ``user_key`` (and the simulator's ``round``, ``day``):
    bookkeeping, not context (a slot ``position`` is context, as it shapes the response;
    ``load_log(exclude_columns=["position"])`` leaves it out);
    the time column (``timestamp``, or ``load_log(time_column=...)``; datetimes, dates,
    numbers, or CSV text parsed as datetimes; no nulls): the log is sorted by it (stably;
    ``LoggedData.reordered`` says whether rows moved) and
    :func:`bandits.offline.split_log` cuts by it (``cutoff`` on the evaluation part);
    ``action_probs``: fixed-size array (or list, or CSV text ``[p0,...]``) of ``K`` floats,
    the logger's whole distribution in catalog order; rows sum to 1 and
    ``action_probs[action] == propensity`` (tolerance ``1e-6``);
    cost columns (default ``unsubscribed``; ``cost_columns=``): outcomes, not context;
    any number of context columns, numeric or categorical (string / Categorical / Enum /
    boolean). By default every other featurisable column is context.

Ground truth
    Columns prefixed ``true_`` and ``expected_reward`` exist only in simulations and are
    never treated as context.

Catalog
    A parquet/CSV file or polars frame with unique ``variant_id`` (read as text from CSV)
    plus variant features, one row per action in action-index order (any order of ids).
    Without a catalog, integer actions define it as ``0..max(action)`` (ids ``"0".."K-1"``)
    and the result records ``catalog_inferred=True``; string actions need a catalog.

Features
    A :class:`~bandits.features.FeatureSchema` from ``features=``, else from
    ``metadata.json``'s ``"features"`` entry, else inferred from the context columns.

Layout written by the simulate app (valid input as is)::

    decision_log/decision_log.parquet   the log (one row per message sent)
    decision_log/catalog.parquet        the catalog
    decision_log/metadata.json          {"features": FeatureSchema.to_dict(), ...}

Bad input raises :class:`~bandits.errors.DataError` with one line naming the column, the
problem and the first offending rows, e.g.
``column 'propensity': values outside (0, 1] in rows [3, 17] (2 in all), e.g. [0.0, 1.2]``.

Example::

    import polars as pl
    from bandits.data import load_log, write_log

    write_log(
        pl.DataFrame({"action": ["a", "b"], "reward": [1.0, 0.0],
                      "propensity": [0.5, 0.5], "weather": ["sun", "rain"]}),
        "log.csv",
    )
    data = load_log("log.csv", catalog=pl.DataFrame({"variant_id": ["a", "b"]}))
    data.action       # array([0, 1])   (n,) int64 indices into data.action_ids
    data.features     # inferred: one-hot 'weather'
    load_log("mlruns/.../artifacts/decision_log")     # the simulate app's directory
    for batch in iter_log_batches("big_log/", batch_rows=1_000_000):  # parquet parts
        ...           # batch.row_offset, batch.action, ...

Whether a log's files changed: :func:`fingerprint` (sizes, modification times and parquet
footer statistics, hashed; no data read).

Modules: :mod:`~bandits.data.contract` (column roles, :class:`LoggedData`),
:mod:`~bandits.data.io` (finding, reading, atomic writing), :mod:`~bandits.data.validate`
(frame checks), :mod:`~bandits.data.context` (context columns and features),
:mod:`~bandits.data.load` (:func:`load_log`), :mod:`~bandits.data.stream`
(:func:`iter_log_batches`).
"""

from bandits.data.contract import (
    ACTION,
    ACTION_PROBS,
    PROPENSITY,
    REWARD,
    TIME,
    VARIANT_ID,
    LoggedData,
    detect_context_columns,
    is_ground_truth,
)
from bandits.data.io import (
    LogSource,
    ParquetAppender,
    fingerprint,
    resolve_source,
    write_log,
    write_log_dir,
)
from bandits.data.load import load_log, order_by_time
from bandits.data.stream import iter_log_batches
from bandits.data.validate import ACTION_INDEX_MODES, LogArrays, check_catalog, validate_log

__all__ = [
    "ACTION",
    "ACTION_INDEX_MODES",
    "ACTION_PROBS",
    "PROPENSITY",
    "REWARD",
    "TIME",
    "VARIANT_ID",
    "LogArrays",
    "LogSource",
    "LoggedData",
    "ParquetAppender",
    "check_catalog",
    "detect_context_columns",
    "fingerprint",
    "is_ground_truth",
    "iter_log_batches",
    "load_log",
    "order_by_time",
    "resolve_source",
    "validate_log",
    "write_log",
    "write_log_dir",
]
