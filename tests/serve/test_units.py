"""The service's parts in process: restriction to candidates, batched = single decisions,
holdout propensities under a restriction, the store's reward rules and exact round trip,
online learning's final-reward rule and its resume after a restart, and the app's one-line
configuration errors."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import numpy as np
import pytest

from bandits.deploy.decide import Holdout
from bandits.serve.app import open_service
from bandits.serve.learner import OnlineSettings
from bandits.serve.ranker import Ranker, restrict
from bandits.serve.store import DecisionStore, StoreConflict, StoreNotFound
from experiments.serve import ServerProcess


def test_restrict_renormalises_and_falls_back_to_uniform():
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.0, 0.0, 0.6, 0.4]])
    allowed = np.array([[True, True, False, False], [True, True, False, False]])
    out = restrict(p, allowed)
    np.testing.assert_allclose(out[0], [0.625, 0.375, 0.0, 0.0])
    np.testing.assert_allclose(out[1], [0.5, 0.5, 0.0, 0.0])  # no mass on C: uniform on C
    assert restrict(p, None) is p


def test_batched_decisions_equal_single_ones(traffic):
    ids = traffic.deployed.action_ids
    bodies = [{"context": c} for c in traffic.contexts[:6]]
    bodies[2]["candidates"] = [ids[0], ids[3]]
    one = Ranker(traffic.deployed, seed=np.random.SeedSequence(3), batch="b")
    many = Ranker(traffic.deployed, seed=np.random.SeedSequence(3), batch="b")
    singles = [one.rank(b) for b in bodies]
    batched = many.rank_parsed([many.parse(b) for b in bodies])
    for (r1, a1), (r2, a2) in zip(singles, batched, strict=True):
        assert a1 == a2
        assert r1["action_probs"] == r2["action_probs"]


@pytest.mark.parametrize("setup", ["live", "holdout_baseline", "holdout_none", "shadow"])
def test_request_records_equal_the_batch_paths_records(traffic, setup):
    """The request path (values → level codes → design matrix, records as dicts) gives
    exactly the records of the batch path (a context frame through FeatureSchema.transform
    and Decider.decide) for the same rows and streams: every column, bit for bit, in
    order — with candidates, user ids, a holdout of either arm, or a shadow policy."""
    import polars as pl

    from bandits.deploy.bundle import DeployedPolicy
    from bandits.deploy.privacy import hash_ids
    from bandits.policies import make_policy

    ids = list(traffic.deployed.action_ids)
    key = b"k" * 32
    kwargs: dict = {"id_key": key}
    if setup == "holdout_baseline":
        kwargs["holdout"] = Holdout(share=0.4, arm="baseline", baseline="retargeting")
    elif setup == "holdout_none":
        kwargs["holdout"] = Holdout(share=0.4, arm="none")
    elif setup == "shadow":
        baseline = make_policy("retargeting", {"epsilon": 0.1}).bind(traffic.deployed.spec, 0)
        kwargs["shadow"] = traffic.deployed
        acting = DeployedPolicy.from_policy(baseline)
    bodies = [{"context": c, "user_id": f"u{i}"} for i, c in enumerate(traffic.contexts[:40])]
    for i in range(0, 40, 3):
        bodies[i]["candidates"] = [ids[i % len(ids)], ids[(i + 2) % len(ids)]]
    deployed = acting if setup == "shadow" else traffic.deployed
    fast = Ranker(deployed, seed=np.random.SeedSequence(8), batch="q", **kwargs)
    batch = Ranker(deployed, seed=np.random.SeedSequence(8), batch="q", **kwargs)
    for block in (bodies[:1], bodies[1:17], bodies[17:]):
        records = [r for r, _ in fast.rank_parsed([fast.parse(b) for b in block])]
        parsed = [batch.parse(b) for b in block]
        allowed = batch._stacked(parsed)
        keep = [hash_ids(pl.Series([b["user_id"] for b in block]), key, "user_id")]
        expected = batch.decide_frame(batch._frame([p[0] for p in parsed]), allowed, keep)
        for got, want in zip(records, expected.iter_rows(named=True), strict=True):
            got = {k: v for k, v in got.items() if k not in ("__start", "decided_at")}
            want = {k: (list(v) if isinstance(v, tuple) else v) for k, v in want.items()}
            want.pop("decided_at")
            assert list(got) == list(want)
            assert got == want
    assert fast.record_schema() == batch.record_schema()


def test_holdout_under_candidates_logs_the_exact_mixture(traffic):
    ids = traffic.deployed.action_ids
    holdout = Holdout(share=0.3, arm="baseline", baseline="uniform")
    ranker = Ranker(traffic.deployed, seed=np.random.SeedSequence(4), batch="h", holdout=holdout)
    chosen = [ids[1], ids[2], ids[5]]
    record, answer = ranker.rank({"context": traffic.contexts[0], "candidates": chosen})
    mask = np.isin(np.array(ids), chosen)
    pi = traffic.deployed.probs(traffic.frame.head(1))[0]
    pi_c = np.where(mask, pi, 0) / pi[mask].sum()
    h_c = mask / mask.sum()
    mu = 0.3 * h_c + 0.7 * pi_c
    np.testing.assert_allclose(record["action_probs"], mu, atol=1e-15)
    assert answer["propensity"] == pytest.approx(mu[ids.index(answer["action"])], abs=1e-15)
    assert answer["group"] in ("treatment", "holdout")


def test_store_rewards_once_and_round_trips_records_exactly(traffic, tmp_path):
    service = open_service(traffic.deployed, tmp_path / "s.db", seed=1)
    service.open()
    record, answer = service.ranker.rank({"context": traffic.contexts[0]})
    service.store.submit_decisions([record]).result(timeout=30)
    now = dt.datetime(2026, 3, 1, 9)
    service.store.submit_reward(answer["event_id"], 2.5, now, now).result(timeout=30)
    with pytest.raises(StoreConflict):
        service.store.submit_reward(answer["event_id"], 1.0, now, now).result(timeout=30)
    with pytest.raises(StoreNotFound):
        service.store.submit_reward("nope-0", 1.0, now, now).result(timeout=30)
    frame = service.store.decisions()
    service.close()
    assert frame["action_probs"].to_list()[0] == record["action_probs"]  # bit for bit
    assert frame["decided_at"].to_list()[0] == record["decided_at"]


def test_online_learning_uses_final_rewards_and_resumes(traffic, tmp_path):
    settings = OnlineSettings(batch=4, interval=3600, window="1h", snapshots=str(tmp_path / "m"))
    service = open_service(
        traffic.deployed, tmp_path / "s.db", seed=2, learn="online", online=settings
    )
    service.open()
    learner = service.learner
    assert learner is not None
    events = []
    for i in range(6):
        record, answer = service.ranker.rank({"context": traffic.contexts[i]})
        service.store.submit_decisions([record]).result(timeout=30)
        events.append(answer["event_id"])
    now = record["decided_at"] + dt.timedelta(seconds=1)
    for e in events[:3]:  # three rewards: final; three without: still open for 1 h
        service.store.submit_reward(e, 1.0, now, now).result(timeout=30)
    assert learner.step(now) == 0  # 3 final < batch of 4
    later = now + dt.timedelta(hours=2)  # the windows closed: the other three get reward 0
    assert learner.step(later) == 6
    version = service.ranker.acting.model_version
    assert version != traffic.deployed.model_version
    assert service.store.counts().learned == 6
    service.close()
    again = open_service(
        traffic.deployed, tmp_path / "s.db", seed=2, learn="online", online=settings
    )
    assert again.ranker.acting.model_version == version  # resumed from the newest snapshot
    assert again.learner is not None and again.learner.step(later) == 0
    again.close()


def _cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ServerProcess.ROOT / "configs"), version_base="1.3"):
        return compose(config_name="serve", overrides=list(overrides))


def test_configuration_errors_name_the_setting(traffic, tmp_path):
    from bandits.errors import ConfigError
    from experiments.serve import baseline_policy, validate

    model, store = f"model={traffic.bundle}", f"store={tmp_path / 'c.db'}"
    cases = [
        ((model, store, "learn=sometimes"), "learn="),
        ((model, f"store={tmp_path}/missing/dir/s.db"), "does not exist"),
        ((model, store, "port=70000"), "port=70000"),
        ((model, store, "shadow=true", "holdout.share=0.1"), "holdout applies to live mode"),
        ((model, store, "online.batch=0", "learn=online"), "online.batch"),
    ]
    for overrides, words in cases:
        with pytest.raises(ConfigError, match=words):
            settings = validate(_cfg(*overrides))
            DecisionStore(settings["store"]).close()
    cfg = _cfg(model, store, "shadow=true", "baseline.name=linucb")
    with pytest.raises(ConfigError, match=re.escape("baseline.name='linucb' learns")):
        baseline_policy(validate(cfg), cfg, traffic.deployed)


def test_app_error_is_one_line_and_exit_2(traffic, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.serve",
            f"model={traffic.bundle}",
            f"store={tmp_path / 'c.db'}",
            "learn=sometimes",
            f"hydra.run.dir={tmp_path / 'h'}",
        ],
        cwd=ServerProcess.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: learn=") and "frozen" in lines[0]
    assert not (tmp_path / "c.db").exists()  # nothing created for a bad command
