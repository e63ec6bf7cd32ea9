"""``hydra/launcher=ray``: every job of a sweep is a Ray task, on this machine or a cluster.

Ours, on Ray's own API, rather than Hydra's ``hydra-ray-launcher`` plugin:

- the plugin pins ``cloudpickle < 3``, which would move everyone who installs the
  ``cluster`` extra to cloudpickle 2.2.1 and joblib 1.5.3 (joblib 1.6 needs cloudpickle 3)
  — a different joblib launcher than the default install tests; Ray itself vendors its own
  cloudpickle and needs neither pin;
- a job finds its sweep's MLflow parent run in ``<sweep dir>/mlflow_parent.json``, a file
  of the launching machine: here each task carries the parent's record and writes it into
  its own sweep directory on the node it runs on (the plugin ships no such thing);
- a sweep whose jobs would log to this machine's SQLite store from other machines is a
  one-line error before any run exists (:func:`before_sweep`), and a job whose worker
  process dies (out of memory, a node lost) is a FAILED child of the parent while the
  other jobs finish, as a job that raises is.

What a job does is unchanged: Hydra's ``run_job`` in the task (its output directory, its
config, the app's ``run_job`` with the project's error handling), so parent / child runs,
resume (the rerun adopts the same parent; FINISHED configurations are skipped) and the
failure semantics are the joblib launcher's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

#: The sweep's parent-run record (experiments.common.PARENT_FILE; not imported: this module
#: is imported by Hydra at every start-up and must stay cheap).
PARENT_FILE = "mlflow_parent.json"
# The settings are in configs/hydra/launcher/ray.yaml (no structured config: Hydra executes
# this module at every start-up outside sys.modules, where a dataclass cannot be built).


def before_sweep(config: DictConfig) -> None:
    """In the launching process, before the sweep's parent run is created: connect to Ray
    as ``hydra.launcher`` says, and refuse (one-line ConfigError) a tracking store the
    cluster's other nodes cannot reach (:func:`bandits.cluster.check_tracking_for_cluster`).
    """
    from bandits import cluster

    launcher = config.hydra.launcher
    cluster.connect(
        launcher.get("address"),
        num_cpus=launcher.get("num_cpus"),
        object_store_memory=launcher.get("object_store_memory"),
    )
    _check_fits(launcher)
    _warm_workers()
    remote = cluster.remote_nodes()
    if remote:
        uri = config.tracking.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///"
        if uri == "sqlite:///":  # the default: mlflow.db where the command was launched
            uri = f"sqlite:///{Path(config.hydra.runtime.cwd) / 'mlflow.db'}"
        cluster.check_tracking_for_cluster(str(uri), remote)


def _check_fits(launcher: DictConfig) -> None:
    """A job asking for more CPUs than any node of a fixed-size runtime has would wait
    forever (Ray keeps an infeasible task pending): one line instead. A cluster given by
    ``address`` may scale up, so it is not checked."""
    ray = sys.modules.get("ray")
    want = float((launcher.get("remote") or {}).get("num_cpus", 1) or 0)
    if launcher.get("address") is not None or ray is None or not ray.is_initialized():
        return
    have = max((float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]), default=0)
    if want > have:
        from bandits.errors import ConfigError

        raise ConfigError(
            f"hydra.launcher.remote.num_cpus={want:g}: a job would wait forever, the local "
            f"Ray runtime has {have:g} CPU(s) (hydra.launcher.num_cpus)"
        )


def _import_job_modules() -> int:
    """What every job imports (MLflow, matplotlib, the numba kernels: seconds), done in a Ray
    worker while the launching process creates the parent run; returns the worker's pid."""
    import bandits.policies
    import bandits.report
    import bandits.simulate
    import bandits.tracking  # noqa: F401
    import experiments.common  # noqa: F401

    return os.getpid()


def _warm_workers() -> None:
    """One import task per CPU of the cluster (not waited for): the workers that will run
    the jobs pay their imports while the parent run is being created, as the joblib
    launcher's warm workers do (Ray reuses a worker for the next task)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return
    cpus = int(ray.cluster_resources().get("CPU", 1))
    task = ray.remote(num_cpus=1, max_retries=0)(_import_job_modules)
    _warming.extend(task.remote() for _ in range(max(1, cpus)))


_warming: list[Any] = []  # the warm-up tasks' refs (kept so Ray does not cancel them)


def _run_on_worker(
    hydra_context: HydraContext,
    sweep_config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    parent: dict[str, Any] | None,
) -> JobReturn:
    """The Ray task of one job: the launching directory as working directory when this node
    has it (relative paths then mean what they meant to the command), the sweep's parent
    record in this node's sweep directory, then Hydra's ``run_job``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job

    launch_dir = str(sweep_config.hydra.runtime.cwd)
    if os.path.isdir(launch_dir):
        os.chdir(launch_dir)
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    if parent is not None:
        record = Path(str(sweep_config.hydra.sweep.dir)) / PARENT_FILE
        if not record.exists():  # another node than the launching one
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(parent))
    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


class BanditsRayLauncher(Launcher):
    """Runs the jobs of a sweep as Ray tasks (``remote``: their ``ray.remote`` options,
    e.g. ``num_cpus``, ``memory``), all submitted at once; Ray's CPUs bound how many run
    together. ``address`` None: a Ray runtime on this machine (127.0.0.1, ``num_cpus``
    CPUs); ``auto`` / ``host:port`` / ``ray://host:port``: an existing cluster."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        object_store_memory: int | None = None,
        remote: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self.remote = dict(remote or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from bandits import cluster

        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        ray = cluster.connect(
            self.address, num_cpus=self.num_cpus, object_store_memory=self.object_store_memory
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record_path = sweep_dir / PARENT_FILE
        parent = json.loads(record_path.read_text()) if record_path.exists() else None
        raw = OmegaConf.to_container(OmegaConf.create(self.remote), resolve=True)
        options = {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
        options.setdefault("max_retries", 0)  # a job is a run: never run it twice
        task = ray.remote(**options)(_run_on_worker)
        log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep output dir {sweep_dir}")
        submitted = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"ray_{idx}"
                sweep_config.hydra.job.num = idx
            ref = task.remote(
                self.hydra_context, sweep_config, self.task_function, Singleton.get_state(), parent
            )
            submitted.append((ref, list(overrides), sweep_config))
        return [self._result(ray, ref, o, c, parent) for ref, o, c in submitted]

    @staticmethod
    def _result(
        ray: Any,
        ref: Any,
        overrides: list[str],
        sweep_config: DictConfig,
        parent: dict[str, Any] | None,
    ) -> JobReturn:
        """The job's JobReturn; a task whose worker died (Ray's own errors, not the job's)
        is one line and a FAILED child of the sweep's parent, and the sweep goes on."""
        try:
            result: JobReturn = ray.get(ref)
            return result
        except (ray.exceptions.RayError, OSError) as exc:
            if isinstance(exc, ray.exceptions.RayTaskError):
                raise  # the job itself raised past the app's run_job: Hydra reports it
            name = ",".join(o for o in overrides if not o.startswith(("hydra", "tracking")))
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"error: job {name or 'default'} did not finish on Ray: {first}", file=sys.stderr)
            if parent is not None:
                from bandits import tracking

                tracking.configure(parent["tracking_uri"])
                tracking.record_failed_run(
                    parent["experiment"],
                    name or "default",
                    f"{type(exc).__name__}: {first}",
                    parent["run_id"],
                )
            ret = JobReturn(overrides=overrides, cfg=sweep_config, status=JobStatus.COMPLETED)
            ret.return_value = None
            return ret
