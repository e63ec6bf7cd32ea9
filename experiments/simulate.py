"""The ``simulate`` app: one policy learns online on the synthetic audience, tracked in MLflow.

python -m experiments.simulate policy=linucb audience=default rounds=20000 seed=1
python -m experiments.simulate -m policy=uniform,retargeting,segment_ts,linucb,vw rounds=5000
python -m experiments.simulate -m hydra/launcher=local_parallel policy=linucb,lints seed=1,2
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from bandits.errors import ConfigError
from experiments import common

# bandits.simulate (polars, numba) is imported in the jobs: a sweep's launching process
# does not need it, and with the joblib launcher its ~0.5 s would delay the workers' start


def validate(cfg: DictConfig) -> tuple[Any, Any]:
    """Check the whole config before any run is started; returns (audience, policy), the
    policy bound to the audience's catalog (so catalog-dependent settings fail here)."""
    from bandits.experiment import check_policy
    from bandits.simulate import audience_settings_from_dict

    try:
        rounds = int(cfg.rounds)
    except (TypeError, ValueError):
        raise ConfigError(f"rounds must be a positive integer, got {cfg.rounds!r}") from None
    if rounds <= 0:
        raise ConfigError(f"rounds must be > 0, got {rounds}")
    if cfg.metric_every is not None and int(cfg.metric_every) <= 0:
        raise ConfigError(f"metric_every must be > 0 (or null), got {cfg.metric_every}")
    if int(cfg.eval_rounds) < 0:
        raise ConfigError(f"eval_rounds must be ≥ 0, got {cfg.eval_rounds}")
    audience = audience_settings_from_dict(common.resolved_config(cfg.audience))
    policy = common.policy_from_cfg(cfg)
    return audience, check_policy(policy, audience, int(cfg.seed))


def simulate_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, float] | float:
    audience, policy = validate(cfg)
    from bandits import tracking  # imported late: MLflow takes seconds to import
    from bandits.experiment import run_simulation
    from bandits.tracking.results import SimulationStream, log_simulation

    if parent_run_id is None:
        common.tracking_uri(cfg)
    digest = common.config_digest(cfg)
    done = common.already_finished(cfg, digest, parent_run_id)
    if done:
        return {"skipped": done}  # type: ignore[dict-item]
    rounds = int(cfg.rounds)
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=common.job_name(cfg),
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "simulate",
            "policy": policy.name,
            "audience": audience.name,
            "seed": str(cfg.seed),
            "config_hash": digest,
        },
        background=True,  # MLflow writes overlap with the simulation
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_params({"policy_params": policy.get_params()})
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        # curves and the decision log reach MLflow while the run goes on
        stream = SimulationStream(
            int(cfg.metric_every) if cfg.metric_every else max(1, rounds // 200),
            decision_log=bool(cfg.decision_log.enabled),
        )
        result = run_simulation(
            policy,
            audience,
            rounds,
            int(cfg.seed),
            eval_rounds=int(cfg.eval_rounds),
            keep_log=False,  # streamed (or not wanted): not held in memory
            include_user_key=bool(cfg.decision_log.include_user_key),
            on_log=stream.on_log,
            on_curves=stream.on_curves,
            on_day=_progress(rounds, bool(cfg.progress), policy.name),
        )
        log_simulation(result, stream, plot=bool(cfg.plot))
        if cfg.model.log and policy.learns and result.trained is not None:
            from bandits.tracking.policy_model import log_policy_model

            log_policy_model(result.trained, registered_model_name=cfg.model.register or None)
        print(f"{result.line()}  — run {run_id}", file=sys.stderr)
    summary = result.summary
    if cfg.get("objective"):
        if cfg.objective not in summary:
            raise ConfigError(
                f"objective '{cfg.objective}' is not a final metric ({', '.join(summary)})"
            )
        return float(summary[cfg.objective])  # what a tuning sweeper maximises
    return summary


def _progress(total: int, enabled: bool, label: str) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="round", leave=False)

    def update(done: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


@hydra.main(version_base="1.3", config_path="../configs", config_name="simulate")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, simulate_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
