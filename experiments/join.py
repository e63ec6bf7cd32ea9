"""The ``join`` app: rewards joined back to decisions, into a log the tool evaluates.

python -m experiments.join decisions=decisions/ rewards=events.csv output=joined/ window=7d

Decisions (the ``decide`` app's output) and reward events (``event_id``, ``reward``,
``occurred_at``) are joined by event id within the attribution window
(:mod:`bandits.deploy.join`). The counts — rewarded, unrewarded, windows still open, late,
early and unknown events — are printed and written as ``<output>.summary.json`` beside the
output (a directory's ``join_summary.json`` inside it). Output is atomic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bandits.errors import ConfigError
from experiments import common
from experiments.decide import _absolute, decided_at_from_cfg

EVENT_COLUMNS = ("event_id", "reward", "occurred_at")


def _read(path: str, what: str, text: tuple[str, ...] = ()):
    from bandits.data.io import collect, resolve_source, scan

    source = resolve_source(path)
    frame = collect(scan(source, text_columns=text), source.label, what)
    if frame.height == 0:
        raise ConfigError(f"{what} '{source.label}' is empty (0 rows)")
    return frame, source


def validate(cfg: DictConfig) -> dict[str, Any]:
    from bandits.deploy.decide import output_kind
    from bandits.deploy.join import DUPLICATES, MISSING, parse_window

    for key in ("decisions", "rewards", "output"):
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"{key} is required: {key}=…")
    decisions = _absolute(cfg.decisions, "decisions")
    rewards = _absolute(cfg.rewards, "rewards")
    for key, path in (("decisions", decisions), ("rewards", rewards)):
        if not any(ch in path for ch in "*?[") and not Path(path).exists():
            raise ConfigError(f"{key}: no such file or directory: {cfg[key]}")
    output = _absolute(cfg.output, "output")
    output_kind(output)
    parse_window(str(cfg.window))
    if cfg.missing not in MISSING:
        raise ConfigError(f"missing={cfg.missing!r}: must be one of {', '.join(MISSING)}")
    if cfg.duplicates not in DUPLICATES:
        raise ConfigError(f"duplicates={cfg.duplicates!r}: must be one of {', '.join(DUPLICATES)}")
    cols = cfg.get("columns") or {}
    unknown = sorted(set(cols) - set(EVENT_COLUMNS))
    if unknown:
        raise ConfigError(
            f"columns: unknown key '{unknown[0]}' (known: {', '.join(EVENT_COLUMNS)})"
        )
    mapping = {str(cols.get(k) or k): k for k in EVENT_COLUMNS}
    as_of = decided_at_from_cfg(cfg.get("as_of"))
    return {
        "decisions": decisions,
        "rewards": rewards,
        "output": output,
        "mapping": mapping,
        "as_of": as_of,
    }


def summary_path(output: str) -> Path:
    """Where the join's counts go: ``<dir>/join_summary.json`` or ``<file>.summary.json``."""
    from bandits.deploy.decide import output_kind

    p = Path(output)
    return (
        p / "join_summary.json"
        if output_kind(output) == "directory"
        else p.with_name(p.name + ".summary.json")
    )


def join_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, Any]:
    import polars as pl

    from bandits.data.io import _replace_atomically, read_metadata
    from bandits.deploy.decide import write_decisions
    from bandits.deploy.join import join_rewards

    s = validate(cfg)
    decisions, source = _read(s["decisions"], "decisions", ("event_id",))
    events, _ = _read(
        s["rewards"], "reward events", tuple(c for c, k in s["mapping"].items() if k == "event_id")
    )
    absent = [c for c in s["mapping"] if c not in events.columns]
    if absent:
        role = s["mapping"][absent[0]]
        raise ConfigError(
            f"columns.{role}={absent[0]}: the reward events have no column '{absent[0]}' "
            f"(columns: {', '.join(events.columns)})"
        )
    events = events.select(list(s["mapping"])).rename(s["mapping"])
    joined, summary = join_rewards(
        decisions,
        events,
        window=str(cfg.window),
        as_of=s["as_of"],
        missing=str(cfg.missing),
        duplicates=str(cfg.duplicates),
    )
    if joined.height == 0:
        raise ConfigError(
            "no decision has a closed attribution window yet (or every one lacks a reward "
            f"with missing=drop): nothing to write ({summary.window_open:,} windows open at "
            f"{summary.as_of}; set as_of= or wait)"
        )
    catalog = None
    metadata: dict[str, Any] = {}
    if source.catalog is not None:
        catalog = (
            pl.read_parquet(source.catalog)
            if str(source.catalog).endswith(".parquet")
            else pl.read_csv(source.catalog)
        )
    if source.metadata is not None:
        metadata = read_metadata(source.metadata)
    metadata["join"] = summary.to_dict()
    kind_is_dir = summary_path(s["output"]).name == "join_summary.json"
    if kind_is_dir and catalog is None:
        raise ConfigError(
            "output is a directory but the decisions have no catalog beside them: write "
            "the decisions as a directory (decide output=dir) or give output=<file>.parquet"
        )
    path, rows = write_decisions(
        s["output"],
        iter([joined]),
        catalog=catalog if catalog is not None else pl.DataFrame(),
        metadata=metadata,
    )
    text = json.dumps(summary.to_dict(), indent=2)
    target = summary_path(s["output"])
    _replace_atomically(target, lambda tmp: Path(tmp).write_text(text, "utf-8"))
    print("\n".join(summary.lines()), file=sys.stderr)
    print(f"joined log: {rows:,} rows → {path} (counts: {target})", file=sys.stderr)
    return summary.to_dict()


@hydra.main(version_base="1.3", config_path="../configs", config_name="join")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, join_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
