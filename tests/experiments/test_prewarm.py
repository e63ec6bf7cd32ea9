"""Sweeps with the joblib launcher: the parent run is created by one of the launcher's
workers while the others import what jobs need, and the launcher then finds those warm
workers (the launching process never imports MLflow)."""

from __future__ import annotations

import sys

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


def _has_job_modules() -> bool:
    return "bandits.tracking" in sys.modules and "bandits.report" in sys.modules


def test_other_launchers_are_left_alone():
    cfg = OmegaConf.create(
        {"hydra": {"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher."}}}
    )
    assert common.joblib_args(cfg) is None


def test_parent_run_made_in_a_worker_and_the_launcher_reuses_warm_workers(tmp_path):
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed

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
    warm = Parallel(**launcher_cfg)(delayed(_has_job_modules)() for _ in range(4))
    assert warm == [True] * 4
    # closing it in a worker too: no child finished, so FAILED
    assert common._in_workers(joblib_cfg, common._end_parent, record) == "FAILED"
    import mlflow

    mlflow.set_tracking_uri(parent["uri"])
    run = mlflow.MlflowClient().get_run(record["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["sweep_overrides"] == "seed=1,2"


def test_a_failure_in_the_worker_falls_back_to_none():
    joblib_cfg = common.joblib_args(OmegaConf.create({"hydra": {"launcher": JOBLIB}}))
    assert common._in_workers(joblib_cfg, common._end_parent, {"no": "keys"}) is None
