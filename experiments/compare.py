"""The ``compare`` app: does hyper-personalization beat retargeting — for whom, by how much,
how sure? Runs the personalization ladder and reports verdicts to MLflow.

    python -m experiments.compare
    python -m experiments.compare experiment=individualization_wins seed=2
    python -m experiments.compare -m hydra/launcher=local_parallel \
        experiment=retargeting_wins,context_matters seed=1,2
    python -m experiments.compare source=logs logs=path/to/decision_log
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from bandits.errors import ConfigError
from experiments import common

#: what a simulated replication's numbers depend on (its reuse key; see replication_key)
REPLICATION_KEYS = ("source", "audience", "ladder", "rounds", "eval_rounds", "n_blocks", "seed")


def replication_key(cfg: DictConfig) -> str:
    """Hash of what one simulated replication depends on (:data:`REPLICATION_KEYS` and the
    replication summary's format): not the number of replications, nor the settings of the
    statistics (alpha, baseline, guardrail, …), so a finished replication is reused by any
    comparison that would compute it again."""
    from bandits.simulate.replications import FORMAT

    resolved = common.resolved_config(cfg)
    data = {k: resolved.get(k) for k in REPLICATION_KEYS}
    data["format"] = FORMAT
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def decision_settings(cfg: DictConfig) -> dict[str, Any]:
    """The keywords of :func:`bandits.compare_policies` that decide (baseline, alpha, …)."""
    from bandits.experiment import Guardrail

    return {
        "baseline": str(cfg.baseline),
        "alpha": float(cfg.alpha),
        "power": float(cfg.power),
        "target_lift": float(cfg.target_lift),
        "focus": [str(f) for f in cfg.focus],
        "versus": [str(v) for v in (cfg.get("versus") or [])],
        "guardrail": Guardrail.from_settings(
            common.resolved_config(cfg.guardrail) if cfg.get("guardrail") else {}
        ),
    }


def _ladder(cfg: DictConfig) -> dict[str, Any]:
    """The ladder's policies (rung label → unbound policy), checked against the baseline."""
    from bandits.experiment import check_ladder, ladder_from_settings

    policies = ladder_from_settings(common.resolved_config(cfg.ladder) if cfg.ladder else {})
    focus = [str(f) for f in cfg.focus]
    default = common.primary_default("compare", "focus")
    check_ladder(policies, str(cfg.baseline), focus if focus != default else ())
    return policies


def validate(cfg: DictConfig) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """Check the config (and load the log) before any run exists: (source, the rungs it
    can run, the rungs left out with the reason)."""
    from bandits.experiment import LoggedSource, SimulatedSource

    policies = _ladder(cfg)
    if cfg.source == "simulate":
        from bandits.simulate import audience_settings_from_dict

        decision_settings(cfg)  # the guardrail's values
        source: Any = SimulatedSource(
            audience_settings_from_dict(common.resolved_config(cfg.audience)),
            rounds=int(cfg.rounds),
            seed=int(cfg.seed),
            replications=cfg.replications,
            eval_rounds=int(cfg.eval_rounds),
            n_blocks=int(cfg.n_blocks),
            n_jobs=cfg.get("n_jobs", 1),
        )
        if common.is_multirun():
            source = dataclasses.replace(source, n_jobs=1)  # the sweep's jobs run in parallel
        return source, *source.check(policies, str(cfg.baseline))
    from experiments.evaluate import load_logged

    if cfg.logs is None:
        raise ConfigError("source=logs needs logs=PATH (a decision log file or directory)")
    off = cfg.offline
    source = LoggedSource(
        load_logged(cfg),
        seed=int(cfg.seed),
        train_fraction=float(cfg.train_fraction),
        estimator=str(off.estimator),
        reward_model=str(off.reward_model),
        cross_fit_folds=int(off.cross_fit_folds),
        n_blocks=int(cfg.n_blocks),
        name=Path(str(cfg.logs)).name,
    )
    kept, left_out = source.check(policies, str(cfg.baseline))
    if left_out:
        print(source.left_out_line(left_out), file=sys.stderr)
    return source, kept, left_out


def _replicated(cfg: DictConfig, source: Any, run_id: str) -> Any:
    """The simulated source with every replication a child run (resume: reused ones)."""
    from bandits.tracking import results

    if common.is_multirun() and cfg.get("n_jobs", 1) != 1:
        print("replications run in this sweep job's process (n_jobs=1)", file=sys.stderr)

    def progress(rep: Any) -> None:
        if cfg.progress:
            values = "  ".join(f"{k} {r.value:.4f}" for k, r in rep.rungs.items())
            print(f"  replication {rep.index:>3} ({rep.seconds:.1f} s): {values}", file=sys.stderr)

    source = results.with_replication_runs(
        source,
        experiment=str(cfg.tracking.experiment),
        parent_run_id=run_id,
        key=replication_key(cfg),
        resume=bool(cfg.resume),
        on_done=progress,
    )
    print(f"estimand: {source.estimand}.\n{source.plan()}", file=sys.stderr)
    return source


def compare_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, Any]:
    source, policies, left_out = validate(cfg)
    from bandits import tracking
    from bandits.experiment import compare_policies
    from bandits.tracking import results
    from experiments.evaluate import data_fingerprint

    fingerprint = data_fingerprint(cfg) if cfg.source == "logs" else None
    digest = common.config_digest(cfg, fingerprint)
    done = common.already_finished(cfg, digest, parent_run_id)
    if done:
        return {"skipped": done}
    if parent_run_id is None:
        common.tracking_uri(cfg)
    experiment = str(cfg.tracking.experiment)
    with tracking.run(
        experiment,
        run_name=f"compare {source.scenario} seed={cfg.seed}",
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "compare",
            "source": cfg.source,
            "scenario": str(source.scenario),
            "baseline": str(cfg.baseline),
            "seed": str(cfg.seed),
            "config_hash": digest,
            **({"data_fingerprint": fingerprint} if fingerprint else {}),
        },
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        if cfg.source == "simulate":
            source = _replicated(cfg, source, run_id)
        result = compare_policies(source, policies, **decision_settings(cfg), left_out=left_out)
        if result.evidence_lines():
            print("\n".join(result.evidence_lines()), file=sys.stderr)
        results.log_comparison(result, experiment=experiment, run_id=run_id)
        report = results.report_lines(run_id, experiment)
        print("\n".join([*result.verdict_lines(), *report]), file=sys.stderr)
    return {"run_id": run_id, "verdicts": result.verdicts}


@hydra.main(version_base="1.3", config_path="../configs", config_name="compare")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, compare_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
