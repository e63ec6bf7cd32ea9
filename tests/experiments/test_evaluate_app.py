"""The `evaluate` app end to end, through its command line, on a simulated log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from app_cli import mlflow_runs, run_app, uniform_log_dir

from bandits.data.io import write_log_dir
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online


def _cli(tmp_path: Path, *args: str):
    return run_app("evaluate", tmp_path, *args)


def _runs(tmp_path: Path):
    return mlflow_runs(tmp_path, "evaluate")


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return uniform_log_dir(
        tmp_path_factory.mktemp("logs"), n_users=3000, per_day=1000, env_seed=3, rounds=4000
    )


def test_evaluate_fixed_policy_logs_estimates_inputs_and_plot(tmp_path, log_dir):
    proc = _cli(tmp_path, f"logs={log_dir}", "policy=retargeting")
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    for est in ("ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros"):
        assert {f"{est}.value", f"{est}.ci_low", f"{est}.ci_high", f"{est}.ess"} <= set(m)
    truth = m["true_value"]
    for est in ("ips", "snips", "dr", "sndr"):
        assert m[f"{est}.ci_low"] <= truth <= m[f"{est}.ci_high"], est
    (inp,) = run.inputs.dataset_inputs
    assert "decision_log" in inp.dataset.source
    import mlflow

    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert "plots/forest.png" in arts
    assert run.data.params["resolved_mode"] == "fixed"


def test_evaluate_learning_policy_trains_on_split_then_replays(tmp_path, log_dir):
    proc = _cli(tmp_path, f"logs={log_dir}", "policy=linucb", "estimators=[ips,dr]")
    assert proc.returncode == 0, proc.stderr
    proc = _cli(tmp_path, f"logs={log_dir}", "policy=linucb", "mode=replay")
    assert proc.returncode == 0, proc.stderr
    assert "cannot support a verdict" in proc.stderr  # ~330 accepted events < 500
    runs = {r.data.params["resolved_mode"]: r for r in _runs(tmp_path)}
    assert set(runs) == {"train", "replay"}
    assert runs["train"].data.params["evaluated_rows"] == str(
        int(runs["train"].data.params["log_rows"]) // 2
    )
    assert runs["replay"].data.metrics["replay.supported"] == 0.0
    # the policy trained on the log is the run's MLflow model; replay trains nothing to keep
    assert "policy_model.uri" not in runs["replay"].data.tags
    from bandits.tracking.policy_model import load_policy_model

    deployed = load_policy_model(runs["train"].data.tags["policy_model.uri"])
    assert deployed.name == "linucb"
    assert deployed.model_version == runs["train"].data.tags["policy_model.version"]
    assert deployed.policy.n_updates_ == int(runs["train"].data.params["log_rows"]) // 2


def test_deterministic_log_is_tagged_insufficient_with_a_bound(tmp_path):
    """A rule engine's log (retargeting, ε = 0) cannot say what 'one message for all' would
    earn: the run is tagged evidence=insufficient with the reason, every estimator's interval
    is the support bound (it holds the truth), and the console says so in words."""
    env = Environment(AudienceSettings(n_users=3000, impressions_per_day=1000), 5)
    res = run_online(env, make_policy("retargeting", {"epsilon": 0.0}), 4000, 2, eval_rounds=0)
    d = tmp_path / "rule_engine_log"
    write_log_dir(
        d,
        res.log.drop("user_key", "action_probs"),  # a team's log: propensities only
        env.catalog.to_frame(),
        metadata={"features": default_feature_schema().to_dict()},
    )
    proc = _cli(tmp_path, f"logs={d}", "policy=fixed", "policy.variant=beauty_friendly_20off")
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path)
    tags, m = run.data.tags, run.data.metrics
    assert tags["evidence"] == "insufficient"
    assert "never chose" in tags["evidence.reason"]
    assert tags["support_source"] == "propensities"
    for est in ("ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros"):
        assert m[f"{est}.identified"] == 0.0
        assert m[f"{est}.ci_low"] <= m["true_value"] <= m[f"{est}.ci_high"], est
        assert m[f"{est}.ci_high"] - m[f"{est}.ci_low"] > 0.5  # honest, not a tight guess
    assert "evidence: insufficient" in proc.stderr and "extrapolation" in proc.stderr
    assert "read the intervals as bounds" in proc.stderr


def test_streamed_evaluation(tmp_path, log_dir):
    proc = _cli(
        tmp_path,
        f"logs={log_dir}",
        "policy=fixed",
        "stream.enabled=true",
        "stream.batch_rows=700",
        "estimators=[ips,snips]",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path)
    assert run.data.tags["mode"] == "fixed-stream"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs=/no/such/log.parquet"], "error: logs: no such file or directory"),
        ([], "error: logs is required"),
        (["mode=train", "policy=uniform"], "error: mode=train needs a learning policy"),
        (["estimators=[ips,magic]"], "error: unknown estimator 'magic'"),
        (["policy=nope"], "error: unknown policy 'nope'"),
    ],
)
def test_bad_input_is_one_line(tmp_path, log_dir, args, message):
    if not any(a.startswith("logs=") for a in args) and "logs is required" not in message:
        args = [f"logs={log_dir}", *args]
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), proc.stderr


def test_malformed_log_names_column_and_rows(tmp_path, log_dir):
    frame = pl.read_parquet(log_dir / "decision_log.parquet")
    bad = frame.with_columns(
        pl.Series(
            "propensity",
            np.where(np.arange(frame.height) % 500 == 3, 0.0, frame["propensity"].to_numpy()),
        )
    )
    path = tmp_path / "bad.parquet"
    bad.write_parquet(path)
    proc = _cli(tmp_path, f"logs={path}", f"catalog={log_dir / 'catalog.parquet'}")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "propensity" in errors[0] and "rows [3, 503" in errors[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_console_line_says_what_each_interval_rests_on():
    """Every estimator's line shows its support diagnostics; DM, Switch-DR and DRos are
    labelled model-dependent; an interval widened to the support bound says the value is an
    extrapolation."""
    from bandits.offline.evaluate import describe_estimate
    from bandits.ope import DM, DR, SwitchDR

    rng = np.random.default_rng(7)
    n, k = 2000, 4
    action = rng.integers(0, k, n)
    reward = (rng.random(n) < 0.3).astype(float)
    q = np.full((n, k), 0.3)
    supported = {
        "reward": reward,
        "action": action,
        "propensity": np.full(n, 1 / k),
        "target_probs": np.tile([1.0, 0, 0, 0], (n, 1)),
        "reward_hat": q,
    }
    dr = DR().estimate(**supported)
    line = describe_estimate(dr)
    assert f"ess {dr.diagnostics['ess']:,.0f}," in line and "max w 4.0" in line
    assert "mean w" in line and "unsupported 0.0%" in line
    assert "evidence sufficient" in line and "model-dependent" not in line
    assert "model-dependent" in describe_estimate(DM().estimate(**supported))
    assert "model-dependent" in describe_estimate(SwitchDR(lambda_=1.0).estimate(**supported))
    # a rule engine that always sends variant 0: a target on variant 1 is never shown
    deterministic = {
        **supported,
        "action": np.zeros(n, dtype=int),
        "propensity": np.ones(n),
        "target_probs": np.tile([0, 1.0, 0, 0], (n, 1)),
    }
    est = DR().estimate(**deterministic)
    line = describe_estimate(est)
    assert est.evidence == "insufficient" and not est.identified
    assert (est.ci_low, est.ci_high) == (0.0, 1.0)
    assert "extrapolation" in line and "unsupported 100.0%" in line


def test_a_log_with_other_column_names_via_the_columns_mapping(tmp_path, log_dir):
    """A team's log (item_id, click, propensity_score; a catalog keyed by item_id) evaluated
    through the `columns` mapping gives the same estimates as the log in our names; a
    mapping that names a missing column stops with one line before any run."""
    frame = pl.read_parquet(log_dir / "decision_log.parquet").drop("action_probs")
    frame.write_parquet(tmp_path / "ours.parquet")
    frame.rename(
        {"action": "item_id", "reward": "click", "propensity": "propensity_score"}
    ).write_parquet(tmp_path / "theirs.parquet")
    catalog = pl.read_parquet(log_dir / "catalog.parquet")
    catalog.write_parquet(tmp_path / "catalog.parquet")
    shuffled = catalog.sample(fraction=1.0, shuffle=True, seed=3)  # ids, not positions
    shuffled.rename({"variant_id": "item_id"}).write_parquet(tmp_path / "their_catalog.parquet")
    common = [
        "policy=fixed",
        "policy.variant=home_friendly_20off",
        "estimators=[ips,snips]",
        "reward_model.cross_fit_folds=0",
    ]
    ours = _cli(
        tmp_path,
        f"logs={tmp_path / 'ours.parquet'}",
        f"catalog={tmp_path / 'catalog.parquet'}",
        *common,
    )
    assert ours.returncode == 0, ours.stderr
    theirs = _cli(
        tmp_path,
        f"logs={tmp_path / 'theirs.parquet'}",
        f"catalog={tmp_path / 'their_catalog.parquet'}",
        "columns=example_ecommerce",
        *common,
    )
    assert theirs.returncode == 0, theirs.stderr
    a, b = sorted(_runs(tmp_path), key=lambda r: r.info.start_time)
    for key in ("ips.value", "ips.ci_low", "snips.value", "snips.ci_high"):
        assert a.data.metrics[key] == b.data.metrics[key], key
    bad = _cli(
        tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
        f"logs={tmp_path / 'theirs.parquet'}",
        f"catalog={tmp_path / 'their_catalog.parquet'}",
        "columns=example_ecommerce",
        "columns.reward=clicks",
        *common,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "column mapping reward=clicks" in errors[0], bad.stderr
    assert not (tmp_path / "x" / "mlflow.db").exists()


def test_a_declared_click_log_with_a_minus_one_stops_before_any_run(tmp_path, log_dir):
    """reward −1 in a log declared a click log (columns.reward_type=click) is one line naming
    the column and rows; the same log streamed through the mapping evaluates like the whole
    log (identical IPS estimate)."""
    frame = pl.read_parquet(log_dir / "decision_log.parquet").drop("action_probs")
    theirs = frame.rename(
        {"action": "item_id", "reward": "click", "propensity": "propensity_score"}
    )
    catalog = pl.read_parquet(log_dir / "catalog.parquet").rename({"variant_id": "item_id"})
    catalog.write_parquet(tmp_path / "their_catalog.parquet")
    broken = theirs.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([4, 9])).then(-1.0).otherwise("click").alias("click")
    )
    broken.write_parquet(tmp_path / "broken.parquet")
    common = [
        f"catalog={tmp_path / 'their_catalog.parquet'}",
        "columns=example_ecommerce",
        "policy=fixed",
        "policy.variant=home_friendly_20off",
        "estimators=[ips]",
    ]
    bad = _cli(tmp_path, f"logs={tmp_path / 'broken.parquet'}", *common)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, bad.stderr
    assert "column 'click' (read as reward)" in errors[0], errors[0]  # the file's name
    assert "reward_type=click" in errors[0], errors[0]
    assert "rows [4, 9]" in errors[0], errors[0]
    assert not (tmp_path / "mlflow.db").exists()
    theirs.write_parquet(tmp_path / "theirs.parquet", row_group_size=1000)
    for stream in ("false", "true"):
        run = _cli(
            tmp_path,
            f"logs={tmp_path / 'theirs.parquet'}",
            *common,
            f"stream.enabled={stream}",
            "stream.batch_rows=1500",
            "interval=analytic",
        )
        assert run.returncode == 0, run.stderr
    whole, streamed = sorted(_runs(tmp_path), key=lambda r: r.info.start_time)
    assert whole.data.metrics["ips.value"] == pytest.approx(
        streamed.data.metrics["ips.value"], rel=1e-12
    )
