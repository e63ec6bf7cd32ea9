"""Shared plumbing of the Hydra entry points: user-error handling, sweep parent runs.

A sweep (``-m``) is one MLflow parent run with one child per job. The parent is created by
:class:`MlflowSweepCallback` in the launching process, and its id and tracking URI are written
to ``<sweep dir>/mlflow_parent.json``; jobs — also in joblib worker processes, which do not
reliably inherit the environment — read them from there explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import get_original_cwd
from omegaconf import DictConfig, OmegaConf

from bandits.errors import ConfigError, UserError

PARENT_FILE = "mlflow_parent.json"
EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


def tracking_uri(cfg: DictConfig) -> str:
    """The tracking URI: ``tracking.uri``, else $MLFLOW_TRACKING_URI, else a local SQLite
    store in the directory the command was launched from."""
    from bandits import tracking

    return tracking.configure(cfg.tracking.get("uri"), _launch_dir())


def _launch_dir() -> str | None:
    try:
        return get_original_cwd()
    except ValueError:  # not inside a Hydra run (e.g. compose API)
        return None


def is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def sweep_parent() -> dict[str, str] | None:
    """The sweep's parent-run record, if this job is part of a sweep."""
    if not is_multirun():
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


#: Settings that never change an app's numbers (left out of :func:`config_digest`).
NON_RESULT_KEYS: tuple[str, ...] = (
    "tracking",
    "resume",
    "progress",
    "decision_logs",
    "n_jobs",
    "cluster",  # where Ray runs (engine=ray): never the numbers
)


def config_digest(cfg: DictConfig, data_fingerprint: str | None = None) -> str:
    """16 hex digits of SHA-256 over the resolved configuration minus
    :data:`NON_RESULT_KEYS`, and the data's fingerprint when the job reads files: the resume
    key of every app (same key, same numbers)."""
    import hashlib

    data = {k: v for k, v in resolved_config(cfg).items() if k not in NON_RESULT_KEYS}
    if data_fingerprint:
        data["data_fingerprint"] = data_fingerprint
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def already_finished(cfg: DictConfig, digest: str, parent_run_id: str | None = None) -> str | None:
    """With ``resume: true``, the id of a FINISHED run of this app's experiment with config
    hash ``digest`` (printing one line that it is skipped), else None. Inside a sweep the
    finished run is linked to the sweep's parent (:func:`bandits.tracking.link_finished`),
    so the parent lists every job. Configures the tracking URI, unless the local store does
    not exist yet (then nothing can have finished, and no store is created)."""
    if not cfg.get("resume", False):
        return None
    from bandits import tracking

    if parent_run_id is None:
        uri = cfg.tracking.get("uri") or tracking.default_tracking_uri(_launch_dir())
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
            return None  # no store yet: nothing finished (and none is created for asking)
        tracking_uri(cfg)

    runs = tracking.finished_runs(str(cfg.tracking.experiment), {"config_hash": digest}, 1)
    if not runs:
        return None
    if parent_run_id:
        tracking.link_finished(parent_run_id, runs[0][0])
    print(
        f"already finished in MLflow (config {digest}): run {runs[0][0]} — skipping "
        "(resume=false to run again)",
        file=sys.stderr,
    )
    return runs[0][0]


def config_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML (logged as ``config.yaml``)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def policy_from_cfg(cfg: DictConfig):
    """Build the configured policy (``cfg.policy``: ``name`` plus its settings)."""
    from bandits.errors import ConfigError
    from bandits.policies import make_policy

    settings: dict[str, Any] = resolved_config(cfg.policy)
    name = settings.pop("name", None)
    if not name:
        raise ConfigError("policy config needs a 'name'")
    if settings.get("interactions") is not None:
        settings["interactions"] = tuple(settings["interactions"])
    return make_policy(str(name), settings)


def job_name(cfg: DictConfig) -> str:
    """A readable run name from the job's overrides (e.g. ``policy=vw,seed=2``)."""
    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        overrides = []
    short = [o for o in overrides if not o.startswith(("hydra", "tracking"))]
    return ",".join(short) or "default"


#: Ranges of the apps' top-level settings (dotted keys; a key an app lacks is skipped):
#: ``(low, high, low_open, high_open)``, None for no bound. Types come from the defaults in
#: the app's primary config (``configs/<app>.yaml``), see :func:`check_config`.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "seed": (0, 2**63 - 1, False, False),
    "rounds": (1, None, False, False),
    "eval_rounds": (0, None, False, False),
    "level": (0.0, 1.0, True, True),
    "alpha": (0.0, 1.0, True, True),
    "power": (0.0, 1.0, True, True),
    "target_lift": (0.0, None, True, False),
    "train_fraction": (0.0, 1.0, True, True),
    "n_blocks": (2, None, False, False),
    "replications": (1, None, False, False),
    "metric_every": (1, None, False, False),
    "stream.batch_rows": (1, None, False, False),
    "replay.min_accepted": (1, None, False, False),
    "reward_model.alpha": (0.0, None, True, False),
    "reward_model.cross_fit_folds": (0, None, False, False),
    "offline.cross_fit_folds": (0, None, False, False),
}
#: Settings with a fixed set of values.
CHOICES: dict[str, tuple[str, ...]] = {
    "interval": ("bounded", "analytic", "bootstrap"),
    "mode": ("auto", "fixed", "train", "replay"),
    "source": ("simulate", "logs"),
    "engine": ("local", "ray"),
}
#: Config nodes checked by their own builders (policies, the audience, the ladder, …).
_OWN_CHECKS = ("policy", "audience", "ladder", "columns", "tracking", "hydra", "experiment")


def _primary_defaults(config_name: str) -> dict[str, Any]:
    path = CONFIG_DIR / f"{config_name}.yaml"
    if not path.is_file():
        return {}
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}


def primary_default(config_name: str, key: str) -> Any:
    """The value of top-level ``key`` in ``configs/<config_name>.yaml`` (None if absent)."""
    return _primary_defaults(config_name).get(key)


def _walk(defaults: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in (defaults or {}).items():
        if key == "defaults" or (not prefix and key in _OWN_CHECKS):
            continue
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _walk(value, f"{dotted}.")
        else:
            out.append((dotted, value))
    return out


def check_config(cfg: DictConfig, config_name: str) -> None:
    """Every scalar setting of the app's primary config (``configs/<config_name>.yaml``)
    has its default's type (:func:`bandits.settings.coerce_setting`: ``rounds=1.5``,
    ``seed=abc``, ``plot=maybe`` are errors), the range in :data:`RANGES` and one of the
    :data:`CHOICES` — else a one-line ConfigError naming the key, the value and what is
    allowed. Runs before any data is read or any MLflow run exists."""
    from bandits.settings import coerce_setting

    for key, default in _walk(_primary_defaults(config_name)):
        if default == "???" or not OmegaConf.is_config(cfg):
            continue
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(default, bool | int | float) and not isinstance(value, DictConfig):
            sample = 0.0 if isinstance(default, float) else default
            value = coerce_setting(value, sample, key)
        if key in RANGES and isinstance(value, int | float) and not isinstance(value, bool):
            low, high, low_open, high_open = RANGES[key]
            below = low is not None and (value <= low if low_open else value < low)
            above = high is not None and (value >= high if high_open else value > high)
            if below or above:
                raw = OmegaConf.select(cfg, key)
                if high is None or high >= 2**63 - 1:
                    span = f"{'>' if low_open else '≥'} {low}"
                else:
                    left, right = "(" if low_open else "[", ")" if high_open else "]"
                    span = f"in {left}{low:g}, {high:g}{right}"
                raise ConfigError(f"{key}={raw}: must be {span}")
        if key in CHOICES and str(value) not in CHOICES[key]:
            raise ConfigError(f"{key}={value!r}: must be one of {', '.join(CHOICES[key])}")
    folds = OmegaConf.select(cfg, "reward_model.cross_fit_folds", default=None)
    if folds == 1:
        raise ConfigError("reward_model.cross_fit_folds=1: use 0 (in-sample) or ≥ 2 folds")


def _config_name() -> str | None:
    try:
        return str(HydraConfig.get().job.config_name)
    except ValueError:  # not inside a Hydra run
        return None


def run_job(cfg: DictConfig, job: Callable[[DictConfig, str | None], Any]) -> Any:
    """Run ``job(cfg, parent_run_id)`` with the project's error conventions.

    A :class:`UserError` prints one ``error: …`` line to stderr — no traceback. In a single
    run the process then exits with status 2; inside a sweep the job is recorded as failed
    (its MLflow child run is FAILED) and the other jobs go on. An error of the machine
    (:func:`environment_error`: permissions, a read-only or full disk or store) is one line
    too. Ctrl-C / SIGTERM is one line and exit 130 (:func:`_interrupted`). Any other
    exception is a bug: its traceback, then a line saying so; a single run exits 1, a sweep
    goes on.
    """
    parent = sweep_parent()
    allow_worker_growth()  # a job in a fresh joblib worker (one the sweep start did not warm)
    stop_watching = _end_with_the_launcher(parent)
    if "bandits.tracking" in sys.modules:  # MLflow is imported lazily: it takes seconds
        setattr(sys.modules["bandits.tracking"], "last_run_id", None)  # noqa: B010
    try:
        if parent:
            from bandits import tracking

            tracking.configure(parent["tracking_uri"])
        name = _config_name()
        if name:
            check_config(cfg, name)
        if cfg.get("engine") == "ray":  # evaluate / compare: the job's work as Ray tasks
            from bandits import cluster

            where = cfg.get("cluster") or {}
            cluster.use(where.get("address"), num_cpus=where.get("num_cpus"))
        return job(cfg, parent["run_id"] if parent else None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not is_multirun():
            sys.exit(EXIT_USER_ERROR)
        _record_failure(cfg, parent, f"{type(exc).__name__}: {exc}")
        return None
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if getattr(sys.modules.get("bandits.tracking"), "_signalled", False):
            _interrupted()  # Ctrl-C inside compiled code surfaces as another error (numba)
        problem = environment_error(exc)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            if not is_multirun():
                sys.exit(EXIT_USER_ERROR)
            _record_failure(cfg, parent, f"{type(exc).__name__}: {exc}")
            return None
        traceback.print_exc()
        print(
            f"error: job {job_name(cfg)} failed with an unexpected {type(exc).__name__} — a "
            "bug in bandits, not in your input or machine: please report it with the "
            "traceback above",
            file=sys.stderr,
        )
        if not is_multirun():
            sys.exit(EXIT_BUG)
        _record_failure(cfg, parent, f"{type(exc).__name__}: {exc}")
        return None
    except BaseException as exc:  # SystemExit, GeneratorExit, … and Rust panics
        if _panic_from_interrupt(exc):
            _interrupted()
        raise
    finally:
        stop_watching()


def _panic_from_interrupt(exc: BaseException) -> bool:
    """Ctrl-C while polars (Rust) runs comes back as pyo3's ``PanicException`` — a
    ``BaseException`` wrapping the KeyboardInterrupt — not as a KeyboardInterrupt."""
    if type(exc).__name__ != "PanicException":
        return False
    signalled = getattr(sys.modules.get("bandits.tracking"), "_signalled", False)
    return bool(signalled) or "KeyboardInterrupt" in str(exc)


def _end_with_the_launcher(parent: dict[str, Any] | None) -> Callable[[], None]:
    """In a joblib worker, end the job — and then the worker — when the sweep's launching
    process dies (``kill -9`` of the command): a thread (one per worker) sees the worker
    re-parented (``os.getppid()`` changes), sends the worker SIGTERM so a job's run ends
    KILLED at once (the next command resumes it, instead of an orphan finishing it while a
    rerun starts it again), and ends the worker 30 s later at the latest (an idle loky
    worker would wait minutes for work). Returns the function marking the job done (a
    no-op outside joblib workers)."""
    launcher = int((parent or {}).get("launcher_pid") or 0)
    if not launcher or launcher == os.getpid() or os.getppid() != launcher:
        return lambda: None
    _watch_launcher(launcher)
    _job_running.set()
    return _job_running.clear


_job_running = threading.Event()  # set while this worker runs a job
_watched: list[int] = []


def _watch_launcher(launcher: int) -> None:
    """Start (once per process) the thread of :func:`_end_with_the_launcher`."""
    import signal
    import time

    if _watched:
        return
    _watched.append(launcher)

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(0.5)
        if _job_running.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # the run ends KILLED
        deadline = time.monotonic() + 30
        while _job_running.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def _interrupted() -> NoReturn:
    """Ctrl-C / SIGTERM: one line, exit 130. The run (if one started) already ended KILLED;
    a sweep stops too (its parent is marked KILLED by the next command; a rerun resumes)."""
    print(
        "error: interrupted — a run that had started is KILLED; rerun the same command to "
        "resume (what finished is skipped)",
        file=sys.stderr,
        flush=True,
    )
    if _watched:  # a joblib worker: end the process, or loky hands it the next job
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


#: What to do about an OS error on the store or artifact paths, by errno name.
_OS_FIXES = {
    "EACCES": "not permitted: fix the permissions, or set tracking.uri to a writable store",
    "EPERM": "not permitted: fix the permissions, or set tracking.uri to a writable store",
    "EROFS": "a read-only file system: set tracking.uri to a writable store",
    "ENOSPC": "no space left on the device: free space, or set tracking.uri elsewhere",
    "EDQUOT": "disk quota exceeded: free space, or set tracking.uri elsewhere",
}
#: The same for SQLite errors MLflow passes on (by a phrase of their message).
_SQLITE_FIXES = {
    "readonly database": "the MLflow store is read-only: fix its permissions or set tracking.uri",
    "database or disk is full": "no space left for the MLflow store: free space",
    "unable to open database": "the MLflow store or its folder cannot be written (SQLite "
    "writes a journal beside the store): fix their permissions, or set tracking.uri",
    "database is locked": "the MLflow store stayed locked by another process: retry",
}


def environment_error(exc: BaseException) -> str | None:
    """One line for an error of the machine rather than the code — permissions, a read-only
    or full disk, a locked or read-only store — naming the path and the fix; None for
    anything else (a bug, which keeps its traceback)."""
    import errno

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # the cause chain
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno is not None:
            fix = _OS_FIXES.get(errno.errorcode.get(exc.errno, ""))
            if fix:
                where = f" '{exc.filename}'" if exc.filename else ""
                return f"{exc.strerror}{where}: {fix}"
        text = str(exc).lower()
        for phrase, fix in _SQLITE_FIXES.items():
            if phrase in text:
                return f"{fix} ({phrase}{_store_named()})"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def _store_named() -> str:
    """``": '<path of the SQLite store in use>'"``, or "" (no store configured yet)."""
    tracking = sys.modules.get("bandits.tracking")
    path = tracking.store_path() if tracking is not None else None
    return f": '{path}'" if path else ""


def _record_failure(cfg: DictConfig, parent: dict[str, str] | None, error: str) -> None:
    """Make sure a failed sweep job is visible as a FAILED child of the parent run."""
    from bandits import tracking

    if parent is None:
        return
    if tracking.last_run_id is not None:  # the job's own run was already ended FAILED
        return
    try:
        tracking.record_failed_run(parent["experiment"], job_name(cfg), error, parent["run_id"])
    except Exception as exc:  # the store itself is the problem (busy, read-only, full)
        problem = environment_error(exc) or (str(exc) if isinstance(exc, UserError) else None)
        if problem is None:
            raise
        print(f"error: job {job_name(cfg)} could not be recorded: {problem}", file=sys.stderr)


class MlflowSweepCallback(Callback):
    """Creates the sweep's parent run before the jobs, closes it after them.

    The parent ends FINISHED only if every child finished; otherwise FAILED, and the process
    exits non-zero once Hydra returns (see :func:`exit_status`).

    With the joblib launcher, the parent run is created (and later closed) by one of the
    launcher's worker processes, while the others import what the jobs need: the launching
    process never imports MLflow (seconds of CPU the workers would otherwise compete with),
    and the other workers are warm when the jobs start. If that fails for any reason, this
    process does it.
    """

    failed: bool = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        overrides = " ".join(config.hydra.overrides.task)
        import hashlib

        key_text = json.dumps(
            [
                config.hydra.job.config_name,
                sorted(config.hydra.overrides.task),
                str(config.tracking.experiment),
            ]
        )
        parent = {
            "launcher_pid": os.getpid(),
            "uri": config.tracking.get("uri"),
            "base_dir": _launch_dir(),
            "experiment": str(config.tracking.experiment),
            "run_name": f"sweep {sweep_dir.name}",
            "tags": {"sweep_overrides": overrides[:5000], "sweep_dir": str(sweep_dir.resolve())},
            "sweep_key": hashlib.sha256(key_text.encode()).hexdigest()[:16]
            if config.get("resume", False)
            else None,
        }
        with _sweep_errors_in_one_line():
            if "bandits_ray_launcher" in str(config.hydra.launcher.get("_target_", "")):
                from hydra_plugins.bandits_ray_launcher import ray_launcher

                ray_launcher.before_sweep(config)  # Ray up; a store its nodes can reach
            record = None
            joblib_cfg = joblib_args(config)
            if joblib_cfg is not None:
                # after Ctrl-C ends the sweep at once (_interrupt_in_one_line), loky's resource
                # tracker removes the semaphores left behind — and would warn about each
                current = os.environ.get("PYTHONWARNINGS", "")
                if _QUIET_TRACKER not in current:
                    quiet = f"{current},{_QUIET_TRACKER}" if current else _QUIET_TRACKER
                    os.environ["PYTHONWARNINGS"] = quiet
                record = _in_workers(joblib_cfg, _start_parent, parent, warm_others=True)
            if record is None:
                record = _start_parent(parent)
        record["launcher_pid"] = str(os.getpid())  # the jobs' workers watch it (run_job)
        (sweep_dir / PARENT_FILE).write_text(json.dumps(record))
        _interrupt_in_one_line()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / PARENT_FILE
        if not path.exists():
            return
        record = json.loads(path.read_text())
        with _sweep_errors_in_one_line():
            status = None
            joblib_cfg = joblib_args(config)
            if joblib_cfg is not None:
                status = _in_workers(joblib_cfg, _end_parent, record)
            if status is None:
                status = _end_parent(record)
        MlflowSweepCallback.failed = status != "FINISHED"
        print(f"sweep parent run {record['run_id']}: {status}", file=sys.stderr)


_QUIET_TRACKER = "ignore::UserWarning:joblib.externals.loky.backend.resource_tracker"


def _interrupt_in_one_line() -> None:
    """In the sweep's launching process, Ctrl-C outside a job (between jobs, or while the
    joblib launcher waits for its workers) ends the sweep with one line (exit 130), not a
    traceback from the launcher. A job's run installs its own handler while it runs."""
    import signal
    import threading

    def stop(signum: int, frame: Any) -> None:
        _watched.append(os.getpid())  # end at once: the launcher would wait for its workers
        _interrupted()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, stop)


@contextlib.contextmanager
def _sweep_errors_in_one_line() -> Iterator[None]:
    """Around the sweep's parent run (created and closed outside any job): Ctrl-C, a user
    error (a bad tracking URI, an unusable store) and an error of the machine are one line
    and an exit, as in :func:`run_job`; a bug keeps its traceback."""
    try:
        yield
    except KeyboardInterrupt:
        _interrupted()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:
        problem = environment_error(exc)
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _start_parent(parent: dict[str, Any]) -> dict[str, str]:
    """Create the sweep's parent run; returns the record jobs read from ``PARENT_FILE``."""
    from bandits import tracking

    if parent.get("launcher_pid") and os.getpid() != parent["launcher_pid"]:
        _watch_launcher(int(parent["launcher_pid"]))  # in a worker: end with the launcher

    uri = tracking.configure(parent["uri"], parent["base_dir"])
    run_id = tracking.start_parent(
        parent["experiment"],
        run_name=parent["run_name"],
        tags=parent["tags"],
        sweep_key=parent.get("sweep_key"),
    )
    return {"run_id": run_id, "tracking_uri": uri, "experiment": parent["experiment"]}


def _end_parent(record: dict[str, str]) -> str:
    from bandits import tracking

    tracking.configure(record["tracking_uri"])
    return tracking.end_parent(record["run_id"])


#: How much a joblib (loky) worker's RSS may grow past its size after its first task before
#: loky replaces it with a fresh process. loky's own limit (300 MB, a guard against leaking
#: tasks) is below what one long simulate job leaves behind in the allocator and caches — its
#: arrays are freed, but the process keeps the pages — so workers were being restarted
#: between jobs, and each new process paid the ~8 s of imports again (measured: an 8 × 500k
#: sweep took 66 s with the restarts and 58 s without).
WORKER_GROWTH_LIMIT_BYTES = 8 * 2**30


def allow_worker_growth() -> None:
    """In a loky worker, raise loky's per-worker growth limit to
    :data:`WORKER_GROWTH_LIMIT_BYTES` (loky reads it after every task). Does nothing where
    loky is not loaded or has no such limit."""
    executor = sys.modules.get("joblib.externals.loky.process_executor")
    limit = getattr(executor, "_MAX_MEMORY_LEAK_SIZE", None)
    if isinstance(limit, int) and limit < WORKER_GROWTH_LIMIT_BYTES:
        executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_LIMIT_BYTES  # type: ignore[union-attr]


def _import_job_modules() -> int:
    """Import what every job needs (MLflow, matplotlib, numba kernels: ~10 s on a slow
    machine) in a joblib worker and let the worker grow (:func:`allow_worker_growth`);
    returns the worker's pid."""
    allow_worker_growth()
    _watch_launcher(os.getppid())  # a warm worker ends with the sweep's launching process
    import bandits.policies
    import bandits.report
    import bandits.simulate
    import bandits.tracking  # noqa: F401

    return os.getpid()


def joblib_args(config: DictConfig) -> dict[str, Any] | None:
    """The ``joblib.Parallel`` arguments Hydra's joblib launcher will use for this config
    (None for other launchers). A ``Parallel`` call with exactly these arguments finds the
    same reusable loky executor — the same worker processes — as the launcher's."""
    launcher = config.hydra.launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    try:
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    except ImportError:
        return None
    raw = OmegaConf.to_container(launcher, resolve=True)
    assert isinstance(raw, dict)
    joblib_cfg = {str(k): v for k, v in raw.items()}
    joblib_cfg.pop("_target_", None)
    joblib_cfg["backend"] = "loky"  # as the launcher does
    process_joblib_cfg(joblib_cfg)
    return joblib_cfg


def _in_workers(
    joblib_cfg: dict[str, Any], fn: Callable[[Any], Any], arg: Any, warm_others: bool = False
) -> Any:
    """``fn(arg)`` in one of the launcher's workers (the others import the job modules if
    ``warm_others``); None if that did not work, so the caller does it in this process.

    The worker running ``fn`` returns as soon as it is done (it imports the rest of the job
    modules in its first job): the jobs cannot start before ``fn`` (the parent run) is done,
    and then the warm workers start at once (measured on a 4-job sweep: the first job
    started ~1 s earlier than when that worker imported everything first)."""
    from joblib import Parallel, delayed

    tasks = [delayed(fn)(arg)]
    if warm_others:
        n_jobs = int(joblib_cfg.get("n_jobs") or 1)
        if n_jobs < 0:
            n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        tasks += [delayed(_import_job_modules)() for _ in range(n_jobs - 1)]
    try:
        return Parallel(**joblib_cfg)(tasks)[0]
    except Exception:  # e.g. workers that cannot start: the caller falls back
        return None


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def check_group_choices(argv: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """The apps' command-line check before Hydra (:mod:`experiments.cli_checks`): ``--help``
    shows only the groups the running app takes; a group it does not take, an option that
    does not exist (``policy=foo``) or a setting its config lacks (``foo=1``) is one line,
    exit 2 — Hydra's own messages for these span a dozen lines."""
    from experiments import cli_checks

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    app = str(getattr(spec, "name", "")).rpartition(".")[2]
    if not (config_dir / f"{app}.yaml").is_file():
        return
    cli_checks.check_command_line(app, argv, getattr(main, "__doc__", None))


def exit_status() -> int:
    """Non-zero when a sweep had a failed job (call after the Hydra main returns)."""
    return 1 if MlflowSweepCallback.failed else 0


#: ``columns.<key>`` naming a log column for one of our roles (``load_log(column_map=)``).
MAPPED_COLUMNS: tuple[str, ...] = ("action", "reward", "propensity", "action_probs", "timestamp")
#: ``columns.<key>`` holding a list of column names, and its ``load_log`` keyword.
LISTED_COLUMNS: dict[str, str] = {
    "context": "context_columns",
    "exclude": "exclude_columns",
    "categorical": "categorical",
    "numeric": "numeric",
}
#: ``columns.<key>`` holding ``{our name: your column}`` renames, and its keyword.
RENAMED_COLUMNS: dict[str, str] = {"rename": "rename", "catalog_rename": "catalog_rename"}
#: every other ``columns.<key>`` and its ``load_log`` keyword.
OTHER_COLUMN_KEYS: dict[str, str] = {
    "catalog_id": "catalog_id_column",
    "user": "user_column",
    "reward_type": "reward_type",
    "reward_range": "reward_range",
}


def log_options(cfg: Any) -> dict[str, Any]:
    """``load_log`` / ``iter_log_batches`` keywords from the ``columns`` config group: the
    column mapping, context include / exclude lists, categorical / numeric overrides, the
    user column, the reward's declared type and range and the catalog's id column (see
    ``configs/columns/none.yaml``). Unknown keys and malformed values are one-line
    ConfigErrors."""
    cols = cfg.get("columns") or {}
    known = [*MAPPED_COLUMNS, *LISTED_COLUMNS, *RENAMED_COLUMNS, *OTHER_COLUMN_KEYS]
    unknown = sorted(set(cols) - set(known))
    if unknown:
        raise ConfigError(f"columns: unknown key '{unknown[0]}' (known: {', '.join(known)})")
    options: dict[str, Any] = {
        "column_map": {k: str(cols[k]) for k in MAPPED_COLUMNS if cols.get(k) is not None}
    }
    for key, keyword in LISTED_COLUMNS.items():
        value = cols.get(key)
        if value is not None and (isinstance(value, str) or not hasattr(value, "__iter__")):
            raise ConfigError(f"columns.{key} must be a list of column names, got {value!r}")
        if key == "context":
            options[keyword] = None if value is None else [str(c) for c in value]
        else:
            options[keyword] = [] if value is None else [str(c) for c in value]
    for key, keyword in RENAMED_COLUMNS.items():
        value = cols.get(key) or {}
        if not hasattr(value, "items"):
            raise ConfigError(
                f"columns.{key} must map our names to your columns, e.g. "
                f"{{segment: crm_segment}}, got {value!r}"
            )
        options[keyword] = {str(k): str(v) for k, v in value.items() if v is not None}
    for key in ("catalog_id", "user", "reward_type"):
        value = cols.get(key)
        options[OTHER_COLUMN_KEYS[key]] = None if value is None else str(value)
    span = cols.get("reward_range")
    if span is not None:
        if isinstance(span, str) or not hasattr(span, "__len__") or len(span) != 2:
            raise ConfigError(f"columns.reward_range must be [min, max], got {span!r}")
        try:
            span = [float(v) for v in span]
        except (TypeError, ValueError):
            raise ConfigError(
                f"columns.reward_range must be two numbers [min, max], got {list(span)!r}"
            ) from None
    options["reward_range"] = span
    return options
