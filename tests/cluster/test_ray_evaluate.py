"""Distributed off-policy evaluation on a real local Ray runtime (started and stopped by
the tests, 127.0.0.1, two CPUs): each parquet part's statistics on a worker, merged — the
streamed single-process estimates to 1e-12."""

from __future__ import annotations

import math

import pytest
from ray_cli import SKIP_REASON, partitioned_log, results, run_app, runs, sqlite_uri

ray = pytest.importorskip("ray", reason=SKIP_REASON)

from bandits import cluster  # noqa: E402
from bandits.data import iter_log_batches  # noqa: E402
from bandits.experiment import evaluate_log_stream  # noqa: E402
from bandits.experiment.distributed import evaluate_partitions, plan_partitions  # noqa: E402
from bandits.policies import make_policy  # noqa: E402

ESTIMATORS = ["ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros"]
TOL = 1e-12


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return partitioned_log(tmp_path_factory.mktemp("log"), [1300, 2100, 4000], rounds=5000)


@pytest.fixture(scope="module")
def runtime():
    """A local Ray runtime for this module: 2 CPUs on the loopback interface."""
    ray_module = cluster.connect(num_cpus=2)
    try:
        yield ray_module
    finally:
        cluster.shutdown()
    assert not ray.is_initialized()


def test_the_local_runtime_is_this_machine_on_loopback(runtime):
    nodes = [n for n in runtime.nodes() if n["Alive"]]
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert runtime.cluster_resources()["CPU"] == 2
    assert cluster.remote_nodes() == []


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


@pytest.mark.parametrize("policy", ["retargeting", "uniform"])
@pytest.mark.parametrize("batch_rows", [700, 100_000])
def test_distributed_evaluation_equals_the_streamed_path(runtime, parts, policy, batch_rows):
    """Four parts (one shorter than a batch, batches crossing no part boundary or many):
    every estimate, interval and diagnostic equals the streamed path's to 1e-12."""
    pol = make_policy(policy, {})
    streamed = evaluate_log_stream(
        iter_log_batches(str(parts), batch_rows=batch_rows), pol, estimators=ESTIMATORS
    )
    plan = plan_partitions(str(parts), batch_rows=batch_rows)
    assert len(plan.files) == 4
    distributed, per_part = evaluate_partitions(plan, pol, estimators=ESTIMATORS)
    assert len(per_part) == 4 and sum(p.n for p in per_part) == streamed.log_rows
    assert distributed.log_rows == streamed.log_rows
    want, got = streamed.evaluation, distributed.evaluation
    assert want is not None and got is not None
    assert _close(got.true_value, want.true_value) and want.true_value is not None
    for name, e in want.estimates.items():
        f = got.estimates[name]
        assert f.n == e.n
        for attr in ("value", "stderr", "ci_low", "ci_high"):
            assert _close(getattr(f, attr), getattr(e, attr)), (name, attr)
        for key, value in e.diagnostics.items():
            if isinstance(value, float | int):
                assert _close(float(f.diagnostics[key]), float(value)), (name, key)


def test_evaluate_app_engine_ray_equals_the_streamed_app(tmp_path, parts):
    common = [f"logs={parts}", "policy=retargeting", "stream.batch_rows=1000"]
    streamed = run_app("evaluate", tmp_path / "stream", *common, "stream.enabled=true")
    assert streamed.returncode == 0, streamed.stderr
    on_ray = run_app("evaluate", tmp_path / "ray", *common, "engine=ray", "cluster.num_cpus=2")
    assert on_ray.returncode == 0, on_ray.stderr
    assert "ray: 4 partition(s)" in on_ray.stderr
    (want,) = runs(sqlite_uri(tmp_path / "stream"), "evaluate")
    (got,) = runs(sqlite_uri(tmp_path / "ray"), "evaluate")
    assert got.data.tags["engine"] == "ray" and got.data.tags["mode"] == "fixed-stream"
    a, b = results(want), results(got)
    assert set(a) == set(b) and "dr.value" in a
    assert all(_close(a[k], b[k]) for k in a), {
        k: (a[k], b[k]) for k in a if not _close(a[k], b[k])
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policy=linucb", "mode=train"], "error: engine=ray evaluates a fixed policy"),
        (["policy=retargeting", "cluster.num_cpus=0"], "error: cluster.num_cpus must be"),
    ],
)
def test_bad_input_is_one_line(tmp_path, parts, args, message):
    proc = run_app("evaluate", tmp_path, f"logs={parts}", "engine=ray", *args, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
