"""Ray, the engine for work that outgrows one machine: connecting, tasks, where runs can go.

Ray is an optional dependency (the ``cluster`` extra); this module imports it lazily, and
every entry point says in one line how to install it when it is missing
(:func:`require_ray`). Three things run on Ray:

- sweeps (``-m hydra/launcher=ray``: ``hydra_plugins.bandits_ray_launcher``), one Ray task
  per job;
- a simulated comparison's replications (``compare engine=ray``): once :func:`use` (or
  :func:`connect`) ran in a process,
  :func:`bandits.simulate.replications.run_replications` submits the replications
  it would have given to joblib workers as Ray tasks instead (:func:`active`,
  :func:`map_unordered`);
- off-policy evaluation of a partitioned log (``evaluate engine=ray``:
  :mod:`bandits.experiment.distributed`), one task per partition.

**Local or a cluster.** ``connect(None)`` starts a private Ray runtime on this machine bound
to the loopback interface (127.0.0.1, no dashboard); ``connect("auto")``,
``connect("host:6379")`` or ``connect("ray://host:10001")`` joins an existing cluster.

**Tracking.** Jobs on remote nodes log to MLflow themselves, so the tracking store must be
reachable from every node: a tracking server (``http(s)://…``, ``databricks``), never this
machine's SQLite file (:func:`check_tracking_for_cluster`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from bandits.errors import ConfigError

#: The one line shown wherever Ray is needed but not installed.
INSTALL_HINT = "install the cluster extra: pip install -e '.[cluster]'"
#: Tracking URI schemes every node of a cluster can reach (a server, not a local file).
SERVER_SCHEMES = ("http", "https", "databricks")
#: Ray's switch for "this machine only": with it off, Ray binds its processes to 127.0.0.1
#: instead of the machine's routable address (the behaviour Ray has on macOS / Windows).
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

_state: dict[str, Any] = {"connected": False, "address": None, "settings": None}


def require_ray() -> ModuleType:
    """The ``ray`` module, or a one-line ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"Ray is not installed: {INSTALL_HINT}") from None
    return ray


def use(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> None:
    """Choose Ray as this process's engine without starting it yet: the first Ray work
    (:func:`map_unordered`) connects with these settings (see :func:`connect`), so a bad
    configuration found before that costs no Ray start-up. Ray not installed is a one-line
    ConfigError now."""
    require_ray()
    _check_num_cpus(num_cpus)
    _state["settings"] = {
        "address": address,
        "num_cpus": num_cpus,
        "object_store_memory": object_store_memory,
    }


def _check_num_cpus(num_cpus: Any) -> None:
    if num_cpus is not None and (
        isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1
    ):
        raise ConfigError(f"cluster.num_cpus must be a whole number >= 1, got {num_cpus!r}")


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> ModuleType:
    """Connect this process to Ray once (later calls reuse the connection) and return the
    ``ray`` module.

    ``address`` None starts a local runtime bound to 127.0.0.1 with ``num_cpus`` CPUs (None:
    all of them) and no dashboard; any other value (``auto``, ``host:port``,
    ``ray://host:port``) joins that cluster (``num_cpus`` must then be None: the cluster's
    nodes declare their own). A cluster that cannot be reached is a one-line ConfigError.
    """
    _check_num_cpus(num_cpus)
    if address is not None and not str(address).strip():
        address = None
    if address is None:
        os.environ.setdefault(_LOOPBACK_ENV, "0")  # inherited by Ray's own processes
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every job's result line, not "repeated 2x"
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no colour codes in logs and pipes
    ray = require_ray()
    if ray.is_initialized():
        _state["connected"] = True
        return ray
    from ray._private import ray_constants

    ray_constants.RAY_DEDUP_LOGS = os.environ["RAY_DEDUP_LOGS"] not in ("0", "false")
    if address is None:
        # read when Ray picks this node's address; set above for a first import of ray
        ray_constants.ENABLE_RAY_CLUSTER = os.environ.get(_LOOPBACK_ENV) not in ("0", "false")
    kwargs: dict[str, Any] = {
        # "local": always a new runtime of this process (address=None would join a cluster
        # `ray start` left on this machine, or $RAY_ADDRESS)
        "address": "local" if address is None else address,
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": True,
    }
    if address is None:
        kwargs["num_cpus"] = None if num_cpus is None else int(num_cpus)
        if object_store_memory is not None:
            kwargs["object_store_memory"] = int(object_store_memory)
    elif num_cpus is not None:
        raise ConfigError(
            f"cluster.num_cpus={num_cpus}: only for a local Ray runtime (address=null); the "
            f"nodes of the cluster at {address} declare their own CPUs"
        )
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {first}") from None
    _state.update(connected=True, address=address)
    return ray


def active() -> bool:
    """Whether this process chose Ray (:func:`use`) or connected to it (:func:`connect`):
    work that can go to Ray goes there."""
    if _state["settings"] is not None:
        return True
    if not _state["connected"]:
        return False
    import ray

    return bool(ray.is_initialized())


def _ensure_connected() -> ModuleType:
    """The connected ``ray`` module: :func:`connect` with the settings :func:`use` chose
    (a local runtime if none) unless this process is connected already."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    return connect(**(_state["settings"] or {}))


def shutdown() -> None:
    """Disconnect (and stop a local runtime this process started)."""
    if _state["connected"]:
        import ray

        ray.shutdown()
    _state.update(connected=False, address=None, settings=None)


def remote_nodes() -> list[str]:
    """Addresses of the live nodes of the connected cluster other than this machine's
    (sorted; empty for a runtime on this machine alone). A Ray Client connection
    (``ray://``) runs its driver on the cluster, so every node counts as remote."""
    ray = _ensure_connected()
    nodes = {str(n["NodeManagerAddress"]) for n in ray.nodes() if n.get("Alive")}
    if str(_state.get("address") or "").startswith("ray://"):
        return sorted(nodes)
    here = ray.util.get_node_ip_address()
    return sorted(nodes - {here})


def is_server_uri(uri: str) -> bool:
    """Whether MLflow tracking URI ``uri`` names a server other machines can reach."""
    scheme = urlparse(uri).scheme.split("+", 1)[0] or uri.split("://", 1)[0]
    return scheme in SERVER_SCHEMES  # ("databricks" alone: the workspace's own server)


def check_tracking_for_cluster(uri: str, remote: Sequence[str]) -> None:
    """One-line ConfigError when jobs on the ``remote`` nodes (see :func:`remote_nodes`)
    would log to ``uri`` but it is not a tracking server: a SQLite file or a local
    directory lives on this machine only."""
    if not remote or is_server_uri(uri):
        return
    shown = ", ".join(remote[:3]) + (", …" if len(remote) > 3 else "")
    raise ConfigError(
        f"tracking.uri={uri} is a store on this machine, which the Ray cluster's other nodes "
        f"({shown}) cannot write: start a tracking server (mlflow server --host 0.0.0.0 "
        "--port 5000 --backend-store-uri sqlite:///mlflow.db) and pass "
        "tracking.uri=http://<this host>:5000"
    )


def map_unordered(
    fn: Callable[..., Any],
    calls: Iterable[tuple[Sequence[Any], dict[str, Any]]],
    *,
    num_cpus: float = 1,
    shared: Sequence[Any] = (),
    timeout_s: float | None = None,
) -> Iterator[Any]:
    """``fn(*shared, *args, **kwargs)`` for every ``(args, kwargs)`` of ``calls`` as Ray
    tasks of ``num_cpus`` CPUs each, yielding the results in completion order.

    ``shared`` values are put in Ray's object store once and handed to every task (large
    objects — a fitted model, a ladder of policies — travel once per node, not once per
    task). An exception of a task is raised here (Ray's error for it is also an instance
    of the task's own exception class, so ``except ConfigError`` works); the tasks not yet
    finished are then cancelled. ``timeout_s``: at most this many seconds in all, then a
    TimeoutError. The tasks are submitted when this is called (the caller may work while
    they run), the results collected as the iterator is consumed.
    """
    ray = _ensure_connected()
    refs = [ray.put(v) for v in shared]
    task = ray.remote(num_cpus=num_cpus, max_retries=0)(fn)
    pending = [task.remote(*refs, *args, **kwargs) for args, kwargs in calls]
    deadline = None if timeout_s is None else time.monotonic() + float(timeout_s)
    return _completed(ray, pending, deadline, timeout_s)


def _completed(
    ray: ModuleType, pending: list[Any], deadline: float | None, timeout_s: float | None
) -> Iterator[Any]:
    try:
        while pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = ray.wait(pending, num_returns=1, timeout=wait)
            if not done:
                raise TimeoutError(f"Ray tasks still running after {timeout_s} s")
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
