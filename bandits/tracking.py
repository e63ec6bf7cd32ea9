"""MLflow tracking helpers — the only module of the library that imports MLflow.

Conventions: every run logs flattened params (batched), the resolved config as YAML, the seed,
the git commit and package versions as tags; step metrics go through ``log_batch`` in chunks;
runs are always ended with a terminal status (FINISHED, FAILED or KILLED), never left RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import polars as pl
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

MAX_PARAM_LENGTH = 6000
BATCH = 1000  # metrics per log_batch call (MLflow's limit)
PARAM_BATCH = 100
TAG_PARENT = "mlflow.parentRunId"
#: id of the last run started by :func:`run` in this process (None before any)
last_run_id: str | None = None
PACKAGES = ("numpy", "polars", "vowpalwabbit", "mlflow", "hydra-core", "numba")


def default_tracking_uri(base_dir: str | os.PathLike[str] | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a local SQLite store ``mlflow.db`` in
    ``base_dir`` (default: the current directory) — no server needed."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    base = Path(base_dir or os.getcwd()).resolve()
    return f"sqlite:///{base / 'mlflow.db'}"


def configure(uri: str | None, base_dir: str | os.PathLike[str] | None = None) -> str:
    """Point MLflow at ``uri`` (or the default) and return the URI used."""
    uri = uri or default_tracking_uri(base_dir)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, artifact_root: str | None = None) -> str:
    """Experiment id for ``name``, creating it (with absolute artifact storage for local
    stores, so the UI finds artifacts from any directory)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if artifact_root is not None:
        location = artifact_root
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :]).resolve()
        location = (db.parent / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created concurrently by another worker
        exp = client.get_experiment_by_name(name)
        assert exp is not None
        return exp.experiment_id


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys (lists become JSON strings)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """Current git commit (with ``-dirty`` if the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@contextlib.contextmanager
def run(
    experiment: str,
    run_name: str,
    *,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start a run (a child of ``parent_run_id`` if given) and always end it: FINISHED on
    success, KILLED on Ctrl-C, FAILED on any exception (which propagates). Yields the run id."""
    exp_id = ensure_experiment(experiment)
    all_tags = {"git_commit": git_commit(Path(__file__).parent)}
    all_tags.update({f"version.{k}": v for k, v in package_versions().items()})
    if tags:
        all_tags.update(tags)
    if parent_run_id:
        all_tags[TAG_PARENT] = parent_run_id
    active = mlflow.start_run(
        experiment_id=exp_id, run_name=run_name, tags=all_tags, nested=bool(parent_run_id)
    )
    run_id = active.info.run_id
    global last_run_id
    last_run_id = run_id
    try:
        yield run_id
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def start_parent(experiment: str, run_name: str, tags: Mapping[str, str] | None = None) -> str:
    """Create a parent run without making it active (for sweeps); returns its id."""
    exp_id = ensure_experiment(experiment)
    all_tags = {"git_commit": git_commit(Path(__file__).parent), "run_kind": "sweep"}
    all_tags.update(tags or {})
    created = MlflowClient().create_run(exp_id, run_name=run_name, tags=all_tags)
    return created.info.run_id


def end_parent(run_id: str) -> str:
    """End a sweep's parent run: FAILED if any child failed or is unfinished, else FINISHED.
    Returns the status."""
    client = MlflowClient()
    parent = client.get_run(run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.{TAG_PARENT} = '{run_id}'",
        max_results=10_000,
    )
    bad = [c for c in children if c.info.status != "FINISHED"]
    status = "FAILED" if bad or not children else "FINISHED"
    client.set_tag(run_id, "children", str(len(children)))
    client.set_tag(run_id, "children_failed", str(len(bad)))
    client.set_terminated(run_id, status=status)
    return status


def record_failed_run(
    experiment: str, run_name: str, error: str, parent_run_id: str | None = None
) -> str:
    """Record a job that failed before its run started (e.g. invalid config in a sweep) as
    a FAILED run carrying the error, so the sweep's parent sees it."""
    exp_id = ensure_experiment(experiment)
    tags = {"error": error[:5000]}
    if parent_run_id:
        tags[TAG_PARENT] = parent_run_id
    client = MlflowClient()
    created = client.create_run(exp_id, run_name=run_name, tags=tags)
    client.set_terminated(created.info.run_id, status="FAILED")
    return created.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    """Log (flattened) params in batches; long values are truncated with a marker."""
    flat = flatten(params)
    items = []
    for k, v in flat.items():
        text = "None" if v is None else str(v)
        if len(text) > MAX_PARAM_LENGTH:
            text = text[: MAX_PARAM_LENGTH - 12] + "…[truncated]"
        items.append(Param(k, text))
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    for i in range(0, len(items), PARAM_BATCH):
        client.log_batch(run_id, params=items[i : i + PARAM_BATCH])


def log_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log final metrics in one batch (non-finite values are skipped, not logged as NaN)."""
    clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_metric_series(frame: pl.DataFrame, step_column: str = "step") -> None:
    """Log every non-step column of ``frame`` as a metric over ``step``, in batches."""
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    ts = int(mlflow.utils.time.get_current_time_millis())
    steps = frame[step_column].to_numpy()
    batch: list[Metric] = []
    for col in frame.columns:
        if col == step_column:
            continue
        values = frame[col].to_numpy()
        for s, v in zip(steps.tolist(), values.tolist(), strict=True):
            if v is not None and np.isfinite(v):
                batch.append(Metric(col, float(v), ts, int(s)))
    for i in range(0, len(batch), BATCH):
        client.log_batch(run_id, metrics=batch[i : i + BATCH])


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    mlflow.log_dict(dict(data), artifact_file)


def log_figure(fig: Any, artifact_file: str) -> None:
    mlflow.log_figure(fig, artifact_file)


def log_parquet(frame: pl.DataFrame, artifact_file: str) -> None:
    """Write ``frame`` to parquet in a temp dir, then upload (never a partial artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.write_parquet(path)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


def log_input(frame: pl.DataFrame, name: str, source: str, context: str = "training") -> None:
    """Record a dataset (schema, digest, source path) as the run's input.

    Enum/categorical columns are recorded as strings (MLflow's schema has no enum type).
    """
    import warnings

    from mlflow.data.dataset_source_registry import get_registered_sources

    cats = [c for c, dt in frame.schema.items() if isinstance(dt, pl.Enum | pl.Categorical)]
    if cats:
        frame = frame.with_columns(pl.col(cats).cast(pl.String))
    local = next(
        (s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource"), None
    )
    uri = Path(source).resolve().as_uri() if "://" not in source else source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        src = local(uri) if local is not None else uri
        ds = mlflow.data.from_polars(frame, source=src, name=name)
    mlflow.log_input(ds, context=context)


def artifact_uri(run_id: str, path: str = "") -> str:
    return MlflowClient().get_run(run_id).info.artifact_uri.rstrip("/") + (
        f"/{path}" if path else ""
    )


__all__ = [
    "RunTag",
    "artifact_uri",
    "configure",
    "default_tracking_uri",
    "end_parent",
    "ensure_experiment",
    "flatten",
    "git_commit",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric_series",
    "log_metrics",
    "log_params",
    "log_parquet",
    "log_tags",
    "log_text",
    "package_versions",
    "record_failed_run",
    "run",
    "start_parent",
]
