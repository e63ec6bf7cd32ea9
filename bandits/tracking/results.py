"""Logging the library's typed results to MLflow (:mod:`bandits.experiment`): a comparison
(:func:`log_comparison`: verdicts, lifts, tables, plots, the HTML report, one child run per
rung), its replications (:func:`log_replication`, and :func:`reusable_replications` to read
finished ones back), a simulation (:class:`SimulationStream` while it runs, then
:func:`log_simulation`) and an evaluation (:func:`log_evaluation`).

Every function writes into the active run (:func:`bandits.tracking.run`) through the
primitives of :mod:`bandits.tracking` (batched, and on the background writer where the run
has one); the names of params, tags, metrics and artifacts are the apps' documented ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bandits import tracking

if TYPE_CHECKING:
    from bandits.compare import PolicyComparison
    from bandits.experiment.results import ComparisonResult, EvaluationResult, SimulationResult
    from bandits.experiment.sources import SimulatedSource
    from bandits.simulate.replications import Replication

#: each replication's summary, an artifact of its child run (what resume reads back)
REPLICATION_FILE = "replication.json"
#: ``<prefix>.<rung>.uri``: the MLflow model of a learning rung as replication 0 ended it
POLICY_MODEL_TAG = "policy_model"

#: the fields of a comparison logged as ``<rung>.<field>`` metrics
COMPARISON_METRICS = (
    "value",
    "diff",
    "relative_lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "mde",
    "true_diff",
    "cost",
    "cost_diff",
    "ci_level",
    "observed_diff",
    "within_stderr",
    "stderr",
)


# ----- comparison -----------------------------------------------------------------------------


def comparison_metrics(c: PolicyComparison, prefix: str) -> dict[str, float]:
    """``<prefix>.<field>`` for every field in :data:`COMPARISON_METRICS` that is set, and
    the sample a conclusive answer needs (``.replications_needed`` or ``.rounds_needed``)."""
    metrics = {
        f"{prefix}.{key}": float(getattr(c, key))
        for key in COMPARISON_METRICS
        if getattr(c, key) is not None
    }
    needed = "replications_needed" if c.unit == "replications" else "rounds_needed"
    metrics[f"{prefix}.{needed}"] = float(c.rounds_needed)
    return metrics


def log_replication(
    rep: Replication,
    *,
    experiment: str,
    parent_run_id: str,
    key: str,
    seed: int,
    resumed_from: str | None = None,
    bundles: Path | None = None,
) -> dict[str, str]:
    """One replication as a child run of the comparison: its seed, per-rung exact value,
    realised reward and unsubscribes as metrics, its summary as ``replication.json``
    (tags ``run_kind=compare_replication``, ``replication``, ``replication_key``;
    ``resumed_from`` when it was reused from an earlier run).

    ``bundles``: a folder of policy bundles (``<label>/``, see
    :func:`bandits.simulate.replications.run_replication`), each logged as the MLflow model
    ``<label>`` of this run. Returns the tags ``policy_model.<label>.uri`` / ``.version``
    it set (empty without ``bundles``)."""
    tags = {
        "run_kind": "compare_replication",
        "replication": str(rep.index),
        "replication_key": key,
        "seed": str(seed),
    }
    if resumed_from:
        tags["resumed_from"] = resumed_from
    with tracking.run(
        experiment, run_name=f"replication {rep.index}", parent_run_id=parent_run_id, tags=tags
    ):
        tracking.log_params(
            {"replication": rep.index, "seed": seed, "rounds": rep.rounds, "key": key}
        )
        metrics = {"seconds": rep.seconds}
        for label, r in rep.rungs.items():
            metrics[f"{label}.value"] = r.value
            metrics[f"{label}.mean_reward"] = r.observed
            metrics[f"{label}.unsubscribes_per_1000"] = 1000 * r.cost
            metrics[f"{label}.final_policy_value"] = r.summary.get(
                "final_policy_value", float("nan")
            )
        tracking.log_metrics(metrics)
        tracking.log_dict(rep.to_dict(), REPLICATION_FILE)
        models: dict[str, str] = {}
        for bundle in sorted(p for p in (bundles.iterdir() if bundles else ()) if p.is_dir()):
            from bandits.tracking.policy_model import log_bundle_model

            prefix = f"{POLICY_MODEL_TAG}.{bundle.name}"
            uri, deployed = log_bundle_model(bundle, name=bundle.name, tag_prefix=prefix)
            models.update({f"{prefix}.uri": uri, f"{prefix}.version": deployed.model_version})
    return models


def reusable_replications(
    experiment: str, key: str, wanted: Iterable[int]
) -> dict[int, tuple[str, Replication]]:
    """Finished replications with replication key ``key`` among the indices ``wanted``
    (index → (run id, replication); the newest of each), read back from their
    ``replication.json``; one that cannot be read (or has another format) is left out, so
    it runs again."""
    from bandits.simulate.replications import Replication

    wanted = set(wanted)
    found: dict[int, tuple[str, Replication]] = {}
    runs = tracking.finished_runs(
        experiment, {"run_kind": "compare_replication", "replication_key": key}
    )
    for run_id, tags in runs:
        index = int(tags.get("replication", -1))
        if index in wanted and index not in found:
            try:
                found[index] = (
                    run_id,
                    Replication.from_dict(tracking.load_dict(run_id, REPLICATION_FILE)),
                )
            except (OSError, ValueError, KeyError):
                continue
    return found


def with_replication_runs(
    source: SimulatedSource,
    *,
    experiment: str,
    parent_run_id: str,
    key: str,
    resume: bool = True,
    on_done: Callable[[Replication], None] | None = None,
) -> SimulatedSource:
    """``source`` with every replication a child run of ``parent_run_id``: with ``resume``,
    the finished replications of earlier comparisons with replication key ``key`` are
    reused (each linked as a child tagged ``resumed_from``), and every new one is logged as
    it finishes (then ``on_done`` is called with it). Tags the parent with
    ``replications`` and ``replication_key``."""
    import dataclasses
    import shutil

    wanted = range(source.replications)
    reused = reusable_replications(experiment, key, wanted) if resume else {}
    tracking.log_tags({"replications": str(source.replications), "replication_key": key})
    where: dict[str, Any] = {"experiment": experiment, "parent_run_id": parent_run_id, "key": key}
    for _, (run_id, rep) in sorted(reused.items()):
        log_replication(rep, **where, seed=source.seed, resumed_from=run_id)
    if 0 in reused:  # its models were logged by the run that computed it
        tracking.log_tags(
            {
                k: v
                for k, v in tracking.run_tags(reused[0][0]).items()
                if k.startswith(f"{POLICY_MODEL_TAG}.")
            }
        )
    bundles = tracking.temp_dir() if 0 not in reused else None
    if bundles is not None:  # removed once logged, or when the comparison's run ends
        tracking.on_run_end(lambda: shutil.rmtree(bundles, ignore_errors=True))

    def done(rep: Replication) -> None:
        mine = bundles if rep.index == 0 else None
        try:
            models = log_replication(rep, **where, seed=source.seed, bundles=mine)
        finally:
            if mine is not None:
                shutil.rmtree(mine, ignore_errors=True)
        tracking.log_tags(models)  # on the comparison's run: where each rung's model is
        if on_done is not None:
            on_done(rep)

    reuse = {i: rep for i, (_, rep) in reused.items()}
    return dataclasses.replace(
        source,
        reuse=reuse,
        on_replication=done,
        bundle_dir=str(bundles) if bundles is not None else None,
    )


def _log_rungs(result: ComparisonResult, experiment: str, parent_run_id: str) -> None:
    """One child run per rung of a simulated comparison: its settings, its curves averaged
    over the replications (metrics over steps) and its final metrics."""
    for label, rung in result.rungs.items():
        with tracking.run(
            experiment,
            run_name=label,
            parent_run_id=parent_run_id,
            tags={"run_kind": "compare_policy", "policy": rung.policy, "rung": label},
        ):
            tracking.log_params(
                {
                    "rung": label,
                    "policy": rung.policy,
                    "policy_params": rung.params,
                    "seed": result.seed,
                    "rounds": result.n,
                    "replications": rung.replications,
                }
            )
            tracking.log_metric_series(rung.curves)
            tracking.log_metrics(rung.metrics)


def _log_logged(result: ComparisonResult) -> None:
    """What a comparison on a log rests on: the column table, the split, the support
    metrics and evidence tags of every rung, the dataset."""
    from bandits.data.columns import column_table

    details = result.logged
    assert details is not None
    tracking.log_text(column_table(details.data).write_csv(), "tables/columns.csv")
    if details.test.cutoff is not None:
        tracking.log_params({"split.cutoff": details.test.cutoff})
    tracking.log_metrics(details.support)
    tracking.log_tags(details.tags)
    data = details.data
    tracking.log_input(
        data.frame.head(0) if data.n > 5_000_000 else data.frame,
        name=Path(str(data.source)).name or "decision_log",
        source=str(data.source),
        context="comparison",
    )


def log_comparison(result: ComparisonResult, *, experiment: str, run_id: str) -> None:
    """Log ``result`` into the active run ``run_id`` (the comparison's parent run) of
    ``experiment``: one child run per rung (simulation), then on the parent the verdicts
    (tags ``verdict.<rung>``, ``verdict.<a>.vs.<b>``, ``headline``, ``estimand``,
    ``best_rung``, ``guardrail.<rung>``), the lifts as metrics (``<rung>.diff``,
    ``.ci_low``, …), ``tables/{comparisons,pairs,group_lifts}.csv``, the plots and
    ``report.html``."""
    from bandits.report import comparison_figures
    from bandits.report_html import figure_png, render_report

    if result.rungs:
        _log_rungs(result, experiment, run_id)
    if result.logged is not None:
        _log_logged(result)
    comps = result.comparisons
    tags = {"headline": result.headline}
    metrics: dict[str, float] = {}
    for c in comps:
        tags[f"verdict.{c.policy}"] = c.verdict
        metrics.update(comparison_metrics(c, c.policy))
    for c in result.pairs:
        tags[f"verdict.{c.policy}.vs.{c.baseline}"] = c.verdict
        metrics.update(comparison_metrics(c, f"{c.policy}.vs.{c.baseline}"))
    metrics[f"{result.baseline}.value"] = comps[0].baseline_value
    if comps[0].baseline_cost is not None:
        metrics[f"{result.baseline}.cost"] = comps[0].baseline_cost
    tags["estimand"] = result.estimand
    if result.replications:
        tags["best_rung"] = str(result.best_rung)
        tags["best_rung.clear"] = str(result.best_rung_clear).lower()
        for rung, g in result.guardrails.items():
            tags[f"guardrail.{rung}"] = g.status
            metrics[f"{rung}.unsubscribes_per_1000"] = g.rate[0]
        metrics["replications"] = float(result.n_replications)
    tracking.log_tags(tags)
    tracking.log_metrics(metrics)
    tracking.log_text(result.table().write_csv(), "tables/comparisons.csv")
    if result.pairs:
        tracking.log_text(result.pairs_table().write_csv(), "tables/pairs.csv")
    tracking.log_text(result.groups.write_csv(), "tables/group_lifts.csv")
    pngs = {name: figure_png(fig) for name, fig in comparison_figures(result).items()}
    for name, png in pngs.items():  # rendered once: uploaded and embedded
        tracking.log_bytes(png, f"plots/{name.split(',')[0].lower().replace(' ', '_')}.png")
    tracking.log_text(render_report(result, pngs, run_id=run_id), "report.html")


def report_lines(run_id: str, experiment: str) -> list[str]:
    """Where the report is and how to open the store in the MLflow UI (bound to
    127.0.0.1)."""
    import mlflow

    lines = [
        "",
        f"Report: {tracking.artifact_uri(run_id, 'report.html')}",
        f"MLflow UI: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()} --host 127.0.0.1"
        f"  (experiment '{experiment}', run {run_id})",
    ]
    models = {
        k[len(POLICY_MODEL_TAG) + 1 : -len(".uri")]: v
        for k, v in sorted(tracking.run_tags(run_id).items())
        if k.startswith(f"{POLICY_MODEL_TAG}.") and k.endswith(".uri")
    }
    if models:
        lines.append("Learned policies as replication 0 ended them (experiments.decide model=…):")
        lines += [f"  {label}: {uri}" for label, uri in models.items()]
    return lines


# ----- simulation -----------------------------------------------------------------------------


class SimulationStream:
    """Streams a running simulation into the active run: the decision log day by day
    (``decision_log/decision_log.parquet``, complete only once the run ends; with
    ``decision_log`` false, none) and the curves in batches of at least ``rows`` points,
    so the MLflow UI charts them while the run goes on. Pass :attr:`on_log` and
    :attr:`on_curves` (``(every, callback)``) to :func:`bandits.experiment.run_simulation`,
    then give the stream to :func:`log_simulation`."""

    def __init__(self, every: int, *, decision_log: bool = True, rows: int = 50) -> None:
        self.every, self.rows = int(every), int(rows)
        self.frames: list[pl.DataFrame] = []
        self.pending = 0
        self.log = (
            tracking.ParquetArtifact("decision_log/decision_log.parquet") if decision_log else None
        )

    @property
    def on_log(self) -> Callable[[pl.DataFrame], None] | None:
        return self.log.write if self.log is not None else None

    @property
    def on_curves(self) -> tuple[int, Callable[[pl.DataFrame], None]]:
        return self.every, self._add

    def _add(self, frame: pl.DataFrame) -> None:
        self.frames.append(frame)
        self.pending += frame.height
        if self.pending >= self.rows:
            self.flush()

    def flush(self) -> None:
        """Send the curve points collected so far."""
        if self.frames:
            tracking.log_metric_series(pl.concat(self.frames))
            self.frames, self.pending = [], 0


def log_simulation(
    result: SimulationResult, stream: SimulationStream | None = None, *, plot: bool = True
) -> None:
    """Log a finished simulation into the active run: the rest of the curves and the
    decision log with its ``catalog.parquet`` and ``metadata.json`` (when ``stream``
    carried them), the final metrics with the throughput (``simulation_seconds``,
    ``rounds_per_second``), ``summary.json`` and, with ``plot``, the cumulative reward /
    regret / unsubscribe plot (``plot_seconds``)."""
    if stream is not None:
        stream.flush()
        if stream.log is not None:
            stream.log.close()
            tracking.log_parquet(result.catalog, "decision_log/catalog.parquet")
            tracking.log_dict(result.metadata, "decision_log/metadata.json")
    summary = result.summary
    tracking.log_metrics(
        {
            **summary,
            "simulation_seconds": result.seconds,
            "rounds_per_second": result.rounds / result.seconds,
        }
    )
    tracking.log_dict(summary, "summary.json")
    if plot:
        from bandits.report import plot_online_curves

        t0 = time.perf_counter()
        fig = plot_online_curves(
            {result.policy: result.curves(stream.every if stream else None)},
            title=f"{result.policy} on audience '{result.audience}'",
        )
        tracking.log_figure(fig, "plots/cumulative_reward_regret.png")
        tracking.log_metrics({"plot_seconds": time.perf_counter() - t0})


# ----- evaluation -----------------------------------------------------------------------------


def log_evaluation(result: EvaluationResult, *, plot: bool = True) -> dict[str, float]:
    """Log an evaluation into the active run: the policy's settings and the sizes as params
    (``policy_params``, ``resolved_mode``, ``log_rows``, ``evaluated_rows``, ``n_actions``,
    ``split.cutoff``), the column table, the dataset (``mlflow.log_input``), every
    estimate's metrics, ``estimates.csv``, the forest plot, the evidence tags and the
    replay's; returns the metrics."""
    data, evaluated = result.data, result.evaluated
    if result.streamed:
        tracking.log_params({"policy_params": result.params, "log_rows": result.log_rows})
    else:
        from bandits.data.columns import column_table

        tracking.log_params(
            {
                "policy_params": result.params,
                "resolved_mode": result.mode,
                "log_rows": data.n,
                "evaluated_rows": evaluated.n,
                "n_actions": data.n_actions,
            }
        )
        if evaluated.cutoff is not None:
            tracking.log_params({"split.cutoff": evaluated.cutoff})
        tracking.log_text(column_table(data).write_csv(), "tables/columns.csv")
    tracking.log_input(
        data.frame.head(0) if result.streamed or data.n > 5_000_000 else data.frame,
        name=Path(str(data.source)).name or "decision_log",
        source=str(data.source),
        context="evaluation",
    )
    if result.evaluation is not None:
        table = result.evaluation.table()
        tracking.log_text(table.write_csv(), "estimates.csv")
        if plot:
            from bandits.report import plot_forest

            labelled = table.with_columns(pl.col("estimator").alias("label"))
            fig = plot_forest(
                labelled,
                title=f"{result.policy} ({result.mode_label}): estimated value",
                truth=result.evaluation.true_value,
            )
            tracking.log_figure(fig, "plots/forest.png")
        tracking.log_tags(result.tags())
    if result.replay is not None:
        tracking.log_tags({"replay_message": result.replay.message})
    metrics = result.metrics()
    tracking.log_metrics(metrics)
    return metrics
