"""A policy as an MLflow model: every registered policy that can bind gives, once logged
and loaded with ``mlflow.pyfunc.load_model``, the probabilities it had in the run; sampling
is seeded; models register as versions of a named policy (sqlite store in tmp_path)."""

from __future__ import annotations

import mlflow
import numpy as np
import polars as pl
import pytest

from bandits.deploy import DeployedPolicy, load_bundle, save_bundle
from bandits.errors import ConfigError
from bandits.policies import POLICIES, make_policy
from bandits.tracking.policy_model import load_policy_model, log_policy_model, save_policy_model

NAMES = sorted(POLICIES)


def _trained(name, spec, day):
    cls = POLICIES[name]
    policy = make_policy(name, cls.example_settings(spec)).reset(spec, 3)
    frame = cls.example_frame(spec, day.frame)
    policy.play(spec.contexts(frame), day.potential_reward)
    extra = tuple(policy.target_columns(frame.columns))
    if name == "table":
        extra += tuple(policy.keys or ())
    return policy, frame, extra


def _pandas(frame: pl.DataFrame):
    return frame.with_columns(
        pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Enum)
    ).to_pandas()


@pytest.mark.parametrize("name", NAMES)
def test_bundle_round_trips_probabilities(name, small_spec, small_day, tmp_path):
    policy, frame, extra = _trained(name, small_spec, small_day)
    saved = save_bundle(tmp_path / "b", policy, extra_columns=extra)
    loaded = load_bundle(tmp_path / "b")
    np.testing.assert_allclose(
        loaded.probs(frame), policy.action_probs(small_spec.contexts(frame)), atol=1e-12
    )
    assert loaded.model_version == saved.model_version
    assert loaded.manifest["exploration"]["epsilon"] == policy.epsilon


@pytest.mark.parametrize("name", NAMES)
def test_pyfunc_predict_gives_the_run_probabilities(name, small_spec, small_day, tmp_path):
    policy, frame, extra = _trained(name, small_spec, small_day)
    save_policy_model(tmp_path / "model", policy, extra_columns=extra)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    out = model.predict(_pandas(frame), params={"seed": 5})
    probs = np.stack(out["action_probs"].to_numpy())
    np.testing.assert_allclose(probs, policy.action_probs(small_spec.contexts(frame)), atol=1e-12)
    rows = np.arange(len(out))
    index = {v: i for i, v in enumerate(small_spec.action_ids)}
    chosen = out["action"].map(index).to_numpy()
    np.testing.assert_array_equal(out["propensity"].to_numpy(), probs[rows, chosen])
    assert out["event_id"].is_unique
    assert set(out["model_version"]) == {load_policy_model(str(tmp_path / "model")).model_version}


def test_predict_is_seeded(small_spec, small_day, tmp_path):
    policy, frame, _ = _trained("linucb", small_spec, small_day)
    policy.epsilon = 0.5  # plenty of randomness to tell seeds apart
    save_policy_model(tmp_path / "model", policy)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    a = model.predict(_pandas(frame), params={"seed": 1})
    b = model.predict(_pandas(frame), params={"seed": 1})
    c = model.predict(_pandas(frame), params={"seed": 2})
    assert a.equals(b)
    assert not a["action"].equals(c["action"])
    with pytest.raises(ConfigError, match="seed"):
        model.predict(_pandas(frame))


def test_registry_versions(small_spec, small_day, tmp_path):
    from bandits import tracking

    tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("train")
    versions = []
    for rounds in (50, 200):
        policy = make_policy("linucb", {}).reset(small_spec, 1)
        ctx = small_spec.contexts(small_day.frame.head(rounds))
        policy.play(ctx, small_day.potential_reward[:rounds])
        with mlflow.start_run():
            _, deployed = log_policy_model(policy, registered_model_name="pilot")
        versions.append(deployed.model_version)
    assert versions[0] != versions[1]
    for number, version in ((1, versions[0]), (2, versions[1])):
        assert load_policy_model(f"models:/pilot/{number}").model_version == version
    with pytest.raises(ConfigError, match="models:/nope/1"):
        load_policy_model("models:/nope/1")


def test_unbound_policy_cannot_be_saved(tmp_path):
    with pytest.raises(ConfigError, match="not bound"):
        save_bundle(tmp_path, make_policy("linucb", {}))


def test_from_policy_version_matches_a_saved_bundle(small_spec, small_day, tmp_path):
    policy, _, _ = _trained("segment_ts", small_spec, small_day)
    assert (
        DeployedPolicy.from_policy(policy).model_version
        == save_bundle(tmp_path, policy).model_version
    )
