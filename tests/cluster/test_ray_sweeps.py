"""Sweeps and replications on a real local Ray runtime (``hydra/launcher=ray``,
``compare engine=ray``): the same numbers as the basic launcher for the same seeds, the
same MLflow parent / child runs, failures and resume as the joblib launcher.

Each app starts its own Ray runtime on 127.0.0.1 with two CPUs and stops it when it exits;
every command is bounded by a timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_cli import RAY_SWEEP, SKIP_REASON, mlflow_server, results, run_app, runs, sqlite_uri

pytest.importorskip("ray", reason=SKIP_REASON)

SIM = ["audience=small", "eval_rounds=200", "progress=false"]
CMP = [
    "audience=small",
    "rounds=300",
    "eval_rounds=100",
    "~ladder.vw",
    "progress=false",
    "replications=2",
    "n_jobs=1",
]


def _sweep_runs(all_runs):
    """(the sweep's parent, its children) — exactly one parent expected."""
    (parent,) = [r for r in all_runs if r.data.tags.get("run_kind") == "sweep"]
    pid = parent.info.run_id
    return parent, [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == pid]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    with mlflow_server(tmp_path_factory.mktemp("mlflow_server")) as uri:
        yield uri


def test_simulate_sweep_on_ray_logs_to_the_server_with_the_basic_launchers_numbers(
    tmp_path, server
):
    """4 jobs as Ray tasks, each logging to an ``mlflow server`` (as remote workers would);
    the same metrics as the basic launcher's jobs in this process."""
    sweep = ["-m", "policy=uniform,linucb", "seed=1,2", "rounds=400", *SIM]
    basic = run_app("simulate", tmp_path / "basic", *sweep)
    assert basic.returncode == 0, basic.stderr
    on_ray = run_app(
        "simulate",
        tmp_path / "ray",
        *sweep,
        *RAY_SWEEP,
        f"tracking.uri={server}",
        "tracking.experiment=ray_simulate_sweep",
    )
    assert on_ray.returncode == 0, on_ray.stderr
    assert "Ray launcher: 4 jobs" in on_ray.stdout + on_ray.stderr  # Hydra's log: stdout
    parent, children = _sweep_runs(runs(server, "ray_simulate_sweep"))
    assert parent.info.status == "FINISHED"
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    _, reference = _sweep_runs(runs(sqlite_uri(tmp_path / "basic"), "simulate"))

    def by_job(rs):
        return {(r.data.params["policy.name"], r.data.params["seed"]): results(r) for r in rs}

    got, want = by_job(children), by_job(reference)
    assert set(got) == {("uniform", "1"), ("uniform", "2"), ("linucb", "1"), ("linucb", "2")}
    assert got == want  # same seeds, same numbers (exactly: the same code on the same machine)
    assert got[("linucb", "1")]["mean_reward"] != got[("linucb", "2")]["mean_reward"]


def test_a_failing_job_is_a_failed_child_and_a_rerun_resumes_on_the_same_parent(tmp_path):
    """Local Ray with the embedded SQLite store (allowed: every node is this machine)."""
    sweep = ["-m", "audience.catalog.n_variants=10,99", "policy=uniform", "rounds=300", *SIM]
    proc = run_app("simulate", tmp_path, *sweep, *RAY_SWEEP)
    assert proc.returncode != 0
    assert "n_variants must be in [2, 40], got 99" in proc.stderr
    parent, children = _sweep_runs(runs(sqlite_uri(tmp_path), "simulate"))
    assert parent.info.status == "FAILED"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]

    again = run_app("simulate", tmp_path, *sweep, *RAY_SWEEP)
    assert again.returncode != 0
    assert "already finished in MLflow" in again.stderr  # the good job is skipped
    parent2, children2 = _sweep_runs(runs(sqlite_uri(tmp_path), "simulate"))
    assert parent2.info.run_id == parent.info.run_id  # adopted, not a second parent
    assert parent2.data.tags["attempts"] == "2"
    assert sorted(c.info.status for c in children2) == ["FAILED", "FAILED", "FINISHED"]


def test_compare_sweep_on_ray_equals_the_basic_launcher(tmp_path):
    """A compare sweep (2 jobs × 2 replications) on Ray: one FINISHED child per job with
    the basic launcher's verdict numbers."""
    sweep = ["-m", "seed=1,2", *CMP]
    basic = run_app("compare", tmp_path / "basic", *sweep)
    assert basic.returncode == 0, basic.stderr
    on_ray = run_app("compare", tmp_path / "ray", *sweep, *RAY_SWEEP)
    assert on_ray.returncode == 0, on_ray.stderr

    def jobs(path: Path):
        parent, children = _sweep_runs(runs(sqlite_uri(path), "compare"))
        assert parent.info.status == "FINISHED"
        assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
        assert {c.data.tags["run_kind"] for c in children} == {"compare"}
        return {c.data.params["seed"]: results(c) for c in children}

    got, want = jobs(tmp_path / "ray"), jobs(tmp_path / "basic")
    assert set(got) == {"1", "2"} and got == want
    assert "linucb.diff" in got["1"]


def test_compare_replications_as_ray_tasks_equal_this_process(tmp_path):
    """``engine=ray``: the replications joblib would run go to Ray; same numbers as one
    process (every replication depends only on its own seed)."""
    local = run_app("compare", tmp_path / "local", *CMP, "replications=3", "seed=4")
    assert local.returncode == 0, local.stderr
    on_ray = run_app(
        "compare",
        tmp_path / "ray",
        *CMP,
        "replications=3",
        "seed=4",
        "n_jobs=2",
        "engine=ray",
        "cluster.num_cpus=2",
    )
    assert on_ray.returncode == 0, on_ray.stderr

    def parent(path: Path):
        (run,) = [
            r for r in runs(sqlite_uri(path), "compare") if r.data.tags["run_kind"] == "compare"
        ]
        reps = [
            r
            for r in runs(sqlite_uri(path), "compare")
            if r.data.tags.get("run_kind") == "compare_replication"
        ]
        assert sorted(r.data.tags["replication"] for r in reps) == ["0", "1", "2"]
        return results(run)

    assert parent(tmp_path / "ray") == parent(tmp_path / "local")
