"""Helpers of the Ray tests: run an app, read its MLflow runs, a tracking server, a log."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_REASON = "cluster extra not installed: pip install -e '.[cluster]'"
#: a local Ray runtime of two CPUs for the apps' sweeps (and the replications)
RAY_SWEEP = ["hydra/launcher=ray", "hydra.launcher.num_cpus=2"]
#: metrics that measure time, not results (they differ from run to run)
TIMING = ("second", "per_s", "throughput", "elapsed", "duration", "wall")


def run_app(app: str, tmp_path: Path, *args: str, timeout: int = 300, env: dict | None = None):
    """``python -m experiments.<app> ARGS`` from the repo root, its SQLite store (unless
    ``tracking.uri`` is given) and Hydra directories under ``tmp_path``; at most
    ``timeout`` seconds."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    full.pop("HYDRA_FULL_ERROR", None)
    full.update(env or {})
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
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs(uri: str, experiment: str):
    """Every run of ``experiment`` in the store at ``uri``."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def results(run) -> dict[str, float]:
    """A run's metrics without the timings."""
    return {k: v for k, v in run.data.metrics.items() if not any(t in k for t in TIMING)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(directory: Path, timeout: float = 90.0) -> Iterator[str]:
    """An ``mlflow server`` on 127.0.0.1 (its store and artifacts in ``directory``),
    stopped afterwards; yields its URI."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{directory / 'server.db'}",
        "--artifacts-destination",
        str(directory / "artifacts"),
    ]
    log = open(directory / "server.log", "w")  # closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start: {(directory / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=20)
        log.close()


def partitioned_log(directory: Path, bounds: list[int], *, rounds: int) -> Path:
    """A uniform logger's decision log (small audience, ``rounds`` decisions) written as
    parquet parts ``part-000.parquet`` … cut at ``bounds`` (row indices), with the
    catalog and the feature schema beside them."""
    import polars as pl

    from bandits.data.io import write_log_dir
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online

    env = Environment(AudienceSettings(n_users=400, impressions_per_day=300), 5)
    res = run_online(env, make_policy("uniform"), rounds, 1, eval_rounds=0)
    whole = directory / "whole"
    write_log_dir(
        whole,
        res.log.drop("user_key"),
        env.catalog.to_frame(),
        metadata={"features": default_feature_schema().to_dict()},
    )
    parts = directory / "parts"
    parts.mkdir()
    log = pl.read_parquet(whole / "decision_log.parquet")
    cuts = [0, *bounds, log.height]
    for j, (a, b) in enumerate(itertools.pairwise(cuts)):
        log.slice(a, b - a).write_parquet(parts / f"part-{j:03d}.parquet")
    for name in ("catalog.parquet", "metadata.json"):
        shutil.copy(whole / name, parts / name)
    return parts
