"""Data-aware resume and time-ordered logs through the apps' command lines: ``compare
source=logs`` resumes only on the same data, records the data's fingerprint and the split's
cut-off time, and says when the log's rows were out of time order."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_cli import mlflow_runs, run_app

from bandits.data import fingerprint, load_log
from bandits.data.io import write_log, write_log_dir
from bandits.offline import split_log
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online

#: a ladder without the slow learners: ab_winner and segment_ts still train, so the log is
#: split by time
FAST = ["~ladder.vw", "~ladder.linucb", "progress=false"]
REORDERED = "log rows were out of time order; ordered by 'timestamp'"


def simulated(seed: int, rows: int = 5000):
    """A small uniform-logging log with the simulator's catalog."""
    env = Environment(AudienceSettings(n_users=3000, impressions_per_day=1500), 4)
    res = run_online(env, make_policy("uniform"), rows, seed, eval_rounds=0)
    return res.log.drop("user_key"), env.catalog.to_frame()


@pytest.fixture()
def log_dir(tmp_path: Path) -> Path:
    frame, catalog = simulated(1)
    return write_log_dir(
        tmp_path / "decision_log",
        frame,
        catalog,
        metadata={"features": default_feature_schema().to_dict()},
    )


def _compare_runs(tmp_path: Path):
    return [r for r in mlflow_runs(tmp_path, "compare") if r.data.tags.get("run_kind") == "compare"]


def _cutoff(path: Path) -> str:
    _, test = split_log(load_log(path), 0.5)
    assert test.cutoff is not None
    return str(test.cutoff)


def test_compare_resumes_on_the_same_data_and_reruns_on_new_data(tmp_path, log_dir):
    args = ["source=logs", f"logs={log_dir}", *FAST]
    first = run_app("compare", tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert REORDERED not in first.stderr  # the simulator writes in time order
    (run,) = _compare_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags["data_fingerprint"] == fingerprint(log_dir)
    assert run.data.params["split.cutoff"] == _cutoff(log_dir)

    # the same data: resumed, nothing new
    again = run_app("compare", tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stderr and "skipping" in again.stderr
    assert len(_compare_runs(tmp_path)) == 1

    # the log file overwritten with other data (rows shuffled out of time order): a new run
    frame, _ = simulated(2)
    write_log(frame.sample(fraction=1.0, shuffle=True, seed=0), log_dir / "decision_log.parquet")
    rerun = run_app("compare", tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "already finished" not in rerun.stderr
    assert sum(line.strip() == REORDERED for line in rerun.stderr.splitlines()) == 1
    runs = _compare_runs(tmp_path)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    new = next(r for r in runs if r.info.run_id != run.info.run_id)
    assert new.data.tags["config_hash"] != run.data.tags["config_hash"]
    assert new.data.tags["data_fingerprint"] == fingerprint(log_dir)
    assert new.data.tags["data_fingerprint"] != run.data.tags["data_fingerprint"]
    assert new.data.params["split.cutoff"] == _cutoff(log_dir)


def test_evaluate_records_the_fingerprint_the_cutoff_and_the_reordering(tmp_path, log_dir):
    frame, _ = simulated(1)
    write_log(frame.reverse(), log_dir / "decision_log.parquet")  # newest first
    proc = run_app(
        "evaluate",
        tmp_path,
        f"logs={log_dir}",
        "policy=segment_ts",
        "mode=train",
        "estimators=[ips]",
    )
    assert proc.returncode == 0, proc.stderr
    assert REORDERED in proc.stderr
    (run,) = mlflow_runs(tmp_path, "evaluate")
    assert run.info.status == "FINISHED"
    assert run.data.tags["data_fingerprint"] == fingerprint(log_dir)
    assert run.data.params["split.cutoff"] == _cutoff(log_dir)
    assert run.data.params["evaluated_rows"] == str(frame.height // 2)
