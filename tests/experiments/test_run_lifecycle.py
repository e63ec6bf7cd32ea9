"""Runs under kills and concurrent use, with real processes (bounded in time).

* ``kill -9`` leaves a run RUNNING; the next command against the same store marks it
  KILLED (its host, pid and process start time are tags) with a one-line notice.
* SIGINT and SIGTERM end the run KILLED themselves.
* The embedded store is created atomically: a first command killed at a random point
  leaves either no store or a complete one, and concurrent first commands all succeed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_cli import ROOT

SMALL = ["audience=small", "plot=false", "progress=false"]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.simulate",
            *args,
            f"hydra.run.dir={tmp_path}/out",
            f"hydra.sweep.dir={tmp_path}/multi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _statuses(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            return dict(c.execute("SELECT run_uuid, status FROM runs").fetchall())
    except sqlite3.Error:
        return {}


def _wait_running(proc: subprocess.Popen, db: Path, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [r for r, s in _statuses(db).items() if s == "RUNNING"]
        if running:
            return running[0]
        if proc.poll() is not None:
            raise AssertionError(f"the command ended before its run started: {proc.stderr.read()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("no RUNNING run appeared")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


#: a run of tens of seconds even on a quiet machine (VW plays ~40k rounds/s; LinUCB could
#: finish 400k rounds before the test's signal came)
LONG = ["policy=vw", "rounds=400000", *SMALL]


def test_kill_9_leaves_a_run_the_next_command_marks_killed(tmp_path):
    db = tmp_path / "mlflow.db"
    proc = _start(tmp_path, *LONG)
    run_id = _wait_running(proc, db)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert _statuses(db)[run_id] == "RUNNING"  # nobody could end it
    code, err = _finish(_start(tmp_path, "rounds=200", *SMALL))
    assert code == 0, err
    assert "note: marked 1 run KILLED whose process died without ending it" in err, err
    assert _statuses(db)[run_id] == "KILLED"
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    (killed,) = mlflow.search_runs(
        experiment_names=["simulate"],
        filter_string="attributes.status = 'KILLED'",
        output_format="list",
    )
    assert "died without ending it" in killed.data.tags["ended_by"]
    assert sorted(_statuses(db).values()) == ["FINISHED", "KILLED"]
    stale = list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"bandits-artifact-{proc.pid}-*"))
    assert not stale  # the dead process's temporary folders were removed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_end_the_run_killed(tmp_path, sig):
    db = tmp_path / "mlflow.db"
    proc = _start(tmp_path, *LONG)
    run_id = _wait_running(proc, db)
    time.sleep(1.5)
    proc.send_signal(sig)
    code, err = _finish(proc, timeout=120)
    assert code != 0
    assert _statuses(db)[run_id] == "KILLED", err


def _interrupted_first_commands(tmp_path: Path, trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        d = tmp_path / f"t{trial}"
        d.mkdir()
        proc = _start(d, "rounds=200", *SMALL)
        time.sleep(float(rng.uniform(0.5, 6.0)))  # imports, store creation, the run, …
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        code, err = _finish(_start(d, "rounds=200", *SMALL))
        assert code == 0, f"trial {trial}: {err}"
        assert "FINISHED" in _statuses(d / "mlflow.db").values()


def _concurrent_first_commands(tmp_path: Path, trials: int, width: int = 4) -> None:
    for trial in range(trials):
        d = tmp_path / f"c{trial}"
        d.mkdir()
        procs = [_start(d, "rounds=200", f"seed={i + 1}", *SMALL) for i in range(width)]
        results = [_finish(p) for p in procs]
        for code, err in results:
            assert code == 0, f"trial {trial}: {err}"
        assert sorted(_statuses(d / "mlflow.db").values()) == ["FINISHED"] * width


def test_five_concurrent_commands_on_an_existing_store_all_finish(tmp_path):
    """Concurrent writers on one SQLite store: each store call waits for the lock (MLflow's
    busy timeout) and is retried with back-off while SQLite still says "database is
    locked", so every command finishes and none prints a traceback or a lock error."""
    from bandits import tracking

    db = tmp_path / "mlflow.db"
    tracking.configure(f"sqlite:///{db}")
    tracking.ensure_experiment("simulate")
    procs = [_start(tmp_path, "rounds=2000", f"seed={i + 1}", *SMALL) for i in range(5)]
    results = [_finish(p) for p in procs]
    for code, err in results:
        assert code == 0, err
        assert "Traceback" not in err and "locked" not in err, err
    assert sorted(_statuses(db).values()) == ["FINISHED"] * 5


def test_an_interrupted_first_command_never_breaks_the_store(tmp_path):
    _interrupted_first_commands(tmp_path, trials=3, seed=20261201)


def test_concurrent_first_commands_share_one_complete_store(tmp_path):
    _concurrent_first_commands(tmp_path, trials=1)


@pytest.mark.slow
def test_store_creation_under_20_interruptions_and_20_concurrent_starts(tmp_path):
    _interrupted_first_commands(tmp_path, trials=20, seed=7)
    _concurrent_first_commands(tmp_path, trials=20)


def test_an_unusable_store_is_one_line(tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"not a database at all" * 100)
    code, err = _finish(_start(tmp_path, "rounds=200", *SMALL))
    assert code == 2 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "is not usable" in lines[0] and "mv mlflow.db" in lines[0], err


def test_a_killed_sweep_rerun_adopts_its_parent_and_runs_only_what_is_missing(tmp_path):
    db = tmp_path / "mlflow.db"
    sweep = ["-m", "seed=1,2,3,4", "rounds=60000", *SMALL]
    proc = _start(tmp_path, *sweep)
    deadline = time.monotonic() + 300
    while sum(s == "FINISHED" for s in _statuses(db).values()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended too early"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    code, err = _finish(_start(tmp_path, *sweep), timeout=600)
    assert code == 0, err
    assert err.count("already finished in MLflow") == 2, err
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=["simulate"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [p.info.run_name for p in parents]  # adopted, not a second one
    (parent,) = parents
    assert parent.info.status == "FINISHED" and parent.data.tags["attempts"] == "2"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    finished = [c for c in children if c.info.status == "FINISHED"]
    seeds = sorted(c.data.tags["seed"] for c in finished)
    assert seeds == ["1", "2", "3", "4"]  # every job linked once, none run twice
    assert len({c.data.tags["config_hash"] for c in finished}) == 4
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)
