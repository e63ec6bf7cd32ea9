"""Helpers of the Ray tests: the apps' test helpers (:mod:`app_cli`: run an app, read its
MLflow runs, a tracking server) with a shorter time limit, a partitioned log."""

from __future__ import annotations

import functools
import itertools
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import app_cli
from app_cli import mlflow_server, runs, sqlite_uri, uniform_log_dir

SKIP_REASON = "cluster extra not installed: pip install -e '.[cluster]'"
#: a local Ray runtime of two CPUs for the apps' sweeps (and the replications)
RAY_SWEEP = ["hydra/launcher=ray", "hydra.launcher.num_cpus=2"]
#: metrics that measure time, not results (they differ from run to run)
TIMING = ("second", "per_s", "throughput", "elapsed", "duration", "wall")
#: :func:`app_cli.run_app` with at most 300 seconds unless told
run_app = functools.partial(app_cli.run_app, timeout=300)


def results(run) -> dict[str, float]:
    """A run's metrics without the timings."""
    return {k: v for k, v in run.data.metrics.items() if not any(t in k for t in TIMING)}


def partitioned_log(directory: Path, bounds: list[int], *, rounds: int) -> Path:
    """A uniform logger's decision log (small audience, ``rounds`` decisions,
    :func:`app_cli.uniform_log_dir`) written as parquet parts ``part-000.parquet`` … cut
    at ``bounds`` (row indices), with the catalog and the feature schema beside them."""
    import polars as pl

    whole = uniform_log_dir(directory, n_users=400, per_day=300, env_seed=5, rounds=rounds)
    parts = directory / "parts"
    parts.mkdir()
    log = pl.read_parquet(whole / "decision_log.parquet")
    cuts = [0, *bounds, log.height]
    for j, (a, b) in enumerate(itertools.pairwise(cuts)):
        log.slice(a, b - a).write_parquet(parts / f"part-{j:03d}.parquet")
    for name in ("catalog.parquet", "metadata.json"):
        shutil.copy(whole / name, parts / name)
    return parts


__all__ = [
    "RAY_SWEEP",
    "SKIP_REASON",
    "mlflow_server",
    "partitioned_log",
    "results",
    "run_app",
    "runs",
    "sqlite_uri",
]
