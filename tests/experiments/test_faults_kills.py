"""Kills at several points of every app and of a sweep under both launchers (real processes).

Each case starts a command on a fresh store, waits for an observable point and sends a signal:

* ``early``  — the store is being set up (its temporary file ``.mlflow.db.init-<pid>`` or the
  store itself appeared) and no run exists yet;
* ``middle`` — a run is RUNNING (a sweep: one job FINISHED and the next RUNNING);
* ``late``   — a run has logged metrics or a second artifact, i.e. it is writing its results
  (a sweep: two of its three jobs FINISHED).

``SIGKILL`` to the command's process (``kill -9 <pid>``: nothing can run; joblib workers are
orphaned and must end their jobs KILLED) or ``SIGINT`` to its process group (Ctrl-C in a
terminal: the run ends itself KILLED, the command with one line).
Then the same command again (``resume: true``, the default). It must

* mark every run left RUNNING KILLED, with the one-line notice (``note: marked N runs
  KILLED …``);
* resume: exit 0, every configuration FINISHED exactly once — no duplicate, none missing
  (FINISHED runs counted per config digest; a sweep: one parent, FINISHED, with one FINISHED
  child per job; compare: one FINISHED replication child per replication);
* leave a store that passes SQLite's integrity check and that ``mlflow.search_runs`` reads,
  nothing RUNNING, and no temporary folder of a dead process.

The default run has two cases; the full matrix (5 commands x 3 points x 2 signals) is slow.
The UI's REST API is checked against a killed-and-resumed store in one slow test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from app_cli import ROOT, mlflow_server, sqlite_uri

SMALL = ["audience=small", "plot=false", "progress=false"]
SWEEP = ["-m", "seed=1,2,3", "rounds=30000", *SMALL]
#: (app, its experiment, arguments, configurations it runs)
COMMANDS: dict[str, tuple[str, list[str], int]] = {
    "simulate": ("simulate", ["rounds=60000", *SMALL], 1),
    "evaluate": ("evaluate", ["policy=retargeting"], 1),  # + logs=… (the fixture)
    "compare": (
        "compare",
        ["audience=small", "rounds=3000", "replications=3", "n_jobs=1", "progress=false"],
        1,
    ),
    "sweep_basic": ("simulate", SWEEP, 3),
    "sweep_joblib": ("simulate", [*SWEEP, "hydra/launcher=local_parallel"], 3),
}
POINTS = ("early", "middle", "late")
SIGNALS = {"kill9": signal.SIGKILL, "sigint": signal.SIGINT}
REPLICATIONS = 3  # compare's, as in COMMANDS
#: seconds any one command may take on a loaded 2-core machine
TIMEOUT = 900


@dataclass
class Store:
    """What the test sees of a store while a command runs."""

    initialising: bool
    exists: bool
    runs: dict[str, tuple[str, bool]]  # run id -> (status, is a child)
    metrics: int
    artifacts: int

    def count(self, status: str, child: bool | None = None) -> int:
        return sum(s == status and (child is None or c == child) for s, c in self.runs.values())


def _look(d: Path) -> Store:
    db = d / "mlflow.db"
    initialising = any(d.glob(".mlflow.db.init-*"))
    runs: dict[str, tuple[str, bool]] = {}
    metrics = 0
    if db.exists():
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
                rows = c.execute(
                    "SELECT r.run_uuid, r.status, EXISTS (SELECT 1 FROM tags t WHERE "
                    "t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId') FROM runs r"
                ).fetchall()
                runs = {r: (s, bool(child)) for r, s, child in rows}
                metrics = c.execute("SELECT COUNT(*) FROM latest_metrics").fetchone()[0]
        except sqlite3.Error:
            pass  # being created, or locked for a moment
    artifacts = sum(1 for p in (d / "mlartifacts").glob("*/artifacts/**/*") if p.is_file())
    return Store(initialising, db.exists(), runs, metrics, artifacts)


def _reached(point: str, sweep: bool, s: Store) -> bool:
    if point == "early":
        return (s.initialising or s.exists) and not s.runs
    if sweep:
        need = 1 if point == "middle" else 2
        return s.count("FINISHED", child=True) >= need and s.count("RUNNING", child=True) >= 1
    if point == "middle":
        return s.count("RUNNING") >= 1
    return s.count("RUNNING") >= 1 and (s.metrics > 0 or s.artifacts >= 2)


def _start(d: Path, app: str, args: list[str], tag: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{d / 'mlflow.db'}",
        "BANDITS_FAULT_CASE": str(d),  # finds the command's worker processes (below)
    }
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            f"experiments.{app}",
            *args,
            f"hydra.run.dir={d}/out",
            f"hydra.sweep.dir={d}/multi",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(d / f"{tag}.out", "w"),
        stderr=open(d / f"{tag}.err", "w"),
        start_new_session=True,  # its own process group, as a command in a terminal
    )


def _case_processes(d: Path) -> list[int]:
    """Processes started for case ``d`` (a command and its joblib workers), by environment."""
    found = []
    marker = f"BANDITS_FAULT_CASE={d}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_gone(d: Path, timeout: float) -> list[int]:
    """Wait until no process of case ``d`` is left (loky workers of a killed sweep exit once
    they see their parent is gone); returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = _case_processes(d)
        if not alive:
            return []
        time.sleep(0.5)
    return _case_processes(d)


def _interrupt(d: Path, app: str, args: list[str], point: str, sig: int, sweep: bool) -> Store:
    proc = _start(d, app, args, "first")
    deadline = time.monotonic() + TIMEOUT
    try:
        while not _reached(point, sweep, _look(d)):
            if proc.poll() is not None:
                pytest.fail(
                    f"the command ended (exit {proc.returncode}) before the {point} point: "
                    + (d / "first.err").read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the {point} point was not reached in {TIMEOUT} s")
            time.sleep(0.02)
        if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
            os.killpg(proc.pid, sig)
        else:  # kill -9 <pid>: the command's process only (its workers are orphaned)
            proc.send_signal(sig)
        proc.wait(timeout=TIMEOUT)
        stragglers = _wait_gone(d, 120)
        assert not stragglers, f"processes of the interrupted command still run: {stragglers}"
    finally:
        for pid in _case_processes(d):  # only this case's own processes
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return _look(d)


def _alive(pid: int) -> bool:
    from bandits.tracking import _pid_alive  # a zombie (an orphan nobody reaped) is dead

    return _pid_alive(pid)


def _integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def _finished_per_config(db: Path, experiment: str, configs: int) -> None:
    """Every configuration FINISHED exactly once; a sweep's under its one parent."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert runs, "mlflow.search_runs found no run"
    assert not [r for r in runs if r.info.status == "RUNNING"], "a run is left RUNNING"
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    parents = [r for r in top if r.data.tags.get("run_kind") == "sweep"]
    if configs > 1:
        assert len(parents) == 1, [p.info.run_name for p in parents]  # adopted, not a second
        (parent,) = parents
        assert parent.info.status == "FINISHED"
        jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    else:
        assert not parents
        jobs = top
    done = [j.data.tags.get("config_hash") for j in jobs if j.info.status == "FINISHED"]
    assert None not in done
    assert len(done) == len(set(done)) == configs, done  # none twice, none missing
    if experiment == "compare":
        (finished,) = [j for j in jobs if j.info.status == "FINISHED"]
        reps = [
            int(r.data.tags["replication"])
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == finished.info.run_id
            and r.data.tags.get("run_kind") == "compare_replication"
            and r.info.status == "FINISHED"
        ]
        assert sorted(reps) == list(range(REPLICATIONS)), reps  # each once, resumed or run


def _check_case(d: Path, app: str, experiment: str, args, configs, point, sig) -> None:
    sweep = configs > 1
    after = _interrupt(d, app, args, point, sig, sweep)
    db = d / "mlflow.db"
    if point == "early" or not after.exists:
        # interrupted while the store was set up: no store, or a complete one
        assert not after.exists or _integrity(db) == "ok"
        # a half-built store file is left only by a process that could not clean up (killed:
        # kill -9, or a joblib worker ended by its launcher); the rerun removes it (below)
        builders = [
            re.match(r"\.mlflow\.db\.init-(\d+)", f.name) for f in d.glob(".mlflow.db.init-*")
        ]
        assert all(b and not _alive(int(b.group(1))) for b in builders), builders
    left_running = [r for r, (s, _) in after.runs.items() if s == "RUNNING"]
    if sig == signal.SIGINT:
        first = (d / "first.err").read_text()
        assert "Traceback" not in first, first[-3000:]  # Ctrl-C is no bug
        assert first.rstrip().splitlines()[-1].startswith("error: interrupted"), first[-3000:]
        if not sweep:
            assert not left_running, "Ctrl-C must end the run KILLED itself"
            assert all(s in ("KILLED", "FINISHED") for s, _ in after.runs.values()), after.runs
    rerun = _start(d, app, args, "rerun")
    try:
        code = rerun.wait(timeout=TIMEOUT)
    finally:
        if rerun.poll() is None:
            rerun.kill()
    err = (d / "rerun.err").read_text()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    notices = [ln for ln in err.splitlines() if ln.startswith("note: marked")]
    if left_running:
        n = len(left_running)
        assert len(notices) == 1, err[-3000:]
        assert notices[0].startswith(f"note: marked {n} run{'s' if n > 1 else ''} KILLED"), err
    else:
        assert not notices, err[-3000:]
    final = _look(d)
    for run_id in left_running:  # reaped; a sweep's parent is adopted and ends FINISHED
        assert final.runs[run_id][0] in ("KILLED", "FINISHED"), final.runs[run_id]
    assert _integrity(db) == "ok"
    assert not list(d.glob(".mlflow.db.init-*"))  # a half-built store of the dead one: gone
    _finished_per_config(db, experiment, configs)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    assert not list(tmp.glob(f"bandits-artifact-{rerun.pid}-*"))  # the rerun cleaned up


@pytest.fixture(scope="module")
def eval_log(tmp_path_factory) -> Path:
    from bandits.data.io import write_log_dir
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online

    env = Environment(AudienceSettings(n_users=3000, impressions_per_day=5000), 3)
    res = run_online(env, make_policy("uniform"), 100_000, 1, eval_rounds=0)
    d = tmp_path_factory.mktemp("faults") / "decision_log"
    write_log_dir(
        d,
        res.log.drop("user_key"),
        env.catalog.to_frame(),
        metadata={"features": default_feature_schema().to_dict()},
    )
    return d


def _command(name: str, eval_log: Path) -> tuple[str, str, list[str], int]:
    experiment, args, configs = COMMANDS[name]
    app = "simulate" if name.startswith("sweep") else name
    if name == "evaluate":
        args = [f"logs={eval_log}", *args]
    return app, experiment, args, configs


FAST = [("evaluate", "middle", "kill9"), ("compare", "late", "sigint")]
MATRIX = [
    (name, point, sig)
    for name in COMMANDS
    for point in POINTS
    for sig in SIGNALS
    if (name, point, sig) not in FAST
]


@pytest.mark.parametrize(("name", "point", "sig"), FAST)
def test_a_killed_command_is_reaped_and_resumed(tmp_path, eval_log, name, point, sig):
    app, experiment, args, configs = _command(name, eval_log)
    _check_case(tmp_path, app, experiment, args, configs, point, SIGNALS[sig])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "point", "sig"), MATRIX)
def test_every_command_killed_at_every_point_is_reaped_and_resumed(
    tmp_path, eval_log, name, point, sig
):
    app, experiment, args, configs = _command(name, eval_log)
    _check_case(tmp_path, app, experiment, args, configs, point, SIGNALS[sig])


@pytest.mark.slow
def test_the_ui_api_reads_a_killed_and_resumed_store(tmp_path, eval_log):
    app, experiment, args, configs = _command("sweep_joblib", eval_log)
    _check_case(tmp_path, app, experiment, args, configs, "middle", signal.SIGKILL)
    with mlflow_server(tmp_path / "ui", store=sqlite_uri(tmp_path), timeout=300) as base:
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}"
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            exp_id = json.load(resp)["experiment"]["experiment_id"]
        body = json.dumps({"experiment_ids": [exp_id], "max_results": 1000}).encode()
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            api_runs = json.load(resp)["runs"]
    seen = _look(tmp_path).runs
    assert {r["info"]["run_id"]: r["info"]["status"] for r in api_runs} == {
        r: s for r, (s, _) in seen.items()
    }
    assert sorted({r["info"]["status"] for r in api_runs}) in (["FINISHED"], ["FINISHED", "KILLED"])
