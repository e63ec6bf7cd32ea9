"""``bandits.tracking.results``: a comparison, its replications and an evaluation logged
from the library's typed results into a fresh MLflow store, and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

import bandits
from bandits.experiment import SimulatedSource
from bandits.simulate import AudienceSettings

SMALL = AudienceSettings(name="small", n_users=2000, impressions_per_day=500)


@pytest.fixture
def store(tmp_path: Path) -> str:
    from bandits import tracking

    return tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_a_comparison_is_a_parent_with_rung_and_replication_children(store, tmp_path):
    import mlflow

    from bandits import tracking
    from bandits.tracking import results

    ladder = {
        "retargeting": bandits.make_policy("retargeting"),
        "linucb": bandits.make_policy("linucb"),
    }
    source = SimulatedSource(SMALL, rounds=600, seed=2, replications=2, eval_rounds=0)
    with tracking.run("api", run_name="compare") as run_id:
        source = results.with_replication_runs(
            source, experiment="api", parent_run_id=run_id, key="k1"
        )
        result = bandits.compare_policies(source, ladder, baseline="retargeting", alpha=0.1)
        results.log_comparison(result, experiment="api", run_id=run_id)
    parent = mlflow.get_run(run_id)
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags["verdict.linucb"] == result.verdicts["linucb"]
    assert tags["estimand"] == result.estimand and tags["headline"] == result.headline
    (linucb,) = result.comparisons
    assert metrics["linucb.ci_level"] == pytest.approx(linucb.ci_level)
    assert metrics["linucb.diff"] == pytest.approx(linucb.diff)
    assert metrics["replications"] == 2
    children = tracking.finished_runs("api", {"mlflow.parentRunId": run_id})
    kinds = sorted(t["run_kind"] for _, t in children)
    assert kinds == [
        "compare_policy",
        "compare_policy",
        "compare_replication",
        "compare_replication",
    ]
    html = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="report.html", dst_path=str(tmp_path / "a")
        )
    ).read_text()
    assert result.estimand in html and "alpha = 0.1" in html
    assert "data:image/png;base64" in html and "<script" not in html

    # the finished replications are found again by their key (resume)
    again = results.reusable_replications("api", "k1", range(3))
    assert sorted(again) == [0, 1]
    assert again[0][1].rungs["linucb"].value == result.replications[0].rungs["linucb"].value


def test_an_evaluation_logs_its_estimates_and_evidence(store):
    import mlflow

    from bandits import tracking
    from bandits.tracking import results

    sim = bandits.run_simulation(bandits.make_policy("uniform"), SMALL, 1500, seed=4)
    evaluation = bandits.evaluate_log(
        sim.to_logged_data(), bandits.make_policy("retargeting"), estimators=["ips", "dr"]
    )
    with tracking.run("api-eval", run_name="evaluate") as run_id:
        metrics = results.log_evaluation(evaluation, plot=False)
    run = mlflow.get_run(run_id)
    assert run.data.metrics["ips.value"] == pytest.approx(metrics["ips.value"])
    assert run.data.tags["evidence"] == evaluation.evaluation.evidence[0]
    assert run.data.params["resolved_mode"] == "fixed"
    assert int(run.data.params["evaluated_rows"]) == evaluation.evaluated.n
