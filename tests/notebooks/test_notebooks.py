"""The analyst notebooks: they are generated from ``notebooks/build_notebooks.py`` with outputs
cleared, and they run end to end on small data (nbclient, a kernel on this interpreter)
and report what they should — an IPS estimate inside its interval; a headline verdict and an
MLflow store with one comparison run and its FINISHED rung runs. They import the library
(``bandits``), never the apps."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sqlite3
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXPLORE = "01_explore_decision_log.ipynb"
COMPARE = "02_compare_from_python.ipynb"
KERNEL = "bandits-notebook-test"
CELL_TIMEOUT = 300  # seconds per cell (MLflow's first import and store creation are slow)
FLOAT = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", NOTEBOOKS / "build_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel connection files go to the test's directory, not the user's Jupyter runtime."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ".jupyter-runtime"))


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec running ipykernel on *this* interpreter (the venv), independent of any
    ``python3`` kernelspec installed on the machine."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "bandits (test)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return kernels


def parameter_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return cell


def execute(name: str, parameters: str, cwd: Path, kernel_dir: Path) -> nbformat.NotebookNode:
    """Run notebook ``name`` with its parameter cell replaced by ``parameters``, in ``cwd``.

    The kernel gets its own IPython directory (no user startup files or history) and the
    inline plotting backend whatever ``MPLBACKEND`` the machine sets."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    parameter_cell(nb).source = parameters
    km = KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["IPYTHONDIR"] = str(cwd / ".ipython")
    client = NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute(env=env)
    finally:
        nbformat.write(nb, cwd / name)  # the executed notebook, to read when a test fails
    return nb


def outputs(nb: nbformat.NotebookNode, cell_id: str | None = None) -> list[dict]:
    return [
        out
        for cell in nb.cells
        if cell_id in (None, cell.get("id"))
        for out in cell.get("outputs", [])
    ]


def text(nb: nbformat.NotebookNode, cell_id: str) -> str:
    """Everything cell ``cell_id`` printed (stdout / stderr) or displayed as text."""
    parts = []
    for out in outputs(nb, cell_id):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "text/plain" in out.get("data", {}) and "image/png" not in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def n_images(nb: nbformat.NotebookNode, cell_id: str | None = None) -> int:
    return sum("image/png" in out.get("data", {}) for out in outputs(nb, cell_id))


def test_notebooks_are_generated_with_outputs_cleared() -> None:
    build = _builder()
    for name, nb in build.build().items():
        path = NOTEBOOKS / name
        stored_json = json.loads(path.read_text(encoding="utf-8"))
        assert stored_json == json.loads(build.render(nb)), (
            f"{name} is stale: run notebooks/build_notebooks.py"
        )
        stored = nbformat.read(path, as_version=4)
        nbformat.validate(stored)
        for cell in stored.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        assert parameter_cell(stored).cell_type == "code"


def test_notebooks_use_the_library_only() -> None:
    """The notebooks drive ``bandits``: no code cell imports the apps (``experiments``) or
    Hydra."""
    banned = re.compile(r"^\s*(from|import)\s+(experiments|hydra|omegaconf)\b", re.M)
    for name, nb in _builder().build().items():
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not banned.search(cell.source), (name, cell.get("id"))


def test_explore_decision_log(tmp_path: Path, kernel_dir: Path) -> None:
    nb = execute(EXPLORE, "LOG_PATH = None\nROUNDS = 1500\nSEED = 3\n", tmp_path, kernel_dir)

    loaded = text(nb, "load")
    assert re.search(r"^1,500 decisions over 12 variants$", loaded, re.M), loaded
    assert "logger's action_probs: yes" in loaded

    report = text(nb, "ips")
    match = re.search(
        rf"IPS estimate of retargeting: {FLOAT} \(95% CI {FLOAT} to {FLOAT}, n=(\d+)\)", report
    )
    assert match, report
    value, low, high = (float(match.group(i)) for i in (1, 2, 3))
    assert all(math.isfinite(x) for x in (value, low, high))
    assert low <= value <= high and low < high
    assert int(match.group(4)) == 1500
    assert "true value of retargeting on these impressions" in report  # simulated log
    truth = float(re.search(rf"true value of retargeting on these impressions: {FLOAT}", report)[1])
    assert 0 < truth < 1

    propensity = text(nb, "propensity")
    assert "propensity: min 0.08333" in propensity  # uniform logger over 12 variants
    for cell in ("who", "reward-weather", "reward-context", "propensity", "cost", "ips"):
        assert n_images(nb, cell) == 1, cell


def test_compare_from_python(tmp_path: Path, kernel_dir: Path) -> None:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    parameters = (
        "SCENARIO = None\n"
        "ROUNDS = 1500\n"
        "REPLICATIONS = 3\n"
        "LADDER_DROP = ['vw', 'one_for_all']\n"
        "SEED = 1\n"
        "ALPHA = 0.05\n"
        "EVAL_ROUNDS = 500\n"
        "N_JOBS = 1\n"
        f"TRACKING_URI = 'sqlite:///{db.as_posix()}'\n"
    )
    nb = execute(COMPARE, parameters, tmp_path, kernel_dir)

    printed = text(nb, "headline")
    match = re.search(r"^Headline: (.+)$", printed, re.M)
    assert match, printed
    headline = match.group(1).strip()
    assert headline.endswith(".") and "linucb" in headline, headline
    assert "Scenario: default (baseline: retargeting)" in printed
    assert not (tmp_path / "mlruns").exists()  # the explicit store was used, not ./mlruns

    with sqlite3.connect(db) as con:  # the store itself, not what the notebook says about it
        runs = con.execute("select run_uuid, status from runs").fetchall()
        parents = dict(
            con.execute("select run_uuid, value from tags where key = 'mlflow.parentRunId'")
        )
        tags = con.execute("select run_uuid, key, value from tags").fetchall()
    status = dict(runs)
    top = [r for r in status if r not in parents]
    assert len(top) == 1, runs
    [parent] = top
    children = [r for r, p in parents.items() if p == parent]
    assert status[parent] == "FINISHED"
    rung_of = {r: v for r, k, v in tags if k == "rung"}
    replication_of = {r: v for r, k, v in tags if k == "replication"}
    assert sorted(rung_of[c] for c in children if c in rung_of) == [
        "linucb",
        "retargeting",
        "segments",
    ]
    assert sorted(replication_of[c] for c in children if c not in rung_of) == ["0", "1", "2"]
    assert all(status[c] == "FINISHED" for c in children)
    parent_tags = {k: v for r, k, v in tags if r == parent}
    assert parent_tags["headline"] == headline
    assert {"verdict.linucb", "verdict.segments"} <= set(parent_tags)

    lift = text(nb, "lift")
    for rung in ("segments", "linucb"):
        line = re.search(
            rf"^{rung} vs retargeting: (\w+), Δ {FLOAT} \({FLOAT}% CI {FLOAT} to {FLOAT}\)$",
            lift.replace("+", ""),
            re.M,
        )
        assert line, lift
        assert line[1] == parent_tags[f"verdict.{rung}"]
        diff, low, high = float(line[2]), float(line[4]), float(line[5])
        assert low <= diff <= high
    for cell in ("lift", "curves"):  # inline plots, also after the app switched to Agg
        assert n_images(nb, cell) == 1, cell
