"""The ``evaluate`` app: estimate what a policy would have earned on a decision log.

python -m experiments.evaluate logs=path/to/decision_log policy=retargeting
python -m experiments.evaluate logs=log.parquet catalog=catalog.parquet policy=linucb
python -m experiments.evaluate logs=path/to/decision_log policy=linucb mode=replay
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from bandits.errors import ConfigError
from experiments import common

MODES = ("auto", "fixed", "train", "replay")


def _path(value: Any, setting: str) -> str | None:
    if value is None:
        return None
    path = str(value)
    if not path.strip():
        raise ConfigError(f"{setting} is empty: give a path")
    try:
        from hydra.utils import to_absolute_path

        path = to_absolute_path(path)
    except ValueError:  # outside a Hydra run
        pass
    if not any(ch in path for ch in "*?[") and not Path(path).exists():
        raise ConfigError(f"{setting}: no such file or directory: {value}")
    return path


def data_fingerprint(cfg: DictConfig) -> str:
    """:func:`bandits.data.io.fingerprint` of the files ``cfg.logs`` (and ``cfg.catalog``)
    are read from: changes whenever a file is rewritten."""
    from bandits.data.io import fingerprint

    logs = _path(cfg.logs, "logs")
    if logs is None:
        raise ConfigError("logs is required: logs=PATH (a decision log file or directory)")
    return fingerprint(logs, _path(cfg.catalog, "catalog"))


def print_reordered(data: Any) -> None:
    """One console line when the log's rows were sorted by time at load, then what was
    inferred about every column (role, type, levels or range; excluded identifiers and
    personal data with the reason)."""
    from bandits.data.columns import column_lines, column_table

    if getattr(data, "reordered", False):
        column = data.original_name(data.time_column)
        print(f"log rows were out of time order; ordered by '{column}'", file=sys.stderr)
    print(f"columns of {data.source} ({data.n:,} rows):", file=sys.stderr)
    print("\n".join(column_lines(column_table(data))), file=sys.stderr)


def validate(cfg: DictConfig):
    """Check the config and load the log before any run is started."""
    from omegaconf import OmegaConf

    from bandits.data import load_log
    from bandits.offline import make_estimators, require_rows, split_log

    if OmegaConf.is_missing(cfg, "logs"):
        raise ConfigError("logs is required: logs=PATH (a decision log file or directory)")
    if cfg.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got '{cfg.mode}'")
    policy = common.policy_from_cfg(cfg)
    mode = cfg.mode
    if mode == "auto":
        mode = "train" if type(policy).learns else "fixed"
    if mode in ("train", "replay") and not type(policy).learns:
        raise ConfigError(f"mode={mode} needs a learning policy; '{policy.name}' does not learn")
    estimators = make_estimators(
        list(cfg.estimators), level=float(cfg.level), interval=str(cfg.interval), seed=int(cfg.seed)
    )
    if not estimators and mode != "replay":
        raise ConfigError("estimators is empty: name at least one (e.g. [ips, dr])")
    logs, catalog = _path(cfg.logs, "logs"), _path(cfg.catalog, "catalog")
    if cfg.stream.enabled:
        if mode != "fixed":
            raise ConfigError(
                f"stream.enabled=true evaluates a fixed policy; mode={mode} needs the whole log"
            )
        from bandits.data import iter_log_batches

        batches = iter_log_batches(
            logs,
            catalog,
            batch_rows=int(cfg.stream.batch_rows),
            target_columns=policy.target_columns,
            **common.log_options(cfg),
        )
        return batches, policy, mode, estimators
    data = load_log(
        logs,
        catalog=catalog,
        seed=int(cfg.seed),
        target_columns=policy.target_columns,  # e.g. policy=given's: never context
        **common.log_options(cfg),
    )
    print_reordered(data)
    folds = int(cfg.reward_model.cross_fit_folds) if estimators else 0
    if mode == "train":
        train, eval_data = split_log(data, float(cfg.train_fraction))
        require_rows(train.n, "the training part of the log")
        require_rows(eval_data.n, "the evaluation part of the log", folds)
    else:
        require_rows(data.n, "the log", folds if mode == "fixed" else 0)
    return data, policy, mode, estimators


def evaluate_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, float]:
    import numpy as np

    from bandits.data.columns import column_table
    from bandits.offline import evaluate_policy, replay, split_log, train_offline

    data, policy, mode, estimators = validate(cfg)
    digest = common.config_digest(cfg, data_fingerprint(cfg))
    done = common.already_finished(cfg, digest, parent_run_id)
    if done:
        return {"skipped": done}  # type: ignore[dict-item]
    if cfg.stream.enabled:
        return _evaluate_streaming(cfg, data, policy, estimators, parent_run_id)
    seed = np.random.SeedSequence(int(cfg.seed))
    policy_ss, replay_ss = seed.spawn(2)
    eval_data = data
    replay_result = None
    if mode == "fixed":
        policy.reset(data.problem_spec(), policy_ss)
    elif mode == "train":
        train, eval_data = split_log(data, float(cfg.train_fraction))
        train_offline(policy, train, policy_ss)
    else:
        policy.reset(data.problem_spec(), policy_ss)
        replay_result = replay(
            data, policy, seed=replay_ss, min_accepted=int(cfg.replay.min_accepted)
        )

    evaluation = None
    if mode != "replay":
        rm = cfg.reward_model
        evaluation = evaluate_policy(
            eval_data,
            policy,
            estimators,
            reward_model=str(rm.kind),
            reward_model_alpha=float(rm.alpha),
            cross_fit_folds=int(rm.cross_fit_folds),
            seed=int(cfg.seed),
        )

    from bandits import tracking  # imported late: MLflow takes seconds to import

    if parent_run_id is None:
        common.tracking_uri(cfg)
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=common.job_name(cfg),
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "evaluate",
            "policy": policy.name,
            "mode": mode,
            "seed": str(cfg.seed),
            "data_fingerprint": data_fingerprint(cfg),
            "config_hash": common.config_digest(cfg, data_fingerprint(cfg)),
        },
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_params(
            {
                "policy_params": policy.get_params(),
                "resolved_mode": mode,
                "log_rows": data.n,
                "evaluated_rows": eval_data.n,
                "n_actions": data.n_actions,
            }
        )
        if eval_data.cutoff is not None:
            tracking.log_params({"split.cutoff": eval_data.cutoff})
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        tracking.log_text(column_table(data).write_csv(), "tables/columns.csv")
        tracking.log_input(
            data.frame.head(0) if data.n > 5_000_000 else data.frame,
            name=Path(str(data.source)).name or "decision_log",
            source=str(data.source),
            context="evaluation",
        )
        metrics: dict[str, float] = {}
        tags = None
        if evaluation is not None:
            metrics.update(evaluation.metrics())
            table = evaluation.table()
            tracking.log_text(table.write_csv(), "estimates.csv")
            _log_forest(tracking, table, evaluation.true_value, policy.name, mode)
            tags = _evidence_tags(evaluation, eval_data)
            tracking.log_tags(tags)
        if replay_result is not None:
            metrics.update(replay_result.metrics())
            tracking.log_tags({"replay_message": replay_result.message})
        tracking.log_metrics(metrics)
        _print(policy.name, mode, evaluation, replay_result, run_id, tags)
    return metrics


def _evaluate_streaming(cfg, batches, policy, estimators, parent_run_id):
    """Fixed-policy evaluation of a parquet log by batches (bounded memory)."""
    import itertools

    from bandits import tracking
    from bandits.offline import evaluate_stream

    first = next(batches, None)
    if first is None:
        raise ConfigError("logs: the log has no rows")
    policy.reset(first.problem_spec(), int(cfg.seed))
    rm = cfg.reward_model
    evaluation = evaluate_stream(
        itertools.chain([first], batches),
        policy,
        estimators,
        reward_model_kind=str(rm.kind),
        reward_model_alpha=float(rm.alpha),
    )
    if parent_run_id is None:
        common.tracking_uri(cfg)
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=common.job_name(cfg),
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "evaluate",
            "policy": policy.name,
            "mode": "fixed-stream",
            "seed": str(cfg.seed),
            "data_fingerprint": data_fingerprint(cfg),
            "config_hash": common.config_digest(cfg, data_fingerprint(cfg)),
        },
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_params({"policy_params": policy.get_params(), "log_rows": evaluation.n})
        tracking.log_input(
            first.frame.head(0),
            name=Path(first.source).name or "decision_log",
            source=str(first.source),
            context="evaluation",
        )
        table = evaluation.table()
        tracking.log_text(table.write_csv(), "estimates.csv")
        _log_forest(tracking, table, evaluation.true_value, policy.name, "fixed, streamed")
        tags = _evidence_tags(evaluation, first)
        tracking.log_tags(tags)
        metrics = evaluation.metrics()
        tracking.log_metrics(metrics)
        _print(policy.name, "fixed, streamed", evaluation, None, run_id, tags)
    return metrics


def _evidence_tags(evaluation, data) -> dict[str, str]:
    """Run tags: ``evidence``, ``evidence.reason``, where the support and the propensities
    came from, and the data warnings."""
    from bandits.offline.evaluate import logger_tags

    level, reason = evaluation.evidence
    tags = {
        "evidence": level,
        "evidence.reason": reason or "the log supports the target policy",
        "support_source": evaluation.support_source,
        **logger_tags(data),
    }
    if evaluation.warnings:
        tags["warnings"] = " | ".join(evaluation.warnings)[:5000]
    return tags


def _log_forest(tracking, table, truth, policy: str, mode: str) -> None:
    import polars as pl

    from bandits.report import plot_forest

    labelled = table.with_columns(pl.col("estimator").alias("label"))
    fig = plot_forest(labelled, title=f"{policy} ({mode}): estimated value", truth=truth)
    tracking.log_figure(fig, "plots/forest.png")


def _print(policy, mode, evaluation, replay_result, run_id, tags=None) -> None:
    from bandits.offline.evaluate import describe_estimate

    lines = [f"{policy} ({mode}) — run {run_id}"]
    if tags:
        lines.append(f"  logger: {tags['logger']}")
        if tags.get("propensity_source") == "estimated":
            lines.append(
                "  propensities: estimated from the log (no propensity column): "
                + tags.get("propensity_model", "a cross-fitted model of the logged action")
            )
    if evaluation is not None:
        ests = list(evaluation.estimates.values())
        bounds = {(e.bound_low, e.bound_high) for e in ests if not e.identified}
        shared = len(bounds) == 1 and all(not e.identified for e in ests)
        for est in ests:
            lines.append(f"  {describe_estimate(est, bound=not shared)}")
        if shared:
            low, high = bounds.pop()
            lines.append(
                f"  every interval above is the support bound [{low:.4f}, {high:.4f}]: the "
                "point values are extrapolations"
            )
        level, reason = evaluation.evidence
        lines.append(f"  evidence: {level}" + (f" — {reason}" if reason else ""))
        if level == "insufficient":
            lines.append(
                "  the log cannot identify this policy's value: read the intervals as bounds "
                "(worst and best case for what the log never shows), not as estimates"
            )
        for warning in evaluation.warnings:
            lines.append(f"  warning: {warning}")
        if evaluation.true_value is not None:
            lines.append(f"  true value (simulator ground truth) {evaluation.true_value:.4f}")
    if replay_result is not None:
        r = replay_result
        lines.append(f"  replay     {r.value:.4f}  [{r.ci_low:.4f}, {r.ci_high:.4f}]  {r.message}")
    print("\n".join(lines), file=sys.stderr)


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, evaluate_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
