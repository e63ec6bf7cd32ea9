"""The `simulate` app end to end, through its real command line, on small runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_cli import ROOT, mlflow_runs, run_app


def _cli(tmp_path: Path, *args: str):
    return run_app("simulate", tmp_path, *args)


def _runs(tmp_path: Path):
    return mlflow_runs(tmp_path, "simulate")


SMALL = ["audience=small", "eval_rounds=300", "progress=false"]


def test_single_run_logs_everything(tmp_path):
    proc = _cli(tmp_path, "policy=linucb", "rounds=600", "seed=3", *SMALL)
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    for key in (
        "mean_reward",
        "mean_reward_ci_low",
        "true_value",
        "regret",
        "unsubscribe_rate",
        "final_policy_value",
    ):
        assert key in m
    assert p["seed"] == "3" and p["policy.name"] == "linucb" and p["policy_params.alpha"] == "1.0"
    assert t["git_commit"] != "" and "version.numpy" in t
    import mlflow

    client = mlflow.MlflowClient()
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    arts |= {a.path for a in client.list_artifacts(run.info.run_id, "decision_log")}
    arts |= {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "config.yaml",
        "decision_log/decision_log.parquet",
        "decision_log/catalog.parquet",
        "plots/cumulative_reward_regret.png",
    } <= arts
    history = client.get_metric_history(run.info.run_id, "cumulative_regret")
    assert len(history) >= 100 and history[-1].step == 600
    # privacy default: no user key in the logged decision log
    import polars as pl

    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id,
        artifact_path="decision_log/decision_log.parquet",
        dst_path=str(tmp_path / "dl"),
    )
    log = pl.read_parquet(local)
    assert "user_key" not in log.columns and log.height > 0
    # streamed day by day: every message sent is there once, in order
    assert log.height == m["messages_sent"]
    assert (log["round"].diff().drop_nulls() > 0).all() and log["round"].max() < 600
    assert m["plot_seconds"] > 0 and m["simulation_seconds"] > 0
    # LinUCB is greedy: each propensity is 1 / (number of tied best variants)
    ties = 1.0 / log["propensity"].to_numpy()
    assert abs(ties - ties.round()).max() < 1e-9 and (log["propensity"] == 1.0).mean() > 0.9


def test_same_seed_reproduces_metrics(tmp_path):
    for _ in range(2):  # resume=false: run again, do not skip the finished configuration
        args = ("policy=lints", "rounds=500", "seed=8", "resume=false", *SMALL)
        assert _cli(tmp_path, *args).returncode == 0
    a, b = _runs(tmp_path)
    keys = ("true_value", "mean_reward", "regret", "final_policy_value")
    assert {k: a.data.metrics[k] for k in keys} == {k: b.data.metrics[k] for k in keys}


def test_rerunning_a_finished_configuration_resumes(tmp_path):
    args = ("policy=uniform", "rounds=300", "seed=4", *SMALL)
    assert _cli(tmp_path, *args).returncode == 0
    again = _cli(tmp_path, *args)
    assert again.returncode == 0 and "already finished in MLflow" in again.stderr
    assert len(_runs(tmp_path)) == 1  # not run twice
    other = _cli(tmp_path, "policy=uniform", "rounds=301", "seed=4", *SMALL)  # another config
    assert other.returncode == 0 and "already finished" not in other.stderr
    assert len(_runs(tmp_path)) == 2


def test_sweep_is_one_parent_with_finished_children(tmp_path):
    proc = _cli(
        tmp_path, "-m", "policy=uniform,retargeting,segment_ts,linucb,vw", "rounds=500", *SMALL
    )
    assert proc.returncode == 0, proc.stderr
    runs = _runs(tmp_path)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 5
    assert parents[0].info.status == "FINISHED"
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.params["policy.name"] for c in children} == {
        "uniform",
        "retargeting",
        "segment_ts",
        "linucb",
        "vw",
    }


def test_sweep_with_a_failing_job_finishes_the_others(tmp_path):
    proc = _cli(
        tmp_path, "-m", "audience.catalog.n_variants=10,99", "policy=uniform", "rounds=300", *SMALL
    )
    assert proc.returncode != 0
    assert "n_variants must be in [2, 40], got 99" in proc.stderr
    runs = _runs(tmp_path)
    statuses = sorted(r.info.status for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert statuses == ["FAILED", "FINISHED"]
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policy=nope"], "error: unknown policy 'nope'"),
        (["audience=nope"], "error: unknown audience 'nope'"),
        (["rounds=0"], "error: rounds=0: must be ≥ 1"),
        (["rounds=-5"], "error: rounds=-5: must be ≥ 1"),
        (["rounds=1.5"], "error: rounds=1.5: expected an integer"),
        (["metric_every=0"], "error: metric_every=0: must be ≥ 1"),
        (["seed=abc"], "error: seed='abc': expected an integer"),
        (["plot=maybe"], "error: plot='maybe': expected true or false"),
        (["audience.n_users=abc"], "error: audience.n_users='abc': expected an integer"),
        (
            ["audience.response.taste_weight=abc"],
            "error: audience.response.taste_weight='abc': expected a number",
        ),
        (["policy=linucb", "policy.alpha=abc"], "error: policy.alpha='abc': expected a number"),
        (["policy=vw", "policy.explorer=greedy"], "error: unknown VW explorer 'greedy'"),
        (["audience.catalog.variants=[]"], "error: audience.catalog is empty"),
        (["policy=fixed", "policy.variant=nope"], "error: policy.variant='nope' is not in"),
    ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, args, message):
    proc = _cli(tmp_path, *args, "rounds=100" if "rounds" not in args[0] else "seed=1", *SMALL)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    if (tmp_path / "mlflow.db").exists():
        assert all(r.info.status != "RUNNING" for r in _runs(tmp_path))
    if "=" in args[-1] and "variant" not in args[-1] and "variants" not in args[-1]:
        assert not (tmp_path / "mlflow.db").exists()  # a bad value: checked before any run


def test_malformed_override_fails_cleanly(tmp_path):
    proc = _cli(tmp_path, "rounds==3")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_optuna_tuning_example(tmp_path):
    """The Optuna sweeper example (optional `tune` extra) maximises the exact true value."""
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper",
        reason="optional extra 'tune' (hydra-optuna-sweeper) not installed",
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.simulate",
            "--config-name",
            "tune_simulate",
            "-m",
            "hydra.sweeper.n_trials=2",
            "rounds=400",
            "audience=small",
            "eval_rounds=100",
            f"hydra.sweep.dir={tmp_path}/multi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Best value" in proc.stdout + proc.stderr
    assert (tmp_path / "multi" / "optimization_results.yaml").exists()
