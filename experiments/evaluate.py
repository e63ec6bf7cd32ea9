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


def input_path(value: Any, setting: str) -> str | None:
    """The path ``setting`` names, relative to the launch directory; a one-line
    ConfigError when it is empty or (not being a glob) does not exist."""
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

    logs = input_path(cfg.logs, "logs")
    if logs is None:
        raise ConfigError("logs is required: logs=PATH (a decision log file or directory)")
    return fingerprint(logs, input_path(cfg.catalog, "catalog"))


def print_columns(data: Any) -> None:
    """One console line when the log's rows were sorted by time at load, then what was
    inferred about every column (role, type, levels or range; excluded identifiers and
    personal data with the reason)."""
    from bandits.data.columns import column_lines, column_table

    if getattr(data, "reordered", False):
        column = data.original_name(data.time_column)
        print(f"log rows were out of time order; ordered by '{column}'", file=sys.stderr)
    print(f"columns of {data.source} ({data.n:,} rows):", file=sys.stderr)
    print("\n".join(column_lines(column_table(data))), file=sys.stderr)


def load_logged(cfg: DictConfig, **options: Any) -> Any:
    """The log ``cfg.logs`` (with ``cfg.catalog`` and the ``columns`` mapping) as LoggedData,
    described on the console (:func:`print_columns`)."""
    from bandits.data import load_log

    logs, catalog = str(input_path(cfg.logs, "logs")), input_path(cfg.catalog, "catalog")
    data = load_log(logs, catalog=catalog, seed=int(cfg.seed), **common.log_options(cfg), **options)
    print_columns(data)
    return data


def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The keywords of :func:`bandits.evaluate_log` (and its streamed variant)."""
    rm = cfg.reward_model
    return {
        "level": float(cfg.level),
        "interval": str(cfg.interval),
        "reward_model": str(rm.kind),
        "reward_model_alpha": float(rm.alpha),
        "seed": int(cfg.seed),
    }


def _batch_reading(cfg: DictConfig, policy: Any) -> dict[str, Any]:
    """The keywords of the batched readers (:func:`bandits.data.iter_log_batches` for
    ``stream.enabled``, :func:`bandits.experiment.distributed.plan_partitions` for
    ``engine=ray``, which take the same): the log, its catalog, ``stream.batch_rows``, the
    policy's target columns and the column mapping."""
    return {
        "path": str(input_path(cfg.logs, "logs")),
        "catalog": input_path(cfg.catalog, "catalog"),
        "batch_rows": int(cfg.stream.batch_rows),
        "target_columns": policy.target_columns,
        **common.log_options(cfg),
    }


def validate(cfg: DictConfig) -> tuple[Any, Any, str, list[Any]]:
    """Check the config and load the log before any run is started: (the log or its
    batches, the policy, the resolved mode, the estimators)."""
    from omegaconf import OmegaConf

    from bandits.data import iter_log_batches
    from bandits.experiment.evaluation import check_rows, estimators_of, resolve_mode

    if OmegaConf.is_missing(cfg, "logs"):
        raise ConfigError("logs is required: logs=PATH (a decision log file or directory)")
    policy = common.policy_from_cfg(cfg)
    mode = resolve_mode(policy, str(cfg.mode))
    estimators = estimators_of(
        list(cfg.estimators),
        level=float(cfg.level),
        interval=str(cfg.interval),
        seed=int(cfg.seed),
        required=mode != "replay",
    )
    if cfg.get("engine") == "ray":
        from bandits.experiment.distributed import plan_partitions

        if mode != "fixed":
            raise ConfigError(
                f"engine=ray evaluates a fixed policy on a partitioned log; mode={mode} "
                "needs the whole log in one process (engine=local)"
            )
        return plan_partitions(**_batch_reading(cfg, policy)), policy, mode, estimators
    if cfg.stream.enabled:
        if mode != "fixed":
            raise ConfigError(
                f"stream.enabled=true evaluates a fixed policy; mode={mode} needs the whole log"
            )
        return iter_log_batches(**_batch_reading(cfg, policy)), policy, mode, estimators
    data = load_logged(cfg, target_columns=policy.target_columns)  # e.g. policy=given's
    folds = int(cfg.reward_model.cross_fit_folds) if estimators else 0
    check_rows(data, mode, float(cfg.train_fraction), folds)
    return data, policy, mode, estimators


def evaluate_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, float]:
    from bandits.experiment import evaluate_log, evaluate_log_stream

    data, policy, mode, estimators = validate(cfg)
    fingerprint = data_fingerprint(cfg)
    digest = common.config_digest(cfg, fingerprint)
    done = common.already_finished(cfg, digest, parent_run_id)
    if done:
        return {"skipped": done}  # type: ignore[dict-item]
    partitions: list[Any] = []
    if cfg.get("engine") == "ray":
        from bandits.experiment.distributed import evaluate_partitions, partition_lines

        result, partitions = evaluate_partitions(
            data, policy, estimators=estimators, **_settings(cfg)
        )
        print("\n".join(partition_lines(partitions)), file=sys.stderr)
    elif cfg.stream.enabled:
        result = evaluate_log_stream(data, policy, estimators=estimators, **_settings(cfg))
    else:
        result = evaluate_log(
            data,
            policy,
            mode=mode,
            estimators=estimators,
            train_fraction=float(cfg.train_fraction),
            cross_fit_folds=int(cfg.reward_model.cross_fit_folds),
            min_accepted=int(cfg.replay.min_accepted),
            **_settings(cfg),
        )
    from bandits import tracking  # imported late: MLflow takes seconds to import
    from bandits.tracking.results import log_evaluation

    if parent_run_id is None:
        common.tracking_uri(cfg)
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=common.job_name(cfg),
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "evaluate",
            "policy": policy.name,
            "mode": "fixed-stream" if result.streamed else result.mode,
            "engine": str(cfg.get("engine") or "local"),
            "seed": str(cfg.seed),
            "data_fingerprint": fingerprint,
            "config_hash": digest,
        },
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        metrics = log_evaluation(result)
        if cfg.model.log and result.mode == "train" and result.fitted_policy is not None:
            from bandits.tracking.policy_model import log_policy_model

            log_policy_model(result.fitted_policy, registered_model_name=cfg.model.register or None)
        print("\n".join(result.lines(run_id)), file=sys.stderr)
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, evaluate_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
