"""Off-policy evaluation of a partitioned log on Ray: one task per partition, merged.

The estimators' per-round terms are sums, so every estimator's value and interval follow
from mergeable sufficient statistics (:class:`bandits.ope.Stats`): partition ``j`` of the
log gives ``S_j = partial_many(estimators, rows of j)`` and the log gives
``finalize(S_1 ⊕ S_2 ⊕ … ⊕ S_P)`` — the same numbers as the single-process streamed path
(:func:`bandits.experiment.evaluation.evaluate_log_stream`), up to float rounding of the
merge (≲ 1e-15 relative). What needs the whole log is done once, in this process
(:func:`plan_partitions`): the catalog, the feature schema and the context columns (lazy
aggregates over the log, as the streamed reader does), the policy bound to the first
batch's catalog, and the reward model of the model-based estimators fitted on the log's
first ``batch_rows`` rows — exactly what the streamed path fits. They are put into Ray's
object store once and every task reads its partition with them.

**Partitions are the log's files** (a directory of parquet parts or a glob, in sorted
order, :func:`bandits.data.io.resolve_source`), each read by the same validated batch
reader as the streamed path (:func:`bandits.data.iter_log_batches`, batches of
``batch_rows`` rows, memory bounded by one batch) — Ray tasks over files rather than Ray
Data blocks: a Ray Data block is cut where Ray chooses, goes through Arrow rather than our
reader's checks (catalog mapping, feature encoding, reward range, row numbers in errors),
and Ray Data's executor costs seconds per dataset on a small machine, while a task per file
gives each worker one file's rows, the same checks and the same code as one machine. A log
that is one file is one partition: write it as parts to spread it.

Workers need the files at the same path (a shared file system), and the ``cluster`` extra.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bandits.data.contract import LoggedData
from bandits.errors import ConfigError, DataError
from bandits.experiment.evaluation import (
    DEFAULT_ESTIMATORS,
    Estimators,
    estimators_of,
    fixed_on_first_batch,
    streamed_result,
)
from bandits.experiment.results import EvaluationResult
from bandits.ope import OffPolicyEstimator, Stats
from bandits.ope.reward_models import RewardModel
from bandits.policies.base import Policy

#: ``iter_log_batches`` keywords a partition's reader takes as the whole log's reader did
_PASSED_ON = (
    "column_map",
    "rename",
    "reward_type",
    "reward_range",
    "exclude_columns",
    "user_column",
    "target_columns",
    "reward_column",
    "cost_columns",
)


@dataclass(frozen=True)
class PartitionPlan:
    """What every partition's task needs, computed once from the whole log.

    ``files``: the partitions (``P`` parquet files, in log order); ``first``: the log's first
    batch (``batch_rows`` rows, from :func:`bandits.data.iter_log_batches` over the whole
    log); ``read``: the keywords of each partition's ``iter_log_batches`` call — the
    whole log's catalog (``(K, ·)`` frame), feature schema and context columns, so every
    partition encodes its rows as the whole log does; ``source``: the log as named."""

    source: str
    files: tuple[str, ...]
    first: LoggedData
    batch_rows: int
    read: dict[str, Any]


@dataclass(frozen=True)
class PartitionResult:
    """One partition's contribution: ``stats[j]`` the sufficient statistics of estimator
    ``j`` on its ``n`` rows, ``truth_sum`` ``Σ_i Σ_k pi[i, k] q*[i, k]`` over its rows when
    the log carries the simulator's truth (``truth_n`` rows had it), the seconds each step
    took, and the worker that ran it (``host``, ``pid``, the process's peak RSS in MiB)."""

    file: str
    n: int
    stats: tuple[Stats, ...]
    truth_sum: float
    truth_n: int
    timings: dict[str, float]
    seconds: float
    host: str
    pid: int
    peak_rss_mib: float


def plan_partitions(
    path: str | os.PathLike[str],
    catalog: Any = None,
    *,
    batch_rows: int = 1_000_000,
    **options: Any,
) -> PartitionPlan:
    """Check the log at ``path`` (a directory of parquet parts, a glob or one file) and
    compute what its partitions share (see :class:`PartitionPlan`). ``options`` are
    :func:`bandits.data.iter_log_batches` keywords (the column mapping, declarations, the
    target columns). Bad input is a one-line DataError / ConfigError, before any task."""
    from bandits.data import iter_log_batches
    from bandits.data.io import resolve_source

    source = resolve_source(path)
    if source.format != "parquet":
        raise DataError(
            f"cannot evaluate log '{source.label}' on Ray: partitions are parquet files; "
            "convert it with write_log(frame, 'log.parquet')"
        )
    batches = iter_log_batches(path, catalog, batch_rows=int(batch_rows), **options)
    first = next(batches, None)
    getattr(batches, "close", lambda: None)()  # a generator: release the scan now
    if first is None:
        raise ConfigError("logs: the log has no rows")
    read = {k: options[k] for k in _PASSED_ON if k in options}
    read.update(
        catalog=first.catalog,
        features=first.features,
        context_columns=list(first.context_columns),
        action_index="position" if first.catalog_inferred else options.get("action_index", "id"),
    )
    return PartitionPlan(
        source=str(source.label),
        files=tuple(str(Path(f).resolve()) for f in source.files),
        first=first,
        batch_rows=int(batch_rows),
        read=read,
    )


def evaluate_partition(
    policy: Policy,
    reward_model: RewardModel | None,
    estimators: Sequence[OffPolicyEstimator],
    file: str,
    read: Mapping[str, Any],
    batch_rows: int,
) -> PartitionResult:
    """The task: partition ``file`` read in batches of ``batch_rows`` rows (``read``: the
    reader's keywords, :class:`PartitionPlan`), each batch's target probabilities
    ``pi (b, K)`` from the bound ``policy``, reward predictions ``q (b, K)`` from
    ``reward_model`` (None when no estimator needs them) and the estimators' statistics
    (:func:`bandits.offline.evaluate.batch_stats`), merged over the batches
    (:class:`bandits.offline.evaluate.StreamTotals`)."""
    import socket

    from bandits.data import iter_log_batches
    from bandits.offline.evaluate import StreamTotals, batch_stats, contexts_of

    t_start = time.perf_counter()
    totals = StreamTotals()
    timings = {"read": 0.0, "target_probs": 0.0, "reward_model": 0.0, "estimators": 0.0}
    t0 = time.perf_counter()
    for batch in iter_log_batches(file, batch_rows=int(batch_rows), **read):
        timings["read"] += time.perf_counter() - t0
        ctx = contexts_of(batch)
        t0 = time.perf_counter()
        pi = policy.action_probs(ctx)
        timings["target_probs"] += time.perf_counter() - t0
        q = None
        if reward_model is not None:
            t0 = time.perf_counter()
            q = reward_model.predict(ctx.X)
            timings["reward_model"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        parts = batch_stats(estimators, batch, pi, q)
        timings["estimators"] += time.perf_counter() - t0
        totals.add(batch, pi, parts)
        del batch, ctx, pi, q, parts
        t0 = time.perf_counter()
    if totals.stats is None:
        raise DataError(f"log partition '{file}' is empty (0 rows)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return PartitionResult(
        file=file,
        n=totals.n,
        stats=tuple(totals.stats),
        truth_sum=totals.truth_sum,
        truth_n=totals.truth_n,
        timings=timings,
        seconds=time.perf_counter() - t_start,
        host=socket.gethostname(),
        pid=os.getpid(),
        peak_rss_mib=rss / 1024 if sys.platform != "darwin" else rss / 2**20,
    )


def evaluate_partitions(
    plan: PartitionPlan,
    policy: Policy,
    *,
    estimators: Estimators = DEFAULT_ESTIMATORS,
    level: float = 0.95,
    interval: str = "bounded",
    reward_model: str = "auto",
    reward_model_alpha: float = 1.0,
    seed: int = 1,
    timeout_s: float | None = None,
) -> tuple[EvaluationResult, list[PartitionResult]]:
    """A fixed ``policy`` evaluated on the partitions of ``plan`` as Ray tasks (one per
    file; :func:`bandits.cluster.connect` first, else a local runtime is started): the same
    estimates as :func:`~bandits.experiment.evaluation.evaluate_log_stream` on the whole
    log with ``batch_rows`` batches — the policy bound to the first batch's catalog with
    ``seed``, the reward model (``reward_model``, ridge penalty ``reward_model_alpha``)
    fitted on the first batch here and shipped to the workers — and each partition's
    :class:`PartitionResult` (in file order)."""
    from bandits import cluster
    from bandits.offline.evaluate import (
        PolicyEvaluation,
        StreamTotals,
        contexts_of,
        fitted_reward_model,
    )

    ests = estimators_of(estimators, level=level, interval=interval, seed=int(seed), required=True)
    first = plan.first
    fitted = fixed_on_first_batch(policy, first, seed)
    model = None
    t0 = time.perf_counter()
    if any(type(e).requires_reward_hat for e in ests):
        model = fitted_reward_model(first, contexts_of(first).X, reward_model, reward_model_alpha)
    fit_seconds = time.perf_counter() - t0
    order = {f: j for j, f in enumerate(plan.files)}
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((f, plan.read, plan.batch_rows), {}) for f in plan.files
    ]
    results: list[PartitionResult] = sorted(
        cluster.map_unordered(
            evaluate_partition, calls, shared=(fitted, model, ests), timeout_s=timeout_s
        ),
        key=lambda r: order[r.file],
    )
    totals = StreamTotals(
        stats=[sum(parts[1:], parts[0]) for parts in zip(*(r.stats for r in results), strict=True)],
        n=sum(r.n for r in results),
        truth_sum=sum(r.truth_sum for r in results),
        truth_n=sum(r.truth_n for r in results),
    )
    assert totals.stats is not None
    estimates = {type(e).name: e.finalize(s) for e, s in zip(ests, totals.stats, strict=True)}
    timings = {"reward_model_fit": fit_seconds}
    for r in results:
        for key, value in r.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    source = "action_probs" if first.logging_probs is not None else "propensities"
    evaluation = PolicyEvaluation(
        fitted.name, totals.n, estimates, totals.true_value, timings, source
    )
    return streamed_result(first, fitted, evaluation), results


def partition_lines(results: Sequence[PartitionResult]) -> list[str]:
    """Console lines: partitions, rows, workers, and the slowest partition."""
    if not results:
        return []
    workers = {(r.host, r.pid) for r in results}
    slow = max(results, key=lambda r: r.seconds)
    rows = sum(r.n for r in results)
    peak = max(r.peak_rss_mib for r in results)
    return [
        f"ray: {len(results)} partition(s), {rows:,} rows on {len(workers)} worker process(es) "
        f"on {len({host for host, _ in workers})} node(s); slowest partition "
        f"{Path(slow.file).name} {slow.seconds:.1f} s; peak worker RSS {peak:.0f} MiB"
    ]


__all__ = [
    "PartitionPlan",
    "PartitionResult",
    "evaluate_partition",
    "evaluate_partitions",
    "partition_lines",
    "plan_partitions",
]
