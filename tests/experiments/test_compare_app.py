"""The `compare` app end to end through its command line (small runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_cli import mlflow_runs, run_app, uniform_log_dir

from bandits.data.io import write_log_dir


def _cli(tmp_path: Path, *args: str):
    return run_app("compare", tmp_path, *args)


def _runs(tmp_path: Path):
    return mlflow_runs(tmp_path, "compare")


SMALL = [
    "audience=small",
    "rounds=1500",
    "eval_rounds=200",
    "~ladder.vw",
    "progress=false",
    "replications=3",
    "n_jobs=1",
]
RUNGS = {"one_for_all", "segments", "retargeting", "linucb"}


def _children(runs, parent, kind: str):
    return [
        r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        and r.data.tags.get("run_kind") == kind
    ]


def test_comparison_parent_children_verdicts_report_and_resume(tmp_path):
    proc = _cli(tmp_path, *SMALL, "seed=2", "n_jobs=2")  # replications in joblib workers
    assert proc.returncode == 0, proc.stderr
    assert "VERDICT" in proc.stderr and "report.html" in proc.stderr
    assert "1,500-impression campaign on this audience" in proc.stderr
    assert "over 3 independent runs" in proc.stderr
    runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "compare"]
    children = _children(runs, parent, "compare_policy")
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["rung"] for c in children} == RUNGS
    assert all(c.info.status == "FINISHED" for c in children)
    reps = _children(runs, parent, "compare_replication")
    assert sorted(int(r.data.tags["replication"]) for r in reps) == [0, 1, 2]
    assert all(r.info.status == "FINISHED" for r in reps)
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags["replications"] == "3" and parent.data.params["replications"] == "3"
    assert "over 3 independent runs" in tags["estimand"]
    for rung in ("one_for_all", "segments", "linucb"):
        assert tags[f"verdict.{rung}"] in {"better", "worse", "inconclusive"}
        assert metrics[f"{rung}.ci_low"] <= metrics[f"{rung}.diff"] <= metrics[f"{rung}.ci_high"]
        assert f"{rung}.replications_needed" in metrics and f"{rung}.within_stderr" in metrics
        assert rung in tags["headline"]  # every rung's verdict is in the headline
        assert tags[f"guardrail.{rung}"] in {"within", "exceeds", "may exceed"}
    assert tags["verdict.linucb.vs.segments"] in {"better", "worse", "inconclusive"}
    assert tags["best_rung"] in RUNGS and tags["best_rung.clear"] in {"true", "false"}
    assert metrics["retargeting.value"] > 0
    assert tags["headline"].endswith(".")
    import mlflow

    client = mlflow.MlflowClient()
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "tables", "plots", "config.yaml"} <= arts
    html = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="report.html", dst_path=str(tmp_path / "a")
        )
    ).read_text()
    assert "Every policy against the baseline" in html and "data:image/png;base64" in html
    assert "The question answered" in html and "The rest of the ladder" in html
    assert "retargeting (baseline)" in html and "every cell of every table" in html
    assert len(client.get_metric_history(children[0].info.run_id, "cumulative_regret")) > 50

    # resume: the same configuration is skipped; more replications reuse the finished ones
    again = _cli(tmp_path, *SMALL, "seed=2")
    assert again.returncode == 0 and "already finished" in again.stderr
    assert len(_runs(tmp_path)) == len(runs)
    more = _cli(tmp_path, *SMALL, "seed=2", "replications=4")
    assert more.returncode == 0, more.stderr
    assert "replications: 4 (3 reused from finished runs), 1 to run" in more.stderr
    (latest,) = [
        r
        for r in _runs(tmp_path)
        if r.data.tags.get("run_kind") == "compare" and r.info.run_id != parent.info.run_id
    ]
    reps4 = _children(_runs(tmp_path), latest, "compare_replication")
    assert sorted(int(r.data.tags["replication"]) for r in reps4) == [0, 1, 2, 3]
    reused = {r.data.tags["replication"]: r for r in reps4 if "resumed_from" in r.data.tags}
    assert set(reused) == {"0", "1", "2"}
    before = {r.data.tags["replication"]: r.data.metrics for r in reps}
    for index, r in reused.items():
        assert r.data.metrics["linucb.value"] == before[index]["linucb.value"]


def test_one_replication_and_the_same_policy_twice(tmp_path):
    """The same policy listed twice is a genuine A/A (its own seed per rung); with one
    replication the console says the interval cannot be formed over runs, the verdict falls
    back to that run's batch means and the who-gains tables are exploratory."""
    proc = _cli(
        tmp_path,
        *SMALL,
        "replications=1",
        "+ladder.linucb_again={name: linucb}",
        "baseline=linucb",
    )
    assert proc.returncode == 0, proc.stderr
    assert "no interval over replications can be formed" in proc.stderr
    runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "compare"]
    rungs = {c.data.tags["rung"]: c for c in _children(runs, parent, "compare_policy")}
    assert rungs["linucb"].data.metrics["value"] != rungs["linucb_again"].data.metrics["value"]
    assert parent.data.tags["replications"] == "1"
    import mlflow
    import polars as pl

    path = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id,
        artifact_path="tables/group_lifts.csv",
        dst_path=str(tmp_path / "g"),
    )
    assert set(pl.read_csv(path)["verdict"]) <= {"exploratory", "too few rounds"}


def test_sweep_over_scenarios_with_a_failing_job(tmp_path):
    proc = _cli(
        tmp_path,
        "-m",
        "hydra/launcher=local_parallel",  # joblib workers: parent id must reach them
        "experiment=segments_suffice,context_matters",
        "baseline=segments,nope",
        *SMALL,
    )
    assert proc.returncode != 0
    assert "baseline 'nope' is not a ladder rung" in proc.stderr
    runs = _runs(tmp_path)
    sweep = [r for r in runs if r.data.tags.get("run_kind") == "sweep"]
    assert len(sweep) == 1 and sweep[0].info.status == "FAILED"
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep[0].info.run_id]
    statuses = sorted(r.info.status for r in jobs)
    assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    finished = [r for r in jobs if r.info.status == "FINISHED"]
    assert {r.data.tags["scenario"] for r in finished} == {"segments_suffice", "context_matters"}


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return uniform_log_dir(
        tmp_path_factory.mktemp("logs"), n_users=4000, per_day=2000, env_seed=5, rounds=12_000
    )


def test_comparison_on_logs(tmp_path, log_dir):
    proc = _cli(tmp_path, "source=logs", f"logs={log_dir}", "~ladder.vw", "progress=false")
    assert proc.returncode == 0, proc.stderr
    assert "replications apply to simulation only" in proc.stderr
    (parent,) = [r for r in _runs(tmp_path) if r.data.tags.get("run_kind") == "compare"]
    m = parent.data.metrics
    for rung in ("one_for_all", "segments", "linucb"):
        assert m[f"{rung}.ci_low"] <= m[f"{rung}.diff"] <= m[f"{rung}.ci_high"]
        # the log carries the simulator's truth: the paired DR interval contains it
        assert m[f"{rung}.ci_low"] <= m[f"{rung}.true_diff"] <= m[f"{rung}.ci_high"], rung
    assert parent.inputs.dataset_inputs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["baseline=nope"], "error: baseline 'nope' is not a ladder rung"),
        (["experiment=nope"], "error: unknown experiment 'nope'"),
        (["source=logs"], "error: source=logs needs logs=PATH"),
        (["ladder.linucb.name=magic"], "error: unknown policy 'magic'"),
        (["replications=0"], "error: replications=0: must be ≥ 1"),
        (["replications=abc"], "error: replications='abc': expected an integer"),
        (["replications=2.5"], "error: replications=2.5: expected an integer"),
        (["n_jobs=0"], "error: n_jobs must be a whole number >= 1"),
        (
            ["guardrail.max_unsubscribe_per_1000=-1"],
            "error: guardrail.max_unsubscribe_per_1000 must be a number >= 0",
        ),
    ],
)
def test_bad_input(tmp_path, args, message):
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not _runs(tmp_path)  # before any run


def test_ladder_fits_a_log_without_the_simulators_columns(tmp_path, log_dir):
    """A team's log with no `segment` / `last_viewed_category` columns and a catalog with no
    `category`: the rungs that need them are left out, said in one line and tagged; with
    the default baseline (retargeting) left out, the run stops with one line before any
    MLflow run exists, and names the rungs that could be the baseline."""
    import polars as pl

    own = tmp_path / "own_log"
    frame = pl.read_parquet(log_dir / "decision_log.parquet").drop(
        "segment", "last_viewed_category", "days_since_view"
    )
    catalog = pl.read_parquet(log_dir / "catalog.parquet").select("variant_id", "tone")
    write_log_dir(own, frame, catalog, metadata={})
    proc = _cli(tmp_path, "source=logs", f"logs={own}", "~ladder.vw", "progress=false")
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "baseline 'retargeting' cannot run on this log" in errors[0]
    assert "category" in errors[0] and "one_for_all" in errors[0]
    assert not (tmp_path / "mlflow.db").exists() or not _runs(tmp_path)

    proc = _cli(
        tmp_path,
        "source=logs",
        f"logs={own}",
        "~ladder.vw",
        "baseline=one_for_all",
        "progress=false",
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("left out of the ladder")]
    assert "segments" in line and "retargeting" in line
    (parent,) = [r for r in _runs(tmp_path) if r.data.tags.get("run_kind") == "compare"]
    assert parent.info.status == "FINISHED"
    assert {k for k in parent.data.tags if k.startswith("verdict.")} == {"verdict.linucb"}
    assert "segments" in parent.data.tags["ladder.left_out"]
