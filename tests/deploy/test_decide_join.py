"""Decisions and the reward join: propensities under the holdout mixture, batch-size
invariance, privacy, the join's counts and options, and the apps' one-line errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from bandits.deploy import DeployedPolicy, Holdout, decide
from bandits.deploy.join import join_rewards
from bandits.deploy.privacy import hash_ids, id_key
from bandits.errors import ConfigError, DataError
from bandits.policies import make_policy
from tests.deploy.pilot import run_app

T0 = dt.datetime(2026, 3, 2, 9)


@pytest.fixture
def deployed(small_spec, small_day):
    policy = make_policy("linucb", {"epsilon": 0.3}).reset(small_spec, 1)
    policy.play(small_spec.contexts(small_day.frame), small_day.potential_reward)
    return DeployedPolicy.from_policy(policy)


def test_holdout_propensity_is_the_mixture(deployed, small_day):
    share = 0.25
    out = decide(deployed, small_day.frame, seed=3, holdout=Holdout(share), decided_at=T0)
    pi = np.stack(out["policy_probs"].to_numpy())
    h = np.stack(out["holdout_probs"].to_numpy())
    mu = np.stack(out["action_probs"].to_numpy())
    np.testing.assert_allclose(mu, share * h + (1 - share) * pi, atol=1e-15)
    index = {v: i for i, v in enumerate(deployed.action_ids)}
    a = out["action"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
    np.testing.assert_array_equal(out["propensity"].to_numpy(), mu[np.arange(len(a)), a])
    in_holdout = (out["group"] == "holdout").to_numpy()
    assert np.all(h[in_holdout, a[in_holdout]] > 0)  # holdout rows show the baseline's choice
    retarget = make_policy("retargeting", {}).reset(deployed.spec, 0)
    np.testing.assert_array_equal(h, retarget.action_probs(deployed.contexts(small_day.frame)))


def test_decisions_do_not_depend_on_batch_size(deployed, small_day):
    a = decide(deployed, small_day.frame, seed=9, holdout=Holdout(0.3), decided_at=T0)
    b = decide(deployed, small_day.frame, seed=9, holdout=Holdout(0.3), decided_at=T0, batch_rows=7)
    c = decide(deployed, small_day.frame, seed=10, holdout=Holdout(0.3), decided_at=T0)
    assert a.equals(b)
    assert not a["action"].equals(c["action"])


def test_no_message_arm_extends_the_catalog(deployed, small_day):
    from bandits.data import load_log
    from bandits.deploy.decide import Decider

    holdout = Holdout(0.4, arm="none")
    decider = Decider(deployed, seed=1, holdout=holdout, decided_at=T0)
    out = decider.decide(small_day.frame)
    assert decider.catalog["variant_id"].to_list()[-1] == "no_message"
    held = out.filter(pl.col("group") == "holdout")
    assert held["action"].unique().to_list() == ["no_message"]
    assert np.allclose(held["propensity"].to_numpy(), 0.4)  # π never says "no message"
    data = load_log(out.with_columns(reward=pl.lit(0.0)), catalog=decider.catalog)
    assert data.n_actions == deployed.spec.n_actions + 1


def test_user_ids_are_keyed_hashes(monkeypatch):
    monkeypatch.delenv("BANDITS_ID_KEY", raising=False)
    with pytest.raises(ConfigError, match="BANDITS_ID_KEY"):
        id_key()
    monkeypatch.setenv("BANDITS_ID_KEY", "k" * 20)
    ids = pl.Series(["alice", "bob", "alice"])
    hashed = hash_ids(ids, id_key())
    assert hashed[0] == hashed[2] != hashed[1]
    assert "alice" not in hashed.to_list()
    assert not hashed.equals(hash_ids(ids, b"another key of 20 b"))


def _decisions(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "action": ["a"] * n,
            "decided_at": [T0 + dt.timedelta(days=i) for i in range(n)],
        }
    )


def test_join_counts_every_event_and_decision():
    decisions = _decisions()
    hour = dt.timedelta(hours=1)
    events = pl.DataFrame(
        {
            "event_id": ["e0", "e0", "e1", "e2", "e3", "zz", "e5"],
            "reward": [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "occurred_at": [
                T0 + hour,  # e0: in the window
                T0 + 2 * hour,  # e0 again: a duplicate
                T0 + dt.timedelta(days=1, hours=-1),  # e1: before its decision
                T0 + dt.timedelta(days=2 + 8),  # e2: late (after 7 days)
                T0 + dt.timedelta(days=3, hours=5),  # e3: in the window
                T0,  # unknown id
                T0 + dt.timedelta(days=5, hours=1),  # e5: window still open at as_of
            ],
        }
    )
    as_of = T0 + dt.timedelta(days=11)  # windows of e0..e4 closed, e5's open
    out, s = join_rewards(decisions, events, window="7d", as_of=as_of)
    assert out["event_id"].to_list() == ["e0", "e1", "e2", "e3", "e4"]
    assert out["reward"].to_list() == [3.0, 0.0, 0.0, 1.0, 0.0]
    assert (s.rewarded, s.unrewarded_zero, s.window_open) == (2, 3, 1)
    assert (s.attributed, s.duplicate_events, s.pending) == (3, 1, 1)
    assert (s.early, s.late, s.unknown_event) == (1, 1, 1)
    assert s.events == s.attributed + s.pending + s.early + s.late + s.unknown_event
    first, _ = join_rewards(decisions, events, window="7d", as_of=as_of, duplicates="first")
    assert first["reward"].to_list()[0] == 1.0
    dropped, s2 = join_rewards(decisions, events, window="7d", as_of=as_of, missing="drop")
    assert dropped["event_id"].to_list() == ["e0", "e3"] and s2.unrewarded_dropped == 3
    with pytest.raises(DataError, match="several rewards"):
        join_rewards(decisions, events, window="7d", as_of=as_of, duplicates="error")


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (pl.DataFrame({"event_id": ["e0"], "reward": [1.0]}), "occurred_at"),
        (
            pl.DataFrame(
                {
                    "event_id": ["e0"],
                    "reward": pl.Series([None], dtype=pl.Float64),
                    "occurred_at": [T0],
                }
            ),
            "null",
        ),
        (
            pl.DataFrame({"event_id": ["e0"], "reward": [1.0], "occurred_at": ["soon"]}),
            "not a time",
        ),
    ],
)
def test_join_bad_events(events, message):
    with pytest.raises(DataError, match=message):
        join_rewards(_decisions(), events, window="7d", as_of=T0)


def test_join_bad_window():
    with pytest.raises(ConfigError, match="window"):
        join_rewards(_decisions(), _decisions().head(0), window="a week")


@pytest.fixture
def model_dir(deployed, tmp_path):
    from bandits.tracking.policy_model import save_policy_model

    save_policy_model(tmp_path / "model", deployed.policy)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users=aud.parquet"], "lacks context column 'channel'"),
        (["users=empty.parquet"], "is empty (0 rows)"),
        (["users=aud_full.parquet", "model=nowhere"], "no such model folder"),
        (["users=aud_full.parquet", "model=models:/nope/1"], "no MLflow store"),
        (["users=aud_full.parquet", "columns.user=customer"], "BANDITS_ID_KEY"),
        (["users=aud_full.parquet", "holdout.share=1.5"], "holdout.share"),
        (["users=aud_full.parquet", "output=out.txt"], "unsupported file type"),
    ],
)
def test_decide_app_errors_are_one_line(model_dir, small_day, args, message):
    full = small_day.frame.with_columns(customer=pl.col("user_key").cast(pl.String))
    full.write_parquet(model_dir / "aud_full.parquet")
    full.drop("channel").write_parquet(model_dir / "aud.parquet")
    full.head(0).write_parquet(model_dir / "empty.parquet")
    base = {"model": "model", "output": "out.parquet"}
    given = dict(a.split("=", 1) for a in args)
    argv = [f"{k}={v}" for k, v in {**base, **given}.items()]
    out = run_app("decide", *argv, cwd=model_dir, env={"BANDITS_ID_KEY": ""})
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not (model_dir / "out.parquet").exists() and not (model_dir / "mlflow.db").exists()


def test_decide_reads_a_bundle_folder_as_it_reads_a_model_folder(model_dir, small_day):
    """``model=`` a policy bundle folder (what ``serve`` also takes) decides exactly as the
    saved MLflow model folder holding the same bundle."""
    small_day.frame.write_parquet(model_dir / "aud.parquet")
    outs = {}
    for name, model in (("model", "model"), ("bundle", "model/artifacts/policy")):
        argv = [f"model={model}", "users=aud.parquet", f"output={name}.parquet", "seed=3"]
        argv.append("decided_at=2026-03-02T09:00:00")
        out = run_app("decide", *argv, cwd=model_dir, env={"BANDITS_ID_KEY": ""})
        assert out.returncode == 0, out.stderr[-2000:]
        outs[name] = pl.read_parquet(model_dir / f"{name}.parquet")
    assert outs["model"].height == small_day.frame.height
    assert outs["model"].equals(outs["bundle"])
