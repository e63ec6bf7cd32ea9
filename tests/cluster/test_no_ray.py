"""Without Ray (no ``cluster`` extra): every way in is one line naming the extra; the
tracking-store rule for clusters. Runs in the default suite (Ray is never imported)."""

from __future__ import annotations

import sys

import pytest
from ray_cli import run_app

from bandits import cluster
from bandits.errors import ConfigError


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError


def test_require_ray_names_the_extra(no_ray):
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[cluster\]'"):
        cluster.require_ray()
    with pytest.raises(ConfigError, match="install the cluster extra"):
        cluster.use()
    assert not cluster.active()


@pytest.mark.parametrize(
    ("app", "args"),
    [
        ("evaluate", ["logs=nowhere", "engine=ray"]),
        ("compare", ["engine=ray", "replications=2"]),
        ("simulate", ["-m", "hydra/launcher=ray", "seed=1,2"]),
    ],
)
def test_apps_without_ray_are_one_line(tmp_path, app, args):
    blocker = tmp_path / "block"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n"
    )
    proc = run_app(app, tmp_path, *args, env={"PYTHONPATH": str(blocker)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "install the cluster extra: pip install -e '.[cluster]'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("uri", "remote", "ok"),
    [
        ("sqlite:////tmp/mlflow.db", [], True),  # local runtime: this machine's store is fine
        ("sqlite:////tmp/mlflow.db", ["10.0.0.7"], False),
        ("/tmp/mlruns", ["10.0.0.7"], False),
        ("file:///tmp/mlruns", ["10.0.0.7"], False),
        ("http://10.0.0.1:5000", ["10.0.0.7"], True),
        ("https://mlflow.example.com", ["10.0.0.7", "10.0.0.8"], True),
        ("databricks", ["10.0.0.7"], True),
    ],
)
def test_a_cluster_with_other_machines_needs_a_tracking_server(uri, remote, ok):
    if ok:
        cluster.check_tracking_for_cluster(uri, remote)
        return
    with pytest.raises(ConfigError) as err:
        cluster.check_tracking_for_cluster(uri, remote)
    text = str(err.value)
    assert "\n" not in text and "10.0.0.7" in text and "mlflow server" in text


def test_a_ray_sweep_with_remote_nodes_refuses_the_local_store(monkeypatch, tmp_path):
    """Before the sweep's parent run exists: a cluster with nodes on other machines and
    the default SQLite store (or a sqlite:// tracking.uri) is one line; a server is fine."""
    from omegaconf import OmegaConf

    from hydra_plugins.bandits_ray_launcher import ray_launcher

    monkeypatch.setattr(cluster, "connect", lambda *a, **k: None)
    monkeypatch.setattr(cluster, "remote_nodes", lambda: ["10.0.0.7"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def config(uri):
        return OmegaConf.create(
            {
                "tracking": {"uri": uri},
                "hydra": {"launcher": {"address": "auto"}, "runtime": {"cwd": str(tmp_path)}},
            }
        )

    with pytest.raises(ConfigError, match=rf"tracking.uri=sqlite:///{tmp_path}/mlflow.db is a"):
        ray_launcher.before_sweep(config(None))
    with pytest.raises(ConfigError, match="cannot write"):
        ray_launcher.before_sweep(config("sqlite:////shared/mlflow.db"))
    ray_launcher.before_sweep(config("http://10.0.0.1:5000"))
