"""Sweeps with the joblib launcher: the parent run is created by one of the launcher's
workers while the others import what jobs need, and the launcher then finds those warm
workers (the launching process never imports MLflow)."""

from __future__ import annotations

import os
import sys
import time

import pytest
from omegaconf import OmegaConf

from experiments import common

JOBLIB = {
    "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "n_jobs": 2,
    "backend": "loky",
    "prefer": "processes",
    "require": None,
    "verbose": 0,
    "timeout": None,
    "pre_dispatch": "2*n_jobs",
    "batch_size": "auto",
    "temp_folder": None,
    "max_nbytes": None,
    "mmap_mode": "r",
}


def _warmth() -> tuple[int, bool, bool]:
    """(pid, MLflow imported, the other job modules imported) in a worker."""
    time.sleep(0.05)  # long enough that both workers take tasks
    return os.getpid(), "bandits.tracking" in sys.modules, "bandits.report" in sys.modules


def test_other_launchers_are_left_alone():
    cfg = OmegaConf.create(
        {"hydra": {"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher."}}}
    )
    assert common.joblib_args(cfg) is None


def test_parent_run_made_in_a_worker_and_the_launcher_reuses_warm_workers(tmp_path):
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    joblib_cfg = common.joblib_args(OmegaConf.create({"hydra": {"launcher": JOBLIB}}))
    assert joblib_cfg is not None
    parent = {
        "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "base_dir": str(tmp_path),
        "experiment": "sweeps",
        "run_name": "sweep x",
        "tags": {"sweep_overrides": "seed=1,2"},
    }
    record = common._in_workers(joblib_cfg, common._start_parent, parent, warm_others=True)
    assert record is not None and record["tracking_uri"] == parent["uri"]
    # what hydra_joblib_launcher does with the same config: the same, warm processes
    launcher_cfg = {k: v for k, v in JOBLIB.items() if k != "_target_"}
    process_joblib_cfg(launcher_cfg)
    seen = {pid: (mlflow, rest) for pid, mlflow, rest in _probe(launcher_cfg)}
    assert len(seen) == 2  # the same two processes
    # both have MLflow (the parent's worker made the run); the other one imported the rest
    assert sorted(seen.values()) == [(True, False), (True, True)]
    # closing it in a worker too: no child finished, so FAILED
    assert common._in_workers(joblib_cfg, common._end_parent, record) == "FAILED"
    import mlflow

    mlflow.set_tracking_uri(parent["uri"])
    run = mlflow.MlflowClient().get_run(record["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["sweep_overrides"] == "seed=1,2"


def _probe(launcher_cfg: dict) -> list[tuple[int, bool, bool]]:
    """Ask each worker of the launcher's executor, until both have answered."""
    from joblib import Parallel, delayed

    for _ in range(50):
        answers = Parallel(**launcher_cfg)(delayed(_warmth)() for _ in range(8))
        if len({pid for pid, _, _ in answers}) == 2:
            return answers
    raise AssertionError(f"only one worker answered: {answers}")


def test_a_failure_in_the_worker_falls_back_to_none():
    joblib_cfg = common.joblib_args(OmegaConf.create({"hydra": {"launcher": JOBLIB}}))
    assert common._in_workers(joblib_cfg, common._end_parent, {"no": "keys"}) is None


# --- loky's worker-growth check (a worker whose RSS grew > 300 MB is replaced) -------------

_held: list[bytes] = []


def _pid() -> int:
    import os

    return os.getpid()


def _grow_and_hold(megabytes: int) -> int:
    """Keep ``megabytes`` of written (resident) memory in the worker, and let loky's check
    (at most once a second) run after this task."""
    import time

    _held.append(b"\x01" * (megabytes * 2**20))
    time.sleep(1.2)
    return _pid()


def _worker_pids(first_task) -> list[int]:
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    executor = ProcessPoolExecutor(max_workers=1)
    try:
        pids = [executor.submit(first_task).result(timeout=120)]
        pids.append(executor.submit(_grow_and_hold, 400).result(timeout=120))
        pids.append(executor.submit(_pid).result(timeout=120))
        return pids
    finally:
        executor.shutdown(wait=True)


def _allow_growth_then_pid() -> int:
    common.allow_worker_growth()
    return _pid()


@pytest.mark.filterwarnings("ignore:A worker stopped while some jobs:UserWarning")
def test_sweep_workers_are_not_replaced_when_a_job_leaves_them_bigger():
    # loky's own check replaces a worker that grew by 400 MB (so the next job would pay a
    # fresh process's imports)...
    plain = _worker_pids(_pid)
    assert plain[0] == plain[1] != plain[2]
    # ...but not a worker our sweep prewarm / job start has prepared
    prepared = _worker_pids(_allow_growth_then_pid)
    assert prepared[0] == prepared[1] == prepared[2]


def test_prewarm_and_job_start_allow_worker_growth(monkeypatch):
    import joblib.externals.loky.process_executor as loky_executor

    monkeypatch.setattr(loky_executor, "_MAX_MEMORY_LEAK_SIZE", int(3e8))
    common._import_job_modules()
    assert loky_executor._MAX_MEMORY_LEAK_SIZE == common.WORKER_GROWTH_LIMIT_BYTES
    monkeypatch.setattr(loky_executor, "_MAX_MEMORY_LEAK_SIZE", int(3e8))
    common.run_job(OmegaConf.create({}), lambda cfg, parent: None)
    assert loky_executor._MAX_MEMORY_LEAK_SIZE == common.WORKER_GROWTH_LIMIT_BYTES
