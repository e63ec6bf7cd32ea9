"""Errors of the machine rather than the code, each one line naming the path and the fix.

* In process, at the write boundary: a full disk (``ENOSPC`` — a real disk cannot be filled
  here, so the OSError is raised where MLflow writes an artifact), a full SQLite store, a
  store that stays locked (bounded retries, then one line) or is locked for a moment
  (retried, then fine), a bug (its traceback, then a line saying it is a bug), Ctrl-C.
* Real processes: a read-only artifact folder, a read-only ``mlflow.db`` and a read-only
  store folder (as root, whom permissions do not stop, the inode is made immutable with
  ``chattr +i``; else the write bits are removed).

Nothing half-written: a run that had started ends FAILED (never RUNNING), and an artifact that
could not be written is not listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_cli import run_app
from omegaconf import OmegaConf

mlflow = pytest.importorskip("mlflow")

from bandits import tracking  # noqa: E402
from experiments import common  # noqa: E402


@pytest.fixture
def store(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    tracking.configure(f"sqlite:///{db}")
    yield db
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _job(artifact: str = "config.yaml"):
    def job(cfg, parent_run_id):
        with tracking.run("machine", "job"):
            tracking.log_text("a: 1\n", artifact)
        return 0

    return job


def _only_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _runs() -> list:
    return mlflow.search_runs(experiment_names=["machine"], output_format="list")


def test_a_full_disk_while_an_artifact_is_written_is_one_line_and_the_run_failed(
    store, monkeypatch, capsys
):
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    target = store.parent / "mlartifacts" / "config.yaml"

    def no_space(self, local_file, artifact_path=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", no_space)
    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), _job())
    assert exit_.value.code == common.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = _only_error_line(err)
    assert f"No space left on device '{target}'" in line and "free space" in line, line
    (run,) = _runs()
    assert run.info.status == "FAILED"  # never left RUNNING
    assert not mlflow.MlflowClient().list_artifacts(run.info.run_id)  # nothing half-written


def test_a_full_store_is_one_line_naming_the_store(store, monkeypatch, capsys):
    store_obj = mlflow.MlflowClient()._tracking_client.store
    real = store_obj.log_batch
    calls = []

    def full(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the run's first write fails; ending it FAILED still works
            raise mlflow.exceptions.MlflowException(
                "(sqlite3.OperationalError) database or disk is full"
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(store_obj, "log_batch", full)

    def job(cfg, parent_run_id):
        with tracking.run("machine", "job"):
            tracking.log_params({"a": 1})
        return 0

    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), job)
    assert exit_.value.code == common.EXIT_USER_ERROR
    line = _only_error_line(capsys.readouterr().err)
    assert "no space left for the MLflow store" in line and str(store) in line, line
    (run,) = _runs()
    assert run.info.status == "FAILED"


def _locked() -> Exception:
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as inner:
            raise mlflow.exceptions.MlflowException("(sqlite3.OperationalError) wrapped") from inner
    except mlflow.exceptions.MlflowException as exc:
        return exc


def test_a_store_locked_for_a_moment_is_retried(store, monkeypatch):
    calls = []

    def sometimes_locked(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise _locked()
        return "written"

    wrapped = tracking._retrying(sometimes_locked, str(store))
    assert wrapped() == "written" and len(calls) == 3  # two back-offs, then the write


def test_a_store_that_stays_locked_is_one_line_after_a_bounded_wait(store, monkeypatch, capsys):
    monkeypatch.setattr(tracking, "STORE_BUSY_SECONDS", 0.5)
    store_obj = mlflow.MlflowClient()._tracking_client.store
    calls = []

    def always_locked(*args, **kwargs):
        calls.append(1)
        raise _locked()

    # the retrying wrapper around a store method that never gets the lock
    monkeypatch.setattr(store_obj, "create_run", tracking._retrying(always_locked, str(store)))
    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), _job())
    assert exit_.value.code == common.EXIT_USER_ERROR
    line = _only_error_line(capsys.readouterr().err)
    assert f"the MLflow store '{store}' stayed locked by other processes" in line, line
    assert "rerun" in line and "mlflow server" in line
    assert len(calls) > 2  # retried with back-off before giving up
    assert not _runs()


def test_a_bug_keeps_its_traceback_and_says_it_is_a_bug(store, capsys):
    def job(cfg, parent_run_id):
        raise ZeroDivisionError("a bug")

    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), job)
    assert exit_.value.code == common.EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert "a bug in bandits, not in your input or machine" in _only_error_line(err)


def test_ctrl_c_outside_a_run_is_one_line(store, capsys):
    def job(cfg, parent_run_id):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), job)
    assert exit_.value.code == common.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "Traceback" not in err and _only_error_line(err).startswith("error: interrupted")


def test_ctrl_c_inside_rust_code_is_an_interruption_not_a_bug(store, capsys):
    """Ctrl-C while polars' Rust code runs can surface as pyo3's PanicException (a
    BaseException, not an Exception) wrapping the KeyboardInterrupt — seen by the kill
    matrix; stood in for here by an exception of that name and message."""

    class PanicException(BaseException):
        pass

    def job(cfg, parent_run_id):
        raise PanicException("python err: KeyboardInterrupt")

    with pytest.raises(SystemExit) as exit_:
        common.run_job(OmegaConf.create({}), job)
    assert exit_.value.code == common.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert _only_error_line(err).startswith("error: interrupted")


def test_a_panic_that_is_no_interruption_is_not_swallowed(store):
    class PanicException(BaseException):
        pass

    def job(cfg, parent_run_id):
        raise PanicException("index out of bounds")

    with pytest.raises(PanicException):
        common.run_job(OmegaConf.create({}), job)


# ---------------------------------------------------------------- real processes


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable for this user: ``chattr +i`` as root (permissions do not
    stop root), else its write bits removed; always undone."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root without chattr: cannot make a path read-only")
        made = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            path.chmod(mode)


def _existing_store(d: Path) -> Path:
    """A complete store with the simulate experiment, as a first command leaves it."""
    db = d / "mlflow.db"
    tracking.configure(f"sqlite:///{db}")
    tracking.ensure_experiment("simulate")
    return db


def _statuses(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
        return [s for (s,) in c.execute("SELECT status FROM runs")]


SIMULATE = ["rounds=200", "audience=small", "plot=false", "progress=false"]


@pytest.mark.parametrize("where", ["artifact folder", "mlflow.db", "store folder"])
def test_a_read_only_path_is_one_line_naming_it(tmp_path, where):
    d = tmp_path / "store"
    d.mkdir()
    db = _existing_store(d)
    target = {"artifact folder": d / "mlartifacts", "mlflow.db": db, "store folder": d}[where]
    (d / "mlartifacts").mkdir()
    (d / "out").mkdir()  # Hydra's output folder (not the store's business)
    with read_only(target):
        run = run_app("simulate", d, *SIMULATE, timeout=600)
        statuses = _statuses(db)
        artifacts = [p for p in (d / "mlartifacts").rglob("*") if p.is_file()]
    assert run.returncode == common.EXIT_USER_ERROR, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    line = _only_error_line(run.stderr)
    assert str(target) in line or (where == "mlflow.db" and str(db) in line), line
    assert any(fix in line for fix in ("read-only", "not permitted", "permissions")), line
    assert "RUNNING" not in statuses  # a run that had started ended FAILED
    assert set(statuses) <= {"FAILED"}
    assert not artifacts  # no partial artifact presented
