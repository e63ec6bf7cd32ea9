"""The Ray launcher's own failure paths on a real local Ray runtime (127.0.0.1, 2 CPUs):
a job whose worker process dies is a FAILED child of the sweep's parent, and a job that
cannot fit the runtime is one line before any run exists."""

from __future__ import annotations

import os

import pytest
from ray_cli import RAY_SWEEP, SKIP_REASON, run_app, runs, sqlite_uri

ray = pytest.importorskip("ray", reason=SKIP_REASON)

from omegaconf import OmegaConf  # noqa: E402

from bandits import cluster  # noqa: E402
from hydra_plugins.bandits_ray_launcher.ray_launcher import BanditsRayLauncher  # noqa: E402


def test_a_job_whose_worker_dies_is_a_failed_child(tmp_path, capsys):
    from bandits import tracking

    def die() -> None:  # local: pickled by value (the workers cannot import the tests)
        os._exit(3)  # the worker process ends: no exception, no result (as an OOM kill)

    uri = tracking.configure(sqlite_uri(tmp_path))
    parent_id = tracking.start_parent("sweeps", run_name="sweep t")
    parent = {"run_id": parent_id, "tracking_uri": uri, "experiment": "sweeps"}
    ray_module = cluster.connect(num_cpus=2)
    try:
        ref = ray_module.remote(max_retries=0)(die).remote()
        ret = BanditsRayLauncher._result(
            ray_module, ref, ["seed=3", "hydra.x=1"], OmegaConf.create({}), parent
        )
    finally:
        cluster.shutdown()
    assert ret.return_value is None  # the sweep goes on to the other jobs
    assert "error: job seed=3 did not finish on Ray" in capsys.readouterr().err
    (child,) = [r for r in runs(uri, "sweeps") if r.info.run_id != parent_id]
    assert child.info.status == "FAILED"
    assert child.data.tags["mlflow.parentRunId"] == parent_id
    assert "seed=3" == child.info.run_name and "Error" in child.data.tags["error"]
    assert tracking.end_parent(parent_id) == "FAILED"


def test_a_job_larger_than_the_runtime_is_one_line(tmp_path):
    proc = run_app(
        "simulate",
        tmp_path,
        "-m",
        *RAY_SWEEP,
        "hydra.launcher.remote.num_cpus=3",
        "seed=1,2",
        "rounds=200",
        "audience=small",
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr
    assert "hydra.launcher.remote.num_cpus=3: a job would wait forever" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not runs(sqlite_uri(tmp_path), "simulate")
