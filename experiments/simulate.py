"""The ``simulate`` app: one policy learns online on the synthetic audience, tracked in MLflow.

python -m experiments.simulate policy=linucb audience=default rounds=20000 seed=1
python -m experiments.simulate -m policy=uniform,retargeting,segment_ts,linucb,vw rounds=5000
python -m experiments.simulate -m hydra/launcher=local_parallel policy=linucb,lints seed=1,2
"""

from __future__ import annotations

import sys
import time
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from bandits.errors import ConfigError
from experiments import common

# bandits.simulate (polars, numba) is imported in the jobs: a sweep's launching process
# does not need it, and with the joblib launcher its ~0.5 s would delay the workers' start


def validate(cfg: DictConfig) -> tuple[Any, Any]:
    """Check the whole config before any run is started; returns (audience, policy)."""
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
    return audience, policy


def simulate_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, float]:
    audience, policy = validate(cfg)
    from bandits import tracking  # imported late: MLflow takes seconds to import
    from bandits.simulate import Environment, problem_spec, run_online

    plot = bool(cfg.plot)
    if plot:
        from bandits.report import plot_online_curves

    env = Environment(audience, np.random.SeedSequence([int(cfg.seed), 0]))
    # build the policy against the catalog now, so catalog-dependent settings fail early
    policy.reset(problem_spec(env), 0)
    if parent_run_id is None:
        common.tracking_uri(cfg)
    digest = common.config_digest(cfg)
    done = common.already_finished(cfg, digest, parent_run_id)
    if done:
        return {"skipped": done}  # type: ignore[dict-item]
    resolved = common.resolved_config(cfg)
    rounds = int(cfg.rounds)
    every = int(cfg.metric_every) if cfg.metric_every else max(1, rounds // 200)
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
        tracking.log_params(resolved)
        tracking.log_params({"policy_params": policy.get_params()})
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        on_log = stream = None
        if cfg.decision_log.enabled:
            # the decision log is written day by day while the simulation runs
            stream = tracking.ParquetArtifact("decision_log/decision_log.parquet")
            keep_user_key = bool(cfg.decision_log.include_user_key)

            def on_log(day_rows):
                if not keep_user_key:  # plain column selection: DataFrame.drop goes lazy
                    day_rows = day_rows[[c for c in day_rows.columns if c != "user_key"]]
                stream.write(day_rows)

        curve_buffer = _CurveBuffer(tracking.log_metric_series)
        t0 = time.perf_counter()
        result = run_online(
            env,  # fresh: problem_spec only read its catalog
            common.policy_from_cfg(cfg),
            rounds,
            np.random.SeedSequence([int(cfg.seed), 1]),
            eval_rounds=int(cfg.eval_rounds),
            on_day=_progress(rounds, bool(cfg.progress), policy.name),
            on_log=on_log,
            on_curves=(every, curve_buffer.add),  # curves reach MLflow while the run goes on
            keep_log=False,  # streamed (or not wanted): not held in memory
        )
        wall = time.perf_counter() - t0
        curve_buffer.flush()
        if stream is not None:
            stream.close()
            tracking.log_parquet(env.catalog.to_frame(), "decision_log/catalog.parquet")
            tracking.log_dict(
                {
                    "features": problem_spec_features(),
                    "reward": audience.response.reward,
                    "rounds": rounds,
                    "policy": policy.name,
                },
                "decision_log/metadata.json",
            )
        summary = result.summary()
        curves = result.curves(every)
        tracking.log_metrics(
            {**summary, "simulation_seconds": wall, "rounds_per_second": rounds / wall}
        )
        tracking.log_dict(summary, "summary.json")
        if plot:
            t1 = time.perf_counter()
            fig = plot_online_curves(
                {policy.name: curves}, title=f"{policy.name} on audience '{audience.name}'"
            )
            tracking.log_figure(fig, "plots/cumulative_reward_regret.png")
            tracking.log_metrics({"plot_seconds": time.perf_counter() - t1})
        print(
            f"{policy.name}: true value {summary['true_value']:.4f} "
            f"(oracle {summary['oracle_value']:.4f}), mean reward {summary['mean_reward']:.4f} "
            f"[{summary['mean_reward_ci_low']:.4f}, {summary['mean_reward_ci_high']:.4f}], "
            f"regret {summary['regret']:.1f}, unsubscribe rate {summary['unsubscribe_rate']:.4f}"
            f"  — run {run_id}",
            file=sys.stderr,
        )
    if cfg.get("objective"):
        if cfg.objective not in summary:
            raise ConfigError(
                f"objective '{cfg.objective}' is not a final metric ({', '.join(summary)})"
            )
        return float(summary[cfg.objective])  # what a tuning sweeper maximises
    return summary


class _CurveBuffer:
    """Collects the curve points streamed by ``run_online`` and hands them to ``log`` (the
    background MLflow writer) in batches of at least ``rows`` points."""

    def __init__(self, log: Any, rows: int = 50) -> None:
        self.log, self.rows = log, rows
        self.frames: list[Any] = []
        self.pending = 0

    def add(self, frame: Any) -> None:
        self.frames.append(frame)
        self.pending += frame.height
        if self.pending >= self.rows:
            self.flush()

    def flush(self) -> None:
        if self.frames:
            import polars as pl

            self.log(pl.concat(self.frames))
            self.frames, self.pending = [], 0


def problem_spec_features() -> dict[str, Any]:
    from bandits.simulate import default_feature_schema

    return default_feature_schema().to_dict()


def _progress(total: int, enabled: bool, label: str):
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
