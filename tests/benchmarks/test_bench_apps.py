"""The app benchmarks (MLflow overhead, joblib sweep) and the runner, in their --quick form."""

from __future__ import annotations

import pytest

from experiments.benchmarks.__main__ import BENCHMARKS, main


@pytest.mark.slow
def test_bench_mlflow_quick():
    from experiments.benchmarks.apps import bench_mlflow

    row, without_log = bench_mlflow(quick=True)
    assert row.seconds > 0 and 0.0 <= row.extra["share"] < 1.0
    assert row.extra["startup"] > 0 and row.extra["simulation"] > 0
    assert 0.0 < row.extra["plot_share"] < 1.0
    low, high = row.extra["share_range"]
    assert low <= row.extra["share"] <= high
    assert without_log.seconds > 0 and 0.0 <= without_log.extra["share"] < 1.0


@pytest.mark.slow
def test_bench_sweep_quick():
    from experiments.benchmarks.apps import bench_sweep

    (row,) = bench_sweep(quick=True)
    assert row.seconds > 0 and row.extra["speedup"] > 0


def test_runner_lists_and_rejects_unknown(capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(BENCHMARKS)
    assert main(["--only", "nope"]) == 2


def test_runner_quick_writes_a_report(tmp_path):
    out = tmp_path / "report.md"
    assert main(["--quick", "--only", "linucb", "--out", str(out)]) == 0
    text = out.read_text()
    assert "python -m experiments.benchmarks --quick --only linucb" in text
    assert "| linucb simulation (play) |" in text and "Machine:" in text
