"""The ``decide`` app: batch decisions for an audience with a trained policy.

python -m experiments.decide model=models:/pilot/3 users=tomorrow.parquet output=decisions
python -m experiments.decide model=runs:/<run id>/policy users=a.csv output=d.parquet \
    holdout.share=0.1

``users=`` is the audience file (``audience`` names the simulator's config group). Reads
only the model's context columns from it (mapped with ``columns=``), decides
with the model's exploration and the ``seed``, and writes one row per user atomically
(:mod:`bandits.deploy.decide`). No MLflow run is created: the decisions are a file.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bandits.errors import ConfigError
from experiments import common

#: ``columns.<key>`` that apply to an audience (the others describe logged outcomes).
AUDIENCE_KEYS = ("rename", "user", "timestamp")


def _absolute(value: Any, setting: str) -> str:
    if value is None or not str(value).strip():
        raise ConfigError(f"{setting} is empty: give a path")
    path = str(value)
    try:
        from hydra.utils import to_absolute_path

        return to_absolute_path(path)
    except ValueError:  # outside a Hydra run
        return path


def _is_local(uri: str) -> bool:
    return "://" not in uri and ":" not in uri.split("/", 1)[0]


def audience_options(cfg: DictConfig) -> dict[str, Any]:
    """``rename``, ``user_column``, ``time_column`` from the ``columns`` group; keys about
    logged outcomes (action, reward, propensity, …) are an error: an audience has none."""
    options = common.log_options(cfg)  # checks the keys and their types
    cols = cfg.get("columns") or {}
    used = [
        k
        for k in cols
        if k not in AUDIENCE_KEYS and cols.get(k) not in (None, [], {}) and k != "timestamp"
    ]
    if used:
        raise ConfigError(
            f"columns.{used[0]} does not apply to an audience (it has no outcomes yet): "
            f"an audience uses only columns.{', columns.'.join(AUDIENCE_KEYS)}"
        )
    return {
        "rename": options["rename"],
        "user_column": options["user_column"],
        "time_column": options["column_map"].get("timestamp"),
    }


def holdout_from_cfg(cfg: DictConfig):
    """The configured :class:`~bandits.deploy.Holdout`, or None (``holdout.share: null``)."""
    from bandits.deploy import Holdout

    h = cfg.get("holdout") or {}
    if h.get("share") is None:
        return None
    settings = h.get("baseline_settings") or {}
    if not hasattr(settings, "items"):
        raise ConfigError(f"holdout.baseline_settings must be a mapping, got {settings!r}")
    holdout = Holdout(
        share=h["share"],
        arm=str(h.get("arm", "baseline")),
        baseline=str(h.get("baseline", "retargeting")),
        baseline_settings=dict(settings),
        none_variant=str(h.get("none_variant", "no_message")),
    )
    holdout.check()
    return holdout


def decided_at_from_cfg(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"decided_at={value!r}: expected an ISO time such as 2026-03-01T09:00:00"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Every setting checked, and the inputs found, before the model is loaded."""
    from bandits.deploy.decide import output_kind
    from bandits.deploy.privacy import id_key

    for name in ("model", "users", "output"):
        if OmegaConf.is_missing(cfg, name):
            raise ConfigError(f"{name} is required: {name}=…")
    model = str(cfg.model).strip()
    if not model:
        raise ConfigError("model is empty: give a model URI or folder")
    if _is_local(model):
        model = _absolute(model, "model")
        if not Path(model).is_dir():
            raise ConfigError(f"model={cfg.model}: no such model folder")
    audience = _absolute(cfg.users, "users")
    if not any(ch in audience for ch in "*?[") and not Path(audience).exists():
        raise ConfigError(f"users: no such file or directory: {cfg.users}")
    output = _absolute(cfg.output, "output")
    output_kind(output)
    try:
        rows = int(cfg.batch_rows)
    except (TypeError, ValueError):
        raise ConfigError(f"batch_rows={cfg.batch_rows!r}: expected an integer") from None
    if rows < 1:
        raise ConfigError(f"batch_rows={cfg.batch_rows}: must be ≥ 1")
    options = audience_options(cfg)
    key: bytes | None = None
    if options["user_column"] is not None:
        key = id_key(str(cfg.ids.key_env))
    return {
        "model": model,
        "audience": audience,
        "output": output,
        "holdout": holdout_from_cfg(cfg),
        "decided_at": decided_at_from_cfg(cfg.get("decided_at")),
        "batch_rows": rows,
        "id_key": key,
        **options,
    }


def load_model(cfg: DictConfig, model: str):
    """The :class:`~bandits.deploy.DeployedPolicy` behind ``model``: a policy bundle
    folder (``policy.json``), a saved MLflow model folder, or a URI looked up in the
    configured tracking store — which must exist: asking never creates one."""
    if _is_local(model):  # a folder: no MLflow needed to read its bundle
        from bandits.deploy import load_bundle

        for bundle in (Path(model), Path(model) / "artifacts" / "policy"):
            if (bundle / "policy.json").is_file():
                return load_bundle(bundle)
        raise ConfigError(
            f"model={model}: neither a policy bundle (policy.json) nor a policy model "
            "(artifacts/policy/policy.json)"
        )
    from bandits import tracking
    from bandits.tracking.policy_model import load_policy_model

    if not _is_local(model):
        uri = cfg.tracking.get("uri") or tracking.default_tracking_uri(common._launch_dir())
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
            raise ConfigError(
                f"model={model}: there is no MLflow store at {uri} (set tracking.uri or "
                "$MLFLOW_TRACKING_URI to the store the model was logged in)"
            )
        common.tracking_uri(cfg)
    return load_policy_model(model)


def decide_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, Any]:
    from bandits.deploy import decide_file

    settings = validate(cfg)
    deployed = load_model(cfg, settings["model"])
    summary = decide_file(
        deployed,
        settings["audience"],
        settings["output"],
        seed=int(cfg.seed),
        holdout=settings["holdout"],
        rename=settings["rename"],
        user_column=settings["user_column"],
        time_column=settings["time_column"],
        id_key=settings["id_key"],
        decided_at=settings["decided_at"],
        batch_rows=settings["batch_rows"],
        metadata={"model_uri": str(cfg.model)},
    )
    rate = summary.rows / summary.seconds if summary.seconds > 0 else float("inf")
    group = (
        f" ({summary.treatment:,} treatment, {summary.holdout:,} holdout)"
        if summary.holdout
        else ""
    )
    print(
        f"decided for {summary.rows:,} users{group} with {summary.model_version} "
        f"(seed {summary.seed}, batch {summary.batch}) in {summary.seconds:.2f} s "
        f"({rate:,.0f} users/s) → {summary.output}",
        file=sys.stderr,
    )
    return summary.to_dict()


@hydra.main(version_base="1.3", config_path="../configs", config_name="decide")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, decide_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
