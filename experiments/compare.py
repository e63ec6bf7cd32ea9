"""The ``compare`` app: does hyper-personalization beat retargeting — for whom, by how much,
how sure? Runs the personalization ladder and reports verdicts to MLflow.

    python -m experiments.compare
    python -m experiments.compare experiment=individualization_wins seed=2
    python -m experiments.compare -m hydra/launcher=local_parallel \
        experiment=retargeting_wins,context_matters seed=1,2
    python -m experiments.compare source=logs logs=path/to/decision_log
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from bandits.errors import ConfigError
from experiments import common

SOURCES = ("simulate", "logs")
#: settings that do not change the result (excluded from the resume hash)
NON_RESULT_KEYS = ("tracking", "resume", "progress", "decision_logs")

METHOD_NOTES = [
    "Each difference is paired: in simulation every policy faces the same users, contexts "
    "and potential outcomes (common random numbers); on logs every policy is scored on the same "
    "rows with doubly robust terms.",
    "Intervals use batch-means standard errors (contiguous blocks of rounds, which stay valid "
    "while a policy is learning) with Student-t quantiles at the level shown next to each "
    "interval.",
    "Verdicts control the family-wise error rate over the policies compared (Holm's method): "
    "'better'/'worse' only when the Holm-adjusted p-value is below alpha; otherwise 'we can't "
    "tell yet'. The interval printed next to a verdict is at its Holm step's level, so it "
    "excludes 0 exactly when the verdict is better/worse. Segment / channel / weather / "
    "daypart tables are adjusted within each dimension.",
    "On logs, a rung whose value the log cannot identify (most of its probability on variants "
    "the logger never showed there, or hardly any effective sample) is 'unsupported', never "
    "better/worse; rare successes widen the interval to at least the rungs' score floors.",
    "The minimum detectable effect uses 80% power; impressions needed scale with the square of "
    "MDE / target lift.",
    "In simulation the 'exact Δ' column is the true difference in expected reward per "
    "impression over the same rounds — the ground truth the verdict is checked against.",
    "Cost: unsubscribes per impression (simulation), or the log's cost column (offline, DR).",
]


def config_hash(cfg: DictConfig, data_fingerprint: str | None = None) -> str:
    """Hash of the resolved configuration minus settings that don't change results; with
    ``source=logs`` also of the data (``data_fingerprint``, computed from the files when
    None), so a rewritten log is a new configuration."""
    data = {k: v for k, v in common.resolved_config(cfg).items() if k not in NON_RESULT_KEYS}
    if cfg.source == "logs":
        from experiments.evaluate import data_fingerprint as fingerprint_of

        data["data_fingerprint"] = data_fingerprint or fingerprint_of(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _ladder(cfg: DictConfig) -> dict[str, Any]:
    from bandits.policies import make_policy

    ladder = common.resolved_config(cfg.ladder) if cfg.ladder else {}
    if len(ladder) < 2:
        raise ConfigError("ladder needs at least two rungs (a baseline and a policy to compare)")
    policies = {}
    for label, spec in ladder.items():
        spec = dict(spec or {})
        name = spec.pop("name", None)
        if not name:
            raise ConfigError(f"ladder.{label} needs a policy 'name'")
        if spec.get("interactions") is not None:
            spec["interactions"] = tuple(spec["interactions"])
        policies[str(label)] = make_policy(str(name), spec)
    if cfg.baseline not in policies:
        raise ConfigError(
            f"baseline '{cfg.baseline}' is not a ladder rung (rungs: {', '.join(policies)})"
        )
    return policies


def validate(cfg: DictConfig):
    if cfg.source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got '{cfg.source}'")
    policies = _ladder(cfg)
    if not 0 < float(cfg.alpha) < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {cfg.alpha}")
    if cfg.source == "simulate":
        from bandits.simulate import Environment, audience_settings_from_dict, problem_spec

        if int(cfg.rounds) <= 0:
            raise ConfigError(f"rounds must be > 0, got {cfg.rounds}")
        audience = audience_settings_from_dict(common.resolved_config(cfg.audience))
        spec = problem_spec(Environment(audience, 0))
        for label, policy in policies.items():  # catalog-dependent settings fail here
            try:
                policy.reset(spec, 0)
            except ConfigError as exc:
                raise ConfigError(f"ladder.{label}: {exc}") from None
        policies = _ladder(cfg)  # fresh, unbound
        return policies, audience, {}
    from bandits.data import load_log
    from experiments.evaluate import _path, print_reordered

    if cfg.logs is None:
        raise ConfigError("source=logs needs logs=PATH (a decision log file or directory)")
    data = load_log(
        _path(cfg.logs, "logs"),
        catalog=_path(cfg.catalog, "catalog"),
        seed=int(cfg.seed),
        **common.log_options(cfg),
    )
    print_reordered(data)
    kept, left_out = _rungs_the_log_supports(cfg, policies, data)
    return kept, data, left_out


def _rungs_the_log_supports(
    cfg: DictConfig, policies: dict[str, Any], data
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ladder rungs that can run on this log (fresh, unbound) and those left out with
    the reason. A rung that needs what the log lacks (a context column such as ``segment``,
    a catalog column such as ``category``) is left out, said in one line; the baseline must
    run, and at least one rung besides it."""
    from bandits.errors import DataError

    spec = data.problem_spec()
    probe = spec.contexts(data.frame.head(min(data.n, 50)))
    left_out = {}
    for label, policy in policies.items():
        try:
            policy.reset(spec, 0)
            policy.action_probs(probe)
        except (ConfigError, DataError) as exc:
            left_out[label] = str(exc)
    if str(cfg.baseline) in left_out:
        raise ConfigError(
            f"baseline '{cfg.baseline}' cannot run on this log: {left_out[str(cfg.baseline)]} "
            "(choose another baseline=, e.g. one of: "
            f"{', '.join(k for k in policies if k not in left_out) or 'none'})"
        )
    if len(policies) - len(left_out) < 2:
        raise ConfigError(
            "no rung besides the baseline can run on this log: "
            + "; ".join(f"{k}: {v}" for k, v in left_out.items())
        )
    if left_out:
        print(
            "left out of the ladder (this log lacks what they need): "
            + "; ".join(f"{k} ({v})" for k, v in left_out.items()),
            file=sys.stderr,
        )
    kept = {k: v for k, v in _ladder(cfg).items() if k not in left_out}
    return kept, left_out


def _finished_run(cfg: DictConfig, digest: str) -> str | None:
    """Id of a FINISHED comparison run with the same config hash, if any (for resume)."""
    import mlflow

    exp = mlflow.get_experiment_by_name(str(cfg.tracking.experiment))
    if exp is None:
        return None
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.config_hash = '{digest}' and attributes.status = 'FINISHED'",
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def compare_job(cfg: DictConfig, parent_run_id: str | None) -> dict[str, Any]:
    policies, source, left_out = validate(cfg)
    from bandits import tracking

    if parent_run_id is None:
        common.tracking_uri(cfg)
    fingerprint = None
    if cfg.source == "logs":
        from experiments.evaluate import data_fingerprint

        fingerprint = data_fingerprint(cfg)
    digest = config_hash(cfg, fingerprint)
    if cfg.resume:
        done = _finished_run(cfg, digest)
        if done:
            print(
                f"already finished in MLflow (config {digest}): run {done} — skipping "
                "(resume=false to run again)",
                file=sys.stderr,
            )
            return {"skipped": done}
    scenario = cfg.audience.name if cfg.source == "simulate" else Path(str(cfg.logs)).name
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=f"compare {scenario} seed={cfg.seed}",
        parent_run_id=parent_run_id,
        tags={
            "run_kind": "compare",
            "source": cfg.source,
            "scenario": str(scenario),
            "baseline": str(cfg.baseline),
            "seed": str(cfg.seed),
            "config_hash": digest,
            **({"data_fingerprint": fingerprint} if fingerprint else {}),
        },
    ) as run_id:
        tracking.log_params(common.resolved_config(cfg))
        tracking.log_text(common.config_yaml(cfg), "config.yaml")
        if cfg.source == "logs":
            from bandits.data.columns import column_table

            tracking.log_text(column_table(source).write_csv(), "tables/columns.csv")
        if cfg.source == "simulate":
            result = _simulate_ladder(cfg, policies, source, run_id, tracking)
        else:
            result = _offline_ladder(cfg, policies, source, tracking, left_out)
        _report(cfg, result, scenario, run_id, tracking)
    return {"run_id": run_id, "verdicts": {c.policy: c.verdict for c in result["comparisons"]}}


def _simulate_ladder(cfg, policies, audience, parent_id, tracking):
    from bandits.compare import compare_to_baseline, group_lifts
    from bandits.simulate.ladder import paired_terms, round_groups, run_ladder

    curves = {}

    def child(label: str, res) -> None:
        every = max(1, int(cfg.rounds) // 200)
        curves[label] = res.curves(every)
        with tracking.run(
            str(cfg.tracking.experiment),
            run_name=label,
            parent_run_id=parent_id,
            tags={"run_kind": "compare_policy", "policy": res.policy, "rung": label},
        ):
            tracking.log_params(
                {
                    "rung": label,
                    "policy": res.policy,
                    "policy_params": res.params,
                    "seed": cfg.seed,
                    "rounds": cfg.rounds,
                }
            )
            tracking.log_metric_series(curves[label])
            tracking.log_metrics(res.summary())
            if cfg.decision_logs:
                tracking.log_parquet(res.log.drop("user_key"), "decision_log/decision_log.parquet")
        print(f"  {label:<14} true value {res.summary()['true_value']:.4f}", file=sys.stderr)

    results = run_ladder(
        audience,
        policies,
        int(cfg.rounds),
        int(cfg.seed),
        eval_rounds=int(cfg.eval_rounds),
        on_policy=child,
    )
    terms = paired_terms(results)
    comps = compare_to_baseline(
        terms,
        str(cfg.baseline),
        alpha=float(cfg.alpha),
        power=float(cfg.power),
        target_lift=float(cfg.target_lift),
        n_blocks=int(cfg.n_blocks),
    )
    groups = group_lifts(terms, str(cfg.baseline), round_groups(results), alpha=float(cfg.alpha))
    return {
        "comparisons": comps,
        "groups": groups,
        "curves": curves,
        "n": int(cfg.rounds),
        "unit": "rounds",
    }


def _offline_ladder(cfg, policies, data, tracking, left_out):
    from bandits.compare import compare_to_baseline, group_lifts
    from bandits.offline.evaluate import describe_estimate, logger_tags
    from bandits.offline.ladder import offline_ladder

    off = cfg.offline
    ladder = offline_ladder(
        data,
        policies,
        train_fraction=float(cfg.train_fraction),
        seed=int(cfg.seed),
        reward_model=str(off.reward_model),
        cross_fit_folds=int(off.cross_fit_folds),
        estimator=str(off.estimator),
        level=1 - float(cfg.alpha),
    )
    terms, groups, test = ladder.terms, ladder.groups, ladder.test
    if test.cutoff is not None:
        tracking.log_params({"split.cutoff": test.cutoff})
    support: dict[str, float] = {}
    tags = {"support_source": ladder.support_source, **logger_tags(data)}
    if left_out:
        tags["ladder.left_out"] = "; ".join(f"{k}: {v}" for k, v in left_out.items())[:5000]
    print(f"  logger: {tags['logger']}", file=sys.stderr)
    if tags["propensity_source"] == "estimated":
        print(
            "  propensities: estimated from the log (no propensity column): "
            + tags.get("propensity_model", "a cross-fitted model of the logged action"),
            file=sys.stderr,
        )
    print(f"  support of each rung on {test.n:,} evaluation rows:", file=sys.stderr)
    for label, est in ladder.estimates.items():
        d = est.diagnostics
        for key in ("ess", "max_weight", "mean_weight", "unsupported_target_mass"):
            if key in d:
                support[f"{label}.{key}"] = float(d[key])
        tags[f"evidence.{label}"] = est.evidence
        if est.evidence_reason:
            tags[f"evidence.{label}.reason"] = est.evidence_reason[:5000]
        print(f"  {label:<14} {describe_estimate(est)}", file=sys.stderr)
        if est.evidence_reason:
            print(f"  {'':<14} {est.evidence}: {est.evidence_reason}", file=sys.stderr)
    for warning in dict.fromkeys(w for e in ladder.estimates.values() for w in e.warnings):
        print(f"  warning: {warning}", file=sys.stderr)
    tracking.log_metrics(support)
    tracking.log_tags(tags)
    tracking.log_input(
        data.frame.head(0) if data.n > 5_000_000 else data.frame,
        name=Path(str(data.source)).name or "decision_log",
        source=str(data.source),
        context="comparison",
    )
    comps = compare_to_baseline(
        terms,
        str(cfg.baseline),
        alpha=float(cfg.alpha),
        power=float(cfg.power),
        target_lift=float(cfg.target_lift),
        n_blocks=int(cfg.n_blocks),
    )
    lifts = group_lifts(terms, str(cfg.baseline), groups, alpha=float(cfg.alpha))
    return {"comparisons": comps, "groups": lifts, "curves": {}, "n": test.n, "unit": "logged rows"}


def _report(cfg, result, scenario, run_id, tracking) -> None:
    import polars as pl

    from bandits.compare import comparisons_frame, headline
    from bandits.report import plot_group_heatmap, plot_lifts, plot_online_curves, plot_tradeoff
    from bandits.report_html import figure_png, write_report

    comps = result["comparisons"]
    focus = [f for f in cfg.focus if f in {c.policy for c in comps}] or [c.policy for c in comps]
    sentence = headline(comps, focus)
    table = comparisons_frame(comps)
    tags = {"headline": sentence}
    metrics: dict[str, float] = {}
    for c in comps:
        tags[f"verdict.{c.policy}"] = c.verdict
        for key in (
            "value",
            "diff",
            "relative_lift",
            "ci_low",
            "ci_high",
            "p_value",
            "p_adjusted",
            "mde",
            "rounds_needed",
            "true_diff",
            "cost",
            "cost_diff",
            "ci_level",
        ):
            v = getattr(c, key)
            if v is not None:
                metrics[f"{c.policy}.{key}"] = float(v)
    metrics[f"{cfg.baseline}.value"] = comps[0].baseline_value
    if comps[0].baseline_cost is not None:
        metrics[f"{cfg.baseline}.cost"] = comps[0].baseline_cost
    tracking.log_tags(tags)
    tracking.log_metrics(metrics)
    tracking.log_text(table.write_csv(), "tables/comparisons.csv")
    tracking.log_text(result["groups"].write_csv(), "tables/group_lifts.csv")

    figures = {}
    if result["curves"]:
        figures["Cumulative reward, regret and unsubscribes"] = plot_online_curves(
            result["curves"], title=f"{scenario}: the ladder on the same audience"
        )
    figures["Lift over the baseline"] = plot_lifts(table, title=f"vs {cfg.baseline}")
    if result["groups"].height:
        figures["Lift by segment, channel, weather and daypart"] = plot_group_heatmap(
            result["groups"].filter(pl.col("verdict") != "too few rounds")
        )
    if comps[0].cost is not None:
        points = pl.DataFrame(
            [{"policy": c.policy, "value": c.value, "cost": c.cost} for c in comps]
            + [
                {
                    "policy": cfg.baseline,
                    "value": comps[0].baseline_value,
                    "cost": comps[0].baseline_cost,
                }
            ]
        )
        figures["Reward against unsubscribes"] = plot_tradeoff(points)
    pngs = {name: figure_png(fig) for name, fig in figures.items()}  # rendered once
    for name, png in pngs.items():
        tracking.log_bytes(png, f"plots/{name.split(',')[0].lower().replace(' ', '_')}.png")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_report(
            Path(tmp) / "report.html",
            title=f"Does hyper-personalization beat {cfg.baseline}? — {scenario}",
            subtitle=(
                f"source: {cfg.source}; {result['n']:,} {result['unit']} per policy; "
                f"seed {cfg.seed}; baseline: {cfg.baseline}; run {run_id}"
            ),
            headline=sentence,
            comparisons=comps,
            figures=pngs,
            groups=result["groups"],
            focus=focus,
            method_notes=METHOD_NOTES,
        )
        import mlflow

        mlflow.log_artifact(str(path))
    print(f"\nVERDICT ({scenario}, vs {cfg.baseline}): {sentence}", file=sys.stderr)
    for c in comps:
        print(f"  - {c.sentence()}", file=sys.stderr)
    uri = tracking.artifact_uri(run_id, "report.html")
    print(
        f"\nReport: {uri}\nMLflow UI: mlflow ui --backend-store-uri "
        f"{mlflow.get_tracking_uri()} --host 127.0.0.1  (experiment '{cfg.tracking.experiment}',"
        f" run {run_id})",
        file=sys.stderr,
    )


@hydra.main(version_base="1.3", config_path="../configs", config_name="compare")
def main(cfg: DictConfig) -> Any:
    return common.run_job(cfg, compare_job)


if __name__ == "__main__":
    common.check_group_choices(sys.argv[1:])
    main()
    sys.exit(common.exit_status())
