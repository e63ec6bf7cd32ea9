"""Helpers for the end-to-end tests of the apps: run a CLI, read its MLflow store, serve it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sqlite_uri(tmp_path: Path) -> str:
    """The URI of the SQLite store the apps run by :func:`run_app` use: ``tmp_path/mlflow.db``."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_app(
    app: str, tmp_path: Path, *args: str, timeout: int = 900, env: dict[str, str] | None = None
):
    """Run ``python -m experiments.<app> ARGS`` from the repo root with its MLflow store
    (:func:`sqlite_uri`, unless ``tracking.uri`` is given) and Hydra output directories
    inside ``tmp_path`` (created if missing); ``env``: variables set on top of this
    process's; at most ``timeout`` seconds."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, "MLFLOW_TRACKING_URI": sqlite_uri(tmp_path)}
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


def mlflow_runs(tmp_path: Path, experiment: str):
    """All runs of ``experiment`` in the store under ``tmp_path``."""
    return runs(sqlite_uri(tmp_path), experiment)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(
    directory: Path, *, store: str | None = None, timeout: float = 90.0
) -> Iterator[str]:
    """An ``mlflow server`` on 127.0.0.1 serving the backend store ``store`` (a URI; by
    default a new SQLite store ``directory/server.db``), its artifacts and log in
    ``directory``; waits up to ``timeout`` seconds for it to answer, stops it afterwards;
    yields its URI."""
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
        store or f"sqlite:///{directory / 'server.db'}",
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
