"""The ``serve`` app: real-time decisions over HTTP, every one recorded before it is answered.

python -m experiments.serve model=models:/pilot/3 store=pilot.db
python -m experiments.serve model=bundle/ store=pilot.db shadow=true baseline.name=retargeting
python -m experiments.serve store=pilot.db export=pilot_log

``POST /rank`` (context + optional candidate variants → event id, variant, exact propensity,
probabilities, model version), ``POST /reward`` (event id + reward), ``GET /health``
(:mod:`bandits.serve.app`). Listens on 127.0.0.1 unless ``host`` says otherwise. With
``shadow=true`` the baseline acts and the model records what it would have chosen; with
``learn=online`` the model learns in mini-batches from joined rewards and each update is a
new model version. ``export=<folder>`` writes the store's decisions (the ``decide``
layout) and reward events for ``python -m experiments.join``, then exits. No MLflow run is
created: the store is the record.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bandits.errors import ConfigError
from experiments import common
from experiments.decide import _absolute, _is_local, holdout_from_cfg, load_model

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _store(cfg: DictConfig) -> str:
    if OmegaConf.is_missing(cfg, "store"):
        raise ConfigError("store is required: store=<SQLite file> or store=<database URL>")
    text = str(cfg.store).strip()
    if not text:
        raise ConfigError("store is empty: give a SQLite file or a database URL")
    return text if "://" in text else _absolute(text, "store")


def _model_path(value: Any, setting: str) -> str:
    model = str(value).strip()
    if not model:
        raise ConfigError(f"{setting} is empty: give a model URI or folder")
    if _is_local(model):
        model = _absolute(model, setting)
        if not Path(model).is_dir():
            raise ConfigError(f"{setting}={value}: no such model folder")
    return model


def _int(value: Any, setting: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{setting}={value!r}: expected an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{setting}={value!r}: expected an integer") from None
    if number != value and not isinstance(value, str):
        raise ConfigError(f"{setting}={value!r}: expected an integer")
    if number < low or (high is not None and number > high):
        span = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        raise ConfigError(f"{setting}={value}: must be {span}")
    return number


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Every setting checked before a model is loaded or the store is opened."""
    from bandits.deploy.privacy import id_key
    from bandits.serve.learner import LEARN_MODES, OnlineSettings
    from bandits.serve.store import SYNC_MODES

    store = _store(cfg)
    if cfg.get("export") is not None:
        if "://" not in store and not Path(store).is_file():
            raise ConfigError(f"store={cfg.store}: no such store to export")
        return {"store": store, "export": _absolute(cfg.export, "export")}
    if OmegaConf.is_missing(cfg, "model"):
        raise ConfigError("model is required: model=<saved model folder or models:/ URI>")
    model = _model_path(cfg.model, "model")
    host = str(cfg.host).strip()
    if not host:
        raise ConfigError("host is empty: 127.0.0.1 serves this machine only")
    port = _int(cfg.port, "port", 0, 65535)
    if str(cfg.sync) not in SYNC_MODES:
        raise ConfigError(f"sync={cfg.sync!r}: must be one of {', '.join(SYNC_MODES)}")
    learn = str(cfg.learn)
    if learn not in LEARN_MODES:
        raise ConfigError(f"learn={cfg.learn!r}: must be one of {', '.join(LEARN_MODES)}")
    shadow = bool(cfg.shadow)
    holdout = holdout_from_cfg(cfg)
    if shadow and holdout is not None:
        raise ConfigError(
            "holdout applies to live mode: with shadow=true the baseline acts for everyone "
            "(set holdout.share=null)"
        )
    base = cfg.baseline
    baseline_model = None
    if shadow and base.get("model") is not None:
        baseline_model = _model_path(base.model, "baseline.model")
    settings = base.get("settings") or {}
    if not hasattr(settings, "items"):
        raise ConfigError(f"baseline.settings must be a mapping, got {settings!r}")
    online_cfg = cfg.online
    online = OnlineSettings(
        batch=_int(online_cfg.batch, "online.batch", 1),
        interval=float(online_cfg.interval),
        window=str(online_cfg.window),
        snapshots=_absolute(online_cfg.snapshots, "online.snapshots")
        if online_cfg.get("snapshots") is not None
        else "",
    )
    if learn == "online":  # (an empty snapshots folder means <store>.models)
        OnlineSettings(online.batch, online.interval, online.window, "<store>.models").check()
    key_env = str(cfg.ids.key_env)
    key = id_key(key_env) if os.environ.get(key_env) else None
    port_file = cfg.get("port_file")
    return {
        "store": store,
        "export": None,
        "model": model,
        "host": host,
        "port": port,
        "port_file": _absolute(port_file, "port_file") if port_file is not None else None,
        "sync": str(cfg.sync),
        "learn": learn,
        "shadow": shadow,
        "holdout": holdout,
        "baseline_model": baseline_model,
        "baseline_name": str(base.get("name") or ""),
        "baseline_settings": dict(OmegaConf.to_container(settings, resolve=True))  # type: ignore[arg-type]
        if OmegaConf.is_config(settings)
        else dict(settings),
        "online": online,
        "id_key": key,
        "max_body_bytes": _int(cfg.max_body_bytes, "max_body_bytes", 256),
    }


def load_policy(cfg: DictConfig, model: str):
    """A saved policy bundle folder or an MLflow policy model (a folder, ``runs:/…``,
    ``models:/…``): :func:`experiments.decide.load_model`."""
    return load_model(cfg, model)


def baseline_policy(settings: dict[str, Any], cfg: DictConfig, model):
    """The acting policy of shadow mode: a saved model, or a fixed registered policy bound to
    the candidate's catalog and features."""
    from bandits.deploy.bundle import DeployedPolicy
    from bandits.policies import POLICIES, make_policy

    if settings["baseline_model"] is not None:
        return load_policy(cfg, settings["baseline_model"])
    name = settings["baseline_name"]
    if not name:
        raise ConfigError("shadow=true needs baseline.model or baseline.name")
    if name in POLICIES and POLICIES[name].learns:
        raise ConfigError(
            f"baseline.name='{name}' learns: an untrained policy cannot act for the pilot; "
            "give a trained one as baseline.model, or a fixed policy (retargeting, fixed, …)"
        )
    policy = make_policy(name, settings["baseline_settings"])
    import numpy as np

    policy.bind(model.spec, np.random.SeedSequence([int(cfg.seed), 1]))
    return DeployedPolicy.from_policy(policy, extra_columns=model.input_columns)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).

    Created with ``proto=IPPROTO_TCP`` and ``TCP_NODELAY``: asyncio turns Nagle's algorithm
    off only on sockets whose protocol is TCP by number, and with it on, a keep-alive client
    waits for the delayed ACK (~40 ms) on every response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"host={host} port={port}: cannot listen there ({exc.strerror})"
        ) from None
    sock.listen(2048)
    return sock


def _write_port(path: str, port: int) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def serve_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, Any]:
    settings = validate(cfg)
    if settings["export"] is not None:
        from bandits.serve.store import DecisionStore

        store = DecisionStore(settings["store"])
        try:
            counts = store.export(settings["export"])
        finally:
            store.close()
        print(
            f"exported {counts['decisions']:,} decisions and {counts['rewards']:,} rewards → "
            f"{settings['export']} (join them: python -m experiments.join "
            f"decisions={Path(settings['export']) / 'decisions'} "
            f"rewards={counts['rewards_file']} output=…)",
            file=sys.stderr,
        )
        return counts

    import uvicorn

    from bandits.serve.app import create_app, describe, open_service

    model = load_policy(cfg, settings["model"])
    baseline = baseline_policy(settings, cfg, model) if settings["shadow"] else None
    service = open_service(
        model,
        settings["store"],
        seed=int(cfg.seed),
        mode="shadow" if settings["shadow"] else "live",
        baseline=baseline,
        holdout=settings["holdout"],
        learn=settings["learn"],
        online=settings["online"],
        sync=settings["sync"],
        id_key=settings["id_key"],
        max_body_bytes=settings["max_body_bytes"],
    )
    try:
        sock = listen(settings["host"], settings["port"])
    except BaseException:
        service.close()
        raise
    port = int(sock.getsockname()[1])
    if settings["port_file"]:
        _write_port(settings["port_file"], port)
    print(describe(service, settings["host"], port), file=sys.stderr, flush=True)
    if settings["host"] not in LOOPBACK:
        print(
            f"warning: host={settings['host']} is reachable from the network and the service "
            "has no authentication: put it behind an authenticating proxy",
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(
        create_app(service), log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])
    return {"port": port, "start": service.start}


class ServerProcess:
    """The ``serve`` app as a child process (for tests, benchmarks and notebooks): started
    with ``port=0`` and a port file, ready once ``GET /health`` answers.

    ``overrides``: the app's settings (``model=…``, ``store=…``, …); ``workdir``: where its
    port file, stdout / stderr and Hydra outputs go. Use as a context manager (always
    stopped) or call :meth:`start` / :meth:`stop`; :meth:`kill` is ``kill -9``.
    """

    ROOT = Path(__file__).resolve().parents[1]

    def __init__(
        self,
        overrides: list[str],
        workdir: str | os.PathLike[str],
        *,
        startup_timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.overrides = list(overrides)
        self.workdir = Path(workdir)
        self.startup_timeout = float(startup_timeout)
        self.env = env
        self.proc: Any = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        import subprocess
        import time
        import urllib.request

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        port_file = self.workdir / f"port-{self.starts}.txt"
        port_file.unlink(missing_ok=True)
        self.stderr_path = self.workdir / f"server-{self.starts}.err"
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join([str(self.ROOT), env.get("PYTHONPATH", "")])
        env.pop("HYDRA_FULL_ERROR", None)
        cmd = [
            sys.executable,
            "-m",
            "experiments.serve",
            *self.overrides,
            "port=0",
            f"port_file={port_file}",
            f"hydra.run.dir={self.workdir / 'hydra'}",
        ]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=self.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode}: {self.stderr()[-2000:]}"
                )
            if port_file.is_file() and port_file.read_text().strip():
                self.port = int(port_file.read_text())
                try:
                    with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the server did not answer within {self.startup_timeout:.0f} s")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (uvicorn finishes the requests in flight, the store is closed, and the
        process ends by the signal: exit status ``-15``), SIGKILL after ``timeout``. Returns
        the exit status (None: it had to be killed)."""
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return int(self.proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """``kill -9`` the server (by its pid) and reap it."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@hydra.main(version_base="1.3", config_path="../configs", config_name="serve")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, serve_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
