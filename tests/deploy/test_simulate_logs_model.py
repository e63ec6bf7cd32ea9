"""The simulate app logs the policy it trained as an MLflow model (issue 16, item 1): the run
carries the model's URI and version, ``model.register`` adds a registry version, and the
loaded model gives exactly the probabilities the same simulation leaves in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from app_cli import mlflow_runs, run_app

from bandits.experiment import run_simulation
from bandits.policies import make_policy
from bandits.simulate import Environment, audience_settings_from_dict

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_logs_and_registers_the_trained_policy(tmp_path):
    args = ("policy=linucb", "rounds=700", "seed=5", "audience=small", "eval_rounds=0")
    proc = run_app("simulate", tmp_path, *args, "progress=false", "model.register=pilot")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "input example" not in proc.stderr
    (run,) = mlflow_runs(tmp_path, "simulate")
    assert run.info.status == "FINISHED"
    uri, version = run.data.tags["policy_model.uri"], run.data.tags["policy_model.version"]

    from mlflow import MlflowClient

    from bandits.tracking.policy_model import load_policy_model

    versions = MlflowClient().search_model_versions("name='pilot'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == run.info.run_id
    deployed = load_policy_model(uri)
    assert deployed.model_version == version

    # the same config and seed in-process: the same trained policy
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="simulate", overrides=["audience=small"])
    audience = audience_settings_from_dict(OmegaConf.to_container(cfg.audience, resolve=True))
    result = run_simulation(make_policy("linucb"), audience, 700, 5, eval_rounds=0)
    assert result.trained is not None
    env = Environment(audience, 99)
    day = env.next_day(400)
    spec = result.trained.spec_
    contexts = spec.contexts(day.frame)
    np.testing.assert_array_equal(
        deployed.policy.action_probs(deployed.spec.contexts(day.frame)),
        result.trained.action_probs(contexts),
    )


def test_a_policy_that_does_not_learn_logs_no_model(tmp_path):
    proc = run_app(
        "simulate", tmp_path, "policy=uniform", "rounds=200", "audience=small", "eval_rounds=0"
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = mlflow_runs(tmp_path, "simulate")
    assert "policy_model.uri" not in run.data.tags
