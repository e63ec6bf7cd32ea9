"""Helpers for the end-to-end tests of the apps: run a CLI, read its MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_app(app: str, tmp_path: Path, *args: str, timeout: int = 900):
    """Run ``python -m experiments.<app> ARGS`` from the repo root with its MLflow store and
    Hydra output directories inside ``tmp_path``."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            f"experiments.{app}",
            *args,
            f"hydra.run.dir={tmp_path}/out",
            f"hydra.sweep.dir={tmp_path}/multi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mlflow_runs(tmp_path: Path, experiment: str):
    """All runs of ``experiment`` in the store under ``tmp_path``."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def uniform_log_dir(
    directory: Path, *, n_users: int, per_day: int, env_seed: int, rounds: int
) -> Path:
    """A uniform logger's decision log directory (log + catalog + feature schema) on a
    synthetic audience: ``rounds`` decisions, environment seed ``env_seed``, policy seed 1."""
    from bandits.data.io import write_log_dir
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online

    env = Environment(AudienceSettings(n_users=n_users, impressions_per_day=per_day), env_seed)
    res = run_online(env, make_policy("uniform"), rounds, 1, eval_rounds=0)
    d = directory / "decision_log"
    write_log_dir(
        d,
        res.log.drop("user_key"),
        env.catalog.to_frame(),
        metadata={"features": default_feature_schema().to_dict()},
    )
    return d
