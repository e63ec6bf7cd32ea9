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
import math
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
NON_RESULT_KEYS = ("tracking", "resume", "progress", "decision_logs", "n_jobs")
#: what a simulated replication's numbers depend on (its reuse key; see replication_key)
REPLICATION_KEYS = ("source", "audience", "ladder", "rounds", "eval_rounds", "n_blocks", "seed")

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

#: how to read a simulated comparison (over replications)
SIMULATION_NOTES = [
    "The unit of evidence is a replication: one independent run of the whole campaign, with a "
    "fresh draw of the audience (its world, users and days) and fresh policy seeds, all from "
    "the root seed. Within a replication every rung faces the same users, contexts and "
    "potential outcomes (common random numbers); each rung draws its own policy seed, so the "
    "same policy listed twice is a genuine A/A.",
    "Each replication contributes its exact Δ: the difference in the simulator's expected "
    "reward of the variants the rungs chose, averaged over the campaign, so response noise "
    "does not blur it. The interval is Student t over the replications (R - 1 degrees of "
    "freedom).",
    "One family for the whole ladder: every pair of rungs (each rung against the baseline, the "
    "focus rungs against retargeting and segments, and the pairs that say which rung is best — "
    "any rung could be) is tested with Holm's method at the family-wise error rate alpha. The "
    "interval printed next to a verdict is the Holm-consistent one that decided it (at its "
    "Holm step's level, not Bonferroni's): it excludes 0 exactly when the verdict is "
    "better/worse.",
    "Who gains, who loses: Holm's method over all the cells of the segment / channel / weather "
    "/ daypart tables at once (every rung and dimension), on each cell's exact Δ per "
    "replication; with one replication the tables are exploratory and make no claims.",
    "Cost: the exact expected unsubscribes per 1,000 impressions, with intervals over the "
    "replications. The unsubscribe budget (guardrail) is checked with simultaneous "
    "(Bonferroni) intervals: 'exceeds' when the whole interval is over budget, 'within' when it "
    "is all under, else 'may exceed'.",
    "Diagnostic: the standard error one run's batch means would have claimed for the realised "
    "Δ, next to the spread across replications. Batch means capture the noise within one run "
    "only, so one run's interval answers a question about that run, not about the policy.",
    "The minimum detectable effect uses 80% power; the replications needed scale with the "
    "square of MDE / target lift.",
]

#: why there is no interval over replications with one replication
ONE_REPLICATION = (
    "one replication: no interval over replications can be formed, so the verdict falls back "
    "to this run's within-run batch means (they capture the noise within one run, not between "
    "runs of the policy); set replications >= 2 for a verdict about the policies"
)


def config_hash(cfg: DictConfig, data_fingerprint: str | None = None) -> str:
    """Hash of the resolved configuration minus settings that don't change results; with
    ``source=logs`` also of the data (``data_fingerprint``, computed from the files when
    None), so a rewritten log is a new configuration."""
    data = {k: v for k, v in common.resolved_config(cfg).items() if k not in NON_RESULT_KEYS}
    if cfg.source == "logs":
        from experiments.evaluate import data_fingerprint as fingerprint_of

        data["data_fingerprint"] = data_fingerprint or fingerprint_of(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def _whole(cfg: DictConfig, key: str, low: int, what: str) -> int:
    """``cfg[key]`` as a whole number ≥ ``low`` (one-line ConfigError otherwise)."""
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key} must be a whole number >= {low} ({what}), got {value!r}")
    return int(value)


def _guardrail(cfg: DictConfig):
    from bandits.compare import Guardrail

    g = cfg.get("guardrail") or {}
    known = ("max_unsubscribe_per_1000", "max_extra_unsubscribe_per_1000")
    unknown = sorted(set(g) - set(known))
    if unknown:
        raise ConfigError(f"guardrail: unknown key '{unknown[0]}' (known: {', '.join(known)})")
    values = {}
    for key in known:
        v = g.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            raise ConfigError(f"guardrail.{key} must be a number >= 0 or null, got {v!r}")
        values[key] = None if v is None else float(v)
    return Guardrail(values["max_unsubscribe_per_1000"], values["max_extra_unsubscribe_per_1000"])


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
        _whole(cfg, "replications", 1, "independent runs of the campaign")
        n_jobs = cfg.get("n_jobs", 1)
        if n_jobs != -1:
            _whole(cfg, "n_jobs", 1, "worker processes, or -1 for one per core")
        _guardrail(cfg)
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
    from bandits import tracking

    runs = tracking.finished_runs(str(cfg.tracking.experiment), {"config_hash": digest}, 1)
    return runs[0][0] if runs else None


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
            print(
                "replications apply to simulation only: on a log the verdict is about fixed "
                "policies' value on this log's population (one log, no replications)",
                file=sys.stderr,
            )
            result = _offline_ladder(cfg, policies, source, tracking, left_out)
        _report(cfg, result, scenario, run_id, tracking)
    return {"run_id": run_id, "verdicts": {c.policy: c.verdict for c in result["comparisons"]}}


def estimand(rounds: int, replications: int) -> str:
    """The question a simulated comparison answers, in one line."""
    runs = (
        f"over {replications} independent runs"
        if replications > 1
        else "from one run (no interval over runs: within-run batch means)"
    )
    return (
        f"expected reward per impression of each policy over a {rounds:,}-impression campaign "
        f"on this audience (each run a fresh draw of its world, users and days), {runs}"
    )


#: each replication's summary, an artifact of its child run (what resume reads back)
_REP = "replication.json"


def _reusable(cfg: DictConfig, key: str, tracking) -> dict[int, Any]:
    """Finished replications of an earlier comparison with the same replication key, by
    index (the newest of each), read back from their ``replication.json``."""
    from bandits.simulate.replications import Replication

    if not cfg.resume:
        return {}
    found: dict[int, Any] = {}
    wanted = set(range(int(cfg.replications)))
    runs = tracking.finished_runs(
        str(cfg.tracking.experiment),
        {"run_kind": "compare_replication", "replication_key": key},
    )
    for run_id, tags in runs:
        index = int(tags.get("replication", -1))
        if index in wanted and index not in found:
            try:
                found[index] = (run_id, Replication.from_dict(tracking.load_dict(run_id, _REP)))
            except (OSError, ValueError, KeyError):
                continue  # unreadable or another format: run it again
    return found


def _log_replication(cfg, rep, parent_id, key, tracking, resumed_from: str | None = None) -> None:
    """One replication as a child run of the comparison: its seed, per-rung exact value,
    realised reward and unsubscribes as metrics, its summary as ``replication.json``."""
    tags = {
        "run_kind": "compare_replication",
        "replication": str(rep.index),
        "replication_key": key,
        "seed": str(cfg.seed),
    }
    if resumed_from:
        tags["resumed_from"] = resumed_from
    with tracking.run(
        str(cfg.tracking.experiment),
        run_name=f"replication {rep.index}",
        parent_run_id=parent_id,
        tags=tags,
    ):
        tracking.log_params(
            {"replication": rep.index, "seed": cfg.seed, "rounds": rep.rounds, "key": key}
        )
        metrics = {"seconds": rep.seconds}
        for label, r in rep.rungs.items():
            metrics[f"{label}.value"] = r.value
            metrics[f"{label}.mean_reward"] = r.observed
            metrics[f"{label}.unsubscribes_per_1000"] = 1000 * r.cost
            metrics[f"{label}.final_policy_value"] = r.summary.get("final_policy_value", math.nan)
        tracking.log_metrics(metrics)
        tracking.log_dict(rep.to_dict(), _REP)


def _simulate_ladder(cfg, policies, audience, parent_id, tracking):
    from bandits.compare import (
        check_guardrail,
        compare_family,
        ladder_headline,
        ladder_pairs,
    )
    from bandits.simulate.replications import ReplicatedLadder, run_replications

    n_reps = int(cfg.replications)
    key = replication_key(cfg)
    n_jobs = int(cfg.get("n_jobs", 1))
    if common.is_multirun() and n_jobs != 1:
        n_jobs = 1  # the sweep's jobs already run in parallel
        print("replications run in this sweep job's process (n_jobs=1)", file=sys.stderr)
    reused = _reusable(cfg, key, tracking)
    todo = [i for i in range(n_reps) if i not in reused]
    print(f"estimand: {estimand(int(cfg.rounds), n_reps)}.", file=sys.stderr)
    print(
        f"replications: {n_reps}"
        + (f" ({len(reused)} reused from finished runs)" if reused else "")
        + (f", {len(todo)} to run on {n_jobs} worker(s)" if todo else ""),
        file=sys.stderr,
    )
    tracking.log_tags({"replications": str(n_reps), "replication_key": key})
    for _, (run_id, rep) in sorted(reused.items()):
        _log_replication(cfg, rep, parent_id, key, tracking, resumed_from=run_id)

    def done(rep) -> None:
        _log_replication(cfg, rep, parent_id, key, tracking)
        if cfg.progress:
            values = "  ".join(f"{k} {r.value:.4f}" for k, r in rep.rungs.items())
            print(f"  replication {rep.index:>3} ({rep.seconds:.1f} s): {values}", file=sys.stderr)

    fresh = run_replications(
        audience,
        policies,
        int(cfg.rounds),
        int(cfg.seed),
        todo,
        eval_rounds=int(cfg.eval_rounds),
        n_blocks=int(cfg.n_blocks),
        n_jobs=n_jobs,
        on_done=done,
    )
    reps = sorted([*fresh, *(rep for _, rep in reused.values())], key=lambda r: r.index)
    ladder = ReplicatedLadder(tuple(reps))
    if not ladder.over_replications:
        print(f"note: {ONE_REPLICATION}.", file=sys.stderr)

    curves = {}
    for label in ladder.labels:
        first = reps[0].rungs[label]
        curves[label] = ladder.mean_curves(label)
        values = ladder.per_replication(label)
        unsubs = 1000 * float(ladder.per_replication(label, "cost").mean())
        with tracking.run(
            str(cfg.tracking.experiment),
            run_name=label,
            parent_run_id=parent_id,
            tags={"run_kind": "compare_policy", "policy": first.policy, "rung": label},
        ):
            tracking.log_params(
                {
                    "rung": label,
                    "policy": first.policy,
                    "policy_params": first.params,
                    "seed": cfg.seed,
                    "rounds": cfg.rounds,
                    "replications": n_reps,
                }
            )
            tracking.log_metric_series(curves[label])
            tracking.log_metrics(
                {
                    **ladder.mean_summary(label),
                    "value": float(values.mean()),
                    "value_sd_over_replications": float(values.std(ddof=1)) if n_reps > 1 else 0,
                    "unsubscribes_per_1000": unsubs,
                }
            )
        spread = f" (sd over runs {values.std(ddof=1):.4f})" if n_reps > 1 else ""
        print(
            f"  {label:<14} value {values.mean():.4f}{spread}, unsubscribes {unsubs:.2f} per 1,000",
            file=sys.stderr,
        )

    baseline = str(cfg.baseline)
    values = ladder.point_values()
    family = compare_family(
        ladder.evidence(ladder_pairs(ladder.labels, baseline)),
        values,
        costs=ladder.point_costs(),
        alpha=float(cfg.alpha),
        power=float(cfg.power),
        target_lift=float(cfg.target_lift),
        replications=n_reps if ladder.over_replications else 0,
        unit="replications" if ladder.over_replications else "rounds",
    )
    guardrail = _guardrail(cfg)
    own, vs = ladder.cost_evidence(baseline)
    checks = check_guardrail(own, vs, baseline, guardrail, alpha=float(cfg.alpha))
    family = [_with_guardrail(c, checks) if c.baseline == baseline else c for c in family]
    focus = [f for f in cfg.focus if f in values]
    sentence = ladder_headline(
        family,
        baseline,
        values,
        focus=focus,
        versus=[str(v) for v in (cfg.get("versus") or [])],
        guardrails=checks,
        guardrail=guardrail,
    )
    return {
        "comparisons": [c for c in family if c.baseline == baseline],
        "pairs": [c for c in family if c.baseline != baseline],
        "groups": ladder.group_lifts(baseline, alpha=float(cfg.alpha)),
        "curves": curves,
        "n": int(cfg.rounds),
        "unit": "rounds",
        "headline": sentence,
        "guardrails": checks,
        "guardrail": guardrail,
        "replications": n_reps,
        "estimand": estimand(int(cfg.rounds), n_reps),
        "best": _best(family, values),
    }


def _with_guardrail(c, checks):
    import dataclasses

    g = checks.get(c.policy)
    if g is None:
        return c
    return dataclasses.replace(c, guardrail=g.status, guardrail_note=g.note)


def _best(family, values) -> dict[str, str]:
    from bandits.compare import best_rung

    best, unresolved = best_rung(family, values)
    return {"best_rung": best, "best_rung.clear": str(not unresolved).lower()}


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


_METRIC_KEYS = (
    "value",
    "diff",
    "relative_lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "mde",
    "true_diff",
    "cost",
    "cost_diff",
    "ci_level",
    "observed_diff",
    "within_stderr",
    "stderr",
)


def _comparison_metrics(c, prefix: str) -> dict[str, float]:
    metrics = {
        f"{prefix}.{key}": float(getattr(c, key))
        for key in _METRIC_KEYS
        if getattr(c, key) is not None
    }
    needed = "replications_needed" if c.unit == "replications" else "rounds_needed"
    metrics[f"{prefix}.{needed}"] = float(c.rounds_needed)
    return metrics


def _report(cfg, result, scenario, run_id, tracking) -> None:
    import polars as pl

    from bandits.compare import comparisons_frame, headline
    from bandits.report import plot_group_heatmap, plot_lifts, plot_online_curves, plot_tradeoff
    from bandits.report_html import figure_png, write_report

    comps = result["comparisons"]
    pairs = result.get("pairs", [])
    simulated = "estimand" in result
    focus = [f for f in cfg.focus if f in {c.policy for c in comps}] or [c.policy for c in comps]
    sentence = result.get("headline") or headline(comps, focus)
    table = comparisons_frame(comps)
    tags = {"headline": sentence}
    metrics: dict[str, float] = {}
    for c in comps:
        tags[f"verdict.{c.policy}"] = c.verdict
        metrics.update(_comparison_metrics(c, c.policy))
    for c in pairs:
        tags[f"verdict.{c.policy}.vs.{c.baseline}"] = c.verdict
        metrics.update(_comparison_metrics(c, f"{c.policy}.vs.{c.baseline}"))
    metrics[f"{cfg.baseline}.value"] = comps[0].baseline_value
    if comps[0].baseline_cost is not None:
        metrics[f"{cfg.baseline}.cost"] = comps[0].baseline_cost
    if simulated:
        tags["estimand"] = result["estimand"]
        tags.update(result["best"])
        for rung, g in result["guardrails"].items():
            tags[f"guardrail.{rung}"] = g.status
            metrics[f"{rung}.unsubscribes_per_1000"] = g.rate[0]
        metrics["replications"] = float(result["replications"])
    tracking.log_tags(tags)
    tracking.log_metrics(metrics)
    tracking.log_text(table.write_csv(), "tables/comparisons.csv")
    if pairs:
        tracking.log_text(comparisons_frame(pairs).write_csv(), "tables/pairs.csv")
    tracking.log_text(result["groups"].write_csv(), "tables/group_lifts.csv")

    figures = {}
    if result["curves"]:
        runs = f" (mean over {result['replications']} runs)" if simulated else ""
        figures["Cumulative reward, regret and unsubscribes"] = plot_online_curves(
            result["curves"], title=f"{scenario}: the ladder on the same audience{runs}"
        )
    figures["Lift over the baseline"] = plot_lifts(table, title=f"vs {cfg.baseline}")
    if result["groups"].height:
        family = "Holm over every cell shown" if simulated else "Holm within each dimension"
        shown = result["groups"].filter(~pl.col("verdict").is_in(["too few rounds"]))
        if shown.height:
            figures["Lift by segment, channel, weather and daypart"] = plot_group_heatmap(
                shown, family=family
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
    if simulated:
        runs = f"{result['replications']} replication" + ("s" if result["replications"] > 1 else "")
        subtitle = (
            f"source: simulate; {result['n']:,} rounds per policy per run; {runs}; seed "
            f"{cfg.seed}; baseline: {cfg.baseline}; run {run_id}"
        )
    else:
        subtitle = (
            f"source: {cfg.source}; {result['n']:,} {result['unit']} per policy; "
            f"seed {cfg.seed}; baseline: {cfg.baseline}; run {run_id}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = write_report(
            Path(tmp) / "report.html",
            title=f"Does hyper-personalization beat {cfg.baseline}? — {scenario}",
            subtitle=subtitle,
            headline=sentence,
            comparisons=comps,
            figures=pngs,
            groups=result["groups"],
            focus=focus,
            method_notes=SIMULATION_NOTES if simulated else METHOD_NOTES,
            estimand=result.get("estimand", ""),
            pairs=pairs,
            guardrails=result.get("guardrails"),
            guardrail_budget=(
                result["guardrail"].describe(str(cfg.baseline)) if simulated else None
            ),
            group_note=(
                (
                    "Claims control the family-wise error rate over every cell of every table "
                    "below at once (Holm), on each cell's exact Δ per replication."
                    if result["replications"] > 1
                    else "Exploratory: with one replication no interval over runs exists; "
                    "the tables show point differences and make no better/worse claims."
                )
                if simulated
                else "Claims are adjusted within each dimension (Holm)."
            ),
            notes=[ONE_REPLICATION] if simulated and result["replications"] == 1 else [],
        )
        import mlflow

        mlflow.log_artifact(str(path))
    where = f", {result['replications']} replications" if simulated else ""
    print(f"\nVERDICT ({scenario}{where}, vs {cfg.baseline}): {sentence}", file=sys.stderr)
    if simulated:
        print(f"  estimand: {result['estimand']}.", file=sys.stderr)
    for c in comps:
        print(f"  - {c.sentence()}", file=sys.stderr)
    if pairs:
        print("  the rest of the ladder (same family):", file=sys.stderr)
        for c in pairs:
            print(f"  - {c.sentence()}", file=sys.stderr)
    for g in result.get("guardrails", {}).values():
        print(f"  unsubscribe budget, {g.rung}: {g.status} — {g.note}", file=sys.stderr)
    if simulated and result["replications"] > 1:
        ratios = [
            c.stderr / c.within_stderr
            for c in comps
            if c.within_stderr and math.isfinite(c.stderr) and c.within_stderr > 0
        ]
        if ratios:
            root = math.sqrt(result["replications"])
            print(
                "  diagnostic: runs of the same campaign differ in their exact Δ by "
                f"{min(ratios) * root:.1f}–{max(ratios) * root:.1f}x the standard error one "
                "run's batch means claim (they see the noise within one run only)",
                file=sys.stderr,
            )
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
