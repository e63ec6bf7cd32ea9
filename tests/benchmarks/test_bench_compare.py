"""The compare benchmarks in their --quick form: the verdict's calibration tables and the
default job's wall time with the per-replication cost."""

from __future__ import annotations

import pytest

from experiments.benchmarks import verdict_calibration


def test_verdict_calibration_quick_writes_its_tables(tmp_path):
    out = tmp_path / "calibration.md"
    assert verdict_calibration.main(["--quick", "--jobs", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "python -m experiments.benchmarks.verdict_calibration --quick" in text
    assert "## A/A: the same learning policy twice" in text
    for policy in verdict_calibration.AA_POLICIES:
        assert f"| {policy} |" in text
    assert "| **all** |" in text and "## Tiny campaigns" in text
    assert verdict_calibration.main(["--parts", "nope"]) == 2


@pytest.mark.slow
def test_default_job_quick():
    from experiments.benchmarks.default_job import bench_default_job

    (row,) = bench_default_job(quick=True)
    assert row.seconds > 0 and row.events == 4
    assert row.extra["per_replication"] > 0 and row.extra["n_jobs"] == 2
