"""The compare app logs each learning rung's policy, as replication 0 ended it, as an MLflow
model (issue 16, item 1): replication 0's child run holds the models, the comparison's run
points at them (``policy_model.<rung>.uri``), and a loaded model gives exactly the
probabilities of the same replication run in-process. A resumed comparison that reuses
replication 0 points at the models of the run that computed it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from app_cli import mlflow_runs, run_app

from bandits.experiment import ladder_from_settings
from bandits.simulate import AudienceSettings, Environment, audience_settings_from_dict
from bandits.simulate.ladder import run_ladder
from bandits.simulate.replications import replication_seeds, unbound

LADDER = {
    "retargeting": {"name": "retargeting"},
    "linucb": {"name": "linucb"},
    "vw": {"name": "vw"},
}
ARGS = (
    "audience=small",
    "rounds=800",
    "replications=2",
    "n_jobs=1",
    "eval_rounds=0",
    "seed=11",
    "progress=false",
    "~ladder.one_for_all",
    "~ladder.segments",
    "versus=[retargeting]",
)


def _small_audience() -> AudienceSettings:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    root = Path(__file__).resolve().parents[2]
    with initialize_config_dir(str(root / "configs"), version_base="1.3"):
        cfg = compose(config_name="compare", overrides=["audience=small"])
    return audience_settings_from_dict(OmegaConf.to_container(cfg.audience, resolve=True))


def test_compare_logs_each_learning_rung_as_a_model_and_resume_points_at_them(
    tmp_path, monkeypatch
):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the apps' temporary folders: none left
    proc = run_app("compare", tmp_path, *ARGS)
    assert proc.returncode == 0, proc.stderr
    assert "Learned policies as replication 0 ended them" in proc.stdout + proc.stderr
    runs = mlflow_runs(tmp_path, "compare")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (rep0,) = [r for r in runs if r.data.tags.get("replication") == "0"]
    (rep1,) = [r for r in runs if r.data.tags.get("replication") == "1"]
    tags = parent.data.tags
    # learning rungs only (retargeting does not learn); each URI also on replication 0's run
    assert sorted(k for k in tags if k.endswith(".uri") and k.startswith("policy_model.")) == [
        "policy_model.linucb.uri",
        "policy_model.vw.uri",
    ]
    for rung in ("linucb", "vw"):
        assert rep0.data.tags[f"policy_model.{rung}.uri"] == tags[f"policy_model.{rung}.uri"]
    assert not any(k.startswith("policy_model.") for k in rep1.data.tags)

    from bandits.tracking.policy_model import load_policy_model

    # replication 0 in-process, from the same seed: the same trained policies
    audience = _small_audience()
    policies = ladder_from_settings(LADDER)
    env_ss, own = replication_seeds(11, 0, policies)
    fresh = {label: unbound(p) for label, p in policies.items()}
    run_ladder(audience, fresh, 800, env_ss, eval_rounds=0, policy_seeds=own)
    day = Environment(audience, 99).next_day(300).frame
    for rung in ("linucb", "vw"):
        deployed = load_policy_model(tags[f"policy_model.{rung}.uri"])
        assert deployed.model_version == tags[f"policy_model.{rung}.version"]
        np.testing.assert_allclose(
            deployed.policy.action_probs(deployed.spec.contexts(day)),
            fresh[rung].action_probs(fresh[rung].spec_.contexts(day)),
            rtol=0,
            atol=1e-12,
        )

    # another comparison reusing both replications (a different alpha: a new run, same key)
    again = run_app("compare", tmp_path, *ARGS, "alpha=0.1")
    assert again.returncode == 0, again.stderr
    newest = [
        r
        for r in mlflow_runs(tmp_path, "compare")
        if "mlflow.parentRunId" not in r.data.tags and r.info.run_id != parent.info.run_id
    ]
    assert len(newest) == 1
    for rung in ("linucb", "vw"):
        assert newest[0].data.tags[f"policy_model.{rung}.uri"] == tags[f"policy_model.{rung}.uri"]
    assert not list(scratch.glob("bandits-artifact-*"))
