"""Sweeps with the joblib launcher start their workers (and the workers' imports) while the
launching process still prepares the sweep; the launcher then finds those warm workers."""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from experiments.common import prewarm_joblib_workers

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
    assert prewarm_joblib_workers(cfg) is None


def test_the_launcher_reuses_the_warm_workers():
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed

    thread = prewarm_joblib_workers(OmegaConf.create({"hydra": {"launcher": JOBLIB}}))
    assert thread is not None
    thread.join(timeout=600)
    assert not thread.is_alive()
    # what hydra_joblib_launcher does with the same config
    joblib_cfg = {k: v for k, v in JOBLIB.items() if k != "_target_"}
    process_joblib_cfg(joblib_cfg)
    warm = Parallel(**joblib_cfg)(delayed(_has_job_modules)() for _ in range(4))
    assert warm == [True] * 4  # the same processes: their imports are already done
