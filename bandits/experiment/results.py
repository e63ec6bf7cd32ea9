"""Typed results of the three jobs (frozen dataclasses): what a simulation, an evaluation
and a comparison found, with the words that go with it (console lines, estimand, method
notes) derived from the settings that produced it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bandits.compare import Guardrail, GuardrailCheck, PolicyComparison, comparisons_frame
from bandits.features import FeatureSchema

if TYPE_CHECKING:
    from bandits.data.contract import LoggedData
    from bandits.offline.evaluate import PolicyEvaluation
    from bandits.offline.replay import ReplayResult
    from bandits.ope import Estimate
    from bandits.policies.base import Policy
    from bandits.simulate.online import OnlineResult
    from bandits.simulate.replications import Replication


# ----- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationResult:
    """One policy's online run on the synthetic audience (:func:`run_simulation`).

    ``online`` holds the per-round arrays ``(rounds,)`` (realised and exact expected reward,
    the oracle's, unsubscribes) and, when kept, the decision log; ``log`` is that log as
    written (one row per message sent; without ``user_key`` unless ``include_user_key``),
    None when it was streamed instead of kept. ``summary`` are the final metrics
    (:meth:`~bandits.simulate.OnlineResult.summary`: exact ``true_value``, ``regret``,
    ``mean_reward`` with a 95% CLT interval, …); ``seconds`` the wall time of the run;
    ``trained`` the policy as it ended the run (bound and learned: what
    :func:`bandits.tracking.policy_model.log_policy_model` deploys).
    """

    policy: str
    audience: str
    rounds: int
    seed: int
    eval_rounds: int
    params: dict[str, Any]
    summary: dict[str, float]
    catalog: pl.DataFrame
    features: FeatureSchema
    reward: str
    seconds: float
    online: OnlineResult
    log: pl.DataFrame | None = None
    trained: Policy | None = None

    def curves(self, every: int | None = None) -> pl.DataFrame:
        """Cumulative curves every ``every`` rounds (default: about 200 points)."""
        return self.online.curves(every or max(1, self.rounds // 200))

    @property
    def metadata(self) -> dict[str, Any]:
        """The log directory's ``metadata.json``: the feature schema (so a reader featurises
        the context exactly as the policy did), the reward, the rounds and the policy."""
        return {
            "features": self.features.to_dict(),
            "reward": self.reward,
            "rounds": self.rounds,
            "policy": self.policy,
        }

    def _kept_log(self) -> pl.DataFrame:
        if self.log is None:
            raise ValueError(
                "this simulation did not keep its decision log (keep_log=False): run it "
                "with keep_log=True to turn it into LoggedData or a log directory"
            )
        return self.log

    def to_logged_data(self) -> LoggedData:
        """The decision log as validated :class:`~bandits.data.LoggedData` with its catalog
        and feature schema (what :func:`bandits.data.load_log` reads from
        :meth:`write_log_dir`'s directory)."""
        from bandits.data import load_log

        return load_log(self._kept_log(), catalog=self.catalog, features=self.features)

    def write_log_dir(self, directory: str | Path) -> Path:
        """Write the log directory (``decision_log.parquet``, ``catalog.parquet``,
        ``metadata.json``; each atomically) — valid input to ``evaluate`` and
        ``compare source=logs`` as is; returns the directory."""
        from bandits.data import write_log_dir

        return write_log_dir(directory, self._kept_log(), self.catalog, metadata=self.metadata)

    def line(self) -> str:
        """The console line: true value, oracle, mean reward with its interval, regret."""
        s = self.summary
        return (
            f"{self.policy}: true value {s['true_value']:.4f} "
            f"(oracle {s['oracle_value']:.4f}), mean reward {s['mean_reward']:.4f} "
            f"[{s['mean_reward_ci_low']:.4f}, {s['mean_reward_ci_high']:.4f}], "
            f"regret {s['regret']:.1f}, unsubscribe rate {s['unsubscribe_rate']:.4f}"
        )


# ----- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationResult:
    """A policy evaluated on a decision log (:func:`evaluate_log`).

    ``mode``: ``fixed`` (the policy as given, every row), ``train`` (trained on the first
    ``train_fraction`` of rows, evaluated on the rest) or ``replay`` (a learning policy
    replayed through the log); ``streamed`` for a log read in batches. ``data`` is the
    whole log (a streamed log: its first batch), ``evaluated`` the rows the estimates are
    on; ``evaluation`` the off-policy estimates (None in replay mode), ``replay`` the
    replay's result (replay mode only); ``fitted_policy`` the policy as evaluated (bound,
    trained or replayed).
    """

    policy: str
    mode: str
    params: dict[str, Any]
    data: LoggedData
    evaluated: LoggedData
    log_rows: int
    evaluation: PolicyEvaluation | None = None
    replay: ReplayResult | None = None
    streamed: bool = False
    fitted_policy: Policy | None = None

    @property
    def mode_label(self) -> str:
        return "fixed, streamed" if self.streamed else self.mode

    def metrics(self) -> dict[str, float]:
        """Flat metrics: every estimator's ``<name>.value``, ``.ci_low``, diagnostics, …,
        ``true_value`` when the log carries the simulator's truth, the replay's."""
        out: dict[str, float] = {}
        if self.evaluation is not None:
            out.update(self.evaluation.metrics())
        if self.replay is not None:
            out.update(self.replay.metrics())
        return out

    def tags(self) -> dict[str, str]:
        """``evidence``, ``evidence.reason``, where the support and the propensities came
        from, the logger's description and the data warnings (empty in replay mode)."""
        from bandits.offline.evaluate import logger_tags

        if self.evaluation is None:
            return {}
        level, reason = self.evaluation.evidence
        tags = {
            "evidence": level,
            "evidence.reason": reason or "the log supports the target policy",
            "support_source": self.evaluation.support_source,
            **logger_tags(self.evaluated),
        }
        if self.evaluation.warnings:
            tags["warnings"] = " | ".join(self.evaluation.warnings)[:5000]
        return tags

    def lines(self, run_id: str | None = None) -> list[str]:
        """What the console prints: every estimate with its interval and support, the
        evidence level and what it means, warnings, the truth where known, the replay."""
        from bandits.offline.evaluate import describe_estimate

        lines = [f"{self.policy} ({self.mode_label})" + (f" — run {run_id}" if run_id else "")]
        tags = self.tags()
        if tags:
            lines.append(f"  logger: {tags['logger']}")
            if tags.get("propensity_source") == "estimated":
                lines.append(
                    "  propensities: estimated from the log (no propensity column): "
                    + tags.get("propensity_model", "a cross-fitted model of the logged action")
                )
        if self.evaluation is not None:
            ev = self.evaluation
            ests = list(ev.estimates.values())
            bounds = {(e.bound_low, e.bound_high) for e in ests if not e.identified}
            shared = len(bounds) == 1 and all(not e.identified for e in ests)
            lines += [f"  {describe_estimate(est, bound=not shared)}" for est in ests]
            if shared:
                low, high = bounds.pop()
                lines.append(
                    f"  every interval above is the support bound [{low:.4f}, {high:.4f}]: the "
                    "point values are extrapolations"
                )
            level, reason = ev.evidence
            lines.append(f"  evidence: {level}" + (f" — {reason}" if reason else ""))
            if level == "insufficient":
                lines.append(
                    "  the log cannot identify this policy's value: read the intervals as "
                    "bounds (worst and best case for what the log never shows), not as estimates"
                )
            lines += [f"  warning: {w}" for w in ev.warnings]
            if ev.true_value is not None:
                lines.append(f"  true value (simulator ground truth) {ev.true_value:.4f}")
        if self.replay is not None:
            r = self.replay
            lines.append(
                f"  replay     {r.value:.4f}  [{r.ci_low:.4f}, {r.ci_high:.4f}]  {r.message}"
            )
        return lines


# ----- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RungSummary:
    """One rung of a simulated comparison over its replications: the policy and its
    settings, its curves averaged over the replications (``step`` plus the cumulative
    columns), and ``metrics``: its final metrics averaged over the replications plus
    ``value`` (mean exact reward per impression), ``value_sd_over_replications`` and
    ``unsubscribes_per_1000`` (mean exact)."""

    label: str
    policy: str
    params: dict[str, Any]
    curves: pl.DataFrame
    metrics: dict[str, float]
    replications: int

    def line(self) -> str:
        m = self.metrics
        spread = (
            f" (sd over runs {m['value_sd_over_replications']:.4f})"
            if self.replications > 1
            else ""
        )
        return (
            f"  {self.label:<14} value {m['value']:.4f}{spread}, unsubscribes "
            f"{m['unsubscribes_per_1000']:.2f} per 1,000"
        )


@dataclass(frozen=True)
class LoggedDetails:
    """What a comparison on a log rests on besides the verdicts: the log (``data``), the
    evaluation rows (``test``), each rung's off-policy ``estimates`` with their support
    evidence, where the support came from, the rungs ``left_out`` (with the reason), the
    run ``tags`` (logger, propensities, evidence per rung) and the ``support`` metrics
    (ESS, weights, unsupported mass per rung)."""

    data: LoggedData
    test: LoggedData
    estimates: dict[str, Estimate]
    support_source: str
    left_out: dict[str, str]
    tags: dict[str, str]
    support: dict[str, float]

    def lines(self) -> list[str]:
        """The console's account of the log: the logger, the propensities, every rung's
        estimate with its support and evidence, the data warnings."""
        from bandits.offline.evaluate import describe_estimate

        lines = [
            "replications apply to simulation only: on a log the verdict is about fixed "
            "policies' value on this log's population (one log, no replications)",
            f"  logger: {self.tags['logger']}",
        ]
        if self.tags["propensity_source"] == "estimated":
            lines.append(
                "  propensities: estimated from the log (no propensity column): "
                + self.tags.get("propensity_model", "a cross-fitted model of the logged action")
            )
        lines.append(f"  support of each rung on {self.test.n:,} evaluation rows:")
        for label, est in self.estimates.items():
            lines.append(f"  {label:<14} {describe_estimate(est)}")
            if est.evidence_reason:
                lines.append(f"  {'':<14} {est.evidence}: {est.evidence_reason}")
        warnings = dict.fromkeys(w for e in self.estimates.values() for w in e.warnings)
        lines += [f"  warning: {w}" for w in warnings]
        return lines


@dataclass(frozen=True)
class ComparisonResult:
    """The ladder compared on one source (:func:`compare_policies`).

    ``comparisons``: every rung against the ``baseline``; ``pairs``: the other pairs of the
    same Holm family (simulation: every pair of rungs; empty on a log). Each
    :class:`~bandits.compare.PolicyComparison` carries its verdict and its Holm-consistent
    interval at ``ci_level``; the family-wise error rate is ``alpha`` (``level = 1 -
    alpha`` is the unadjusted level). ``estimand`` is the question answered in one line,
    ``method_notes`` how the numbers were computed (derived from ``alpha``, ``power``, the
    estimator), ``notes`` caveats. ``groups``: the who-gains table (policy, dimension,
    group, diff, interval, verdict), adjusted as ``group_note`` says. ``guardrails``:
    each rung against the unsubscribe ``guardrail``. ``best_rung`` is the rung with the
    highest estimate, ``best_rung_clear`` whether it beats every other rung in the family.

    Simulation: ``rungs`` (per rung: settings, mean curves, final metrics) and the
    ``replications`` behind it (per-replication numbers: :meth:`per_replication`).
    Logs: ``logged`` (the log, the estimates and their support).
    """

    source: str
    scenario: str
    baseline: str
    seed: int
    alpha: float
    power: float
    target_lift: float
    n: int
    unit: str
    estimand: str
    headline: str
    focus: tuple[str, ...]
    comparisons: tuple[PolicyComparison, ...]
    groups: pl.DataFrame
    group_note: str
    group_family: str
    method_notes: tuple[str, ...]
    pairs: tuple[PolicyComparison, ...] = ()
    notes: tuple[str, ...] = ()
    guardrail: Guardrail | None = None
    guardrails: dict[str, GuardrailCheck] = field(default_factory=dict)
    best_rung: str | None = None
    best_rung_clear: bool = False
    rungs: dict[str, RungSummary] = field(default_factory=dict)
    replications: tuple[Replication, ...] = ()
    logged: LoggedDetails | None = None

    @property
    def level(self) -> float:
        """The unadjusted interval level ``1 - alpha`` (Holm-consistent intervals are at
        each comparison's own ``ci_level``, never below it)."""
        return 1.0 - self.alpha

    @property
    def n_replications(self) -> int:
        """Replications behind the verdict (0 on a log)."""
        return len(self.replications)

    @property
    def over_replications(self) -> bool:
        return self.n_replications >= 2

    @property
    def verdicts(self) -> dict[str, str]:
        """Rung → its verdict against the baseline."""
        return {c.policy: c.verdict for c in self.comparisons}

    @property
    def curves(self) -> dict[str, pl.DataFrame]:
        """Rung → its learning curves averaged over the replications (empty on a log)."""
        return {label: r.curves for label, r in self.rungs.items()}

    def table(self) -> pl.DataFrame:
        """One row per comparison with the baseline (every field of PolicyComparison)."""
        return comparisons_frame(self.comparisons)

    def pairs_table(self) -> pl.DataFrame:
        return comparisons_frame(self.pairs)

    def per_replication(self) -> pl.DataFrame:
        """The per-replication numbers: one row per (replication, rung) with the exact
        value and unsubscribes per impression and the realised mean reward."""
        rows = [
            {
                "replication": rep.index,
                "rung": label,
                "value": r.value,
                "observed": r.observed,
                "cost": r.cost,
                "seconds": rep.seconds,
            }
            for rep in self.replications
            for label, r in rep.rungs.items()
        ]
        schema = {"replication": pl.Int64, "rung": pl.String, "value": pl.Float64}
        schema |= {"observed": pl.Float64, "cost": pl.Float64, "seconds": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    @property
    def title(self) -> str:
        return f"Does hyper-personalization beat {self.baseline}? — {self.scenario}"

    def subtitle(self, run_id: str | None = None) -> str:
        """One line: the source, the sample, the seed, the baseline (and the run)."""
        if self.source == "simulate":
            reps = self.n_replications
            runs = f"{reps} replication" + ("s" if reps > 1 else "")
            text = (
                f"source: simulate; {self.n:,} rounds per policy per run; {runs}; seed "
                f"{self.seed}; baseline: {self.baseline}"
            )
        else:
            text = (
                f"source: {self.source}; {self.n:,} {self.unit} per policy; "
                f"seed {self.seed}; baseline: {self.baseline}"
            )
        return text + (f"; run {run_id}" if run_id else "")

    def evidence_lines(self) -> list[str]:
        """What the verdict rests on, for the console: simulation — each rung's value and
        unsubscribes over the replications (and the one-replication caveat); logs — the
        logger, the propensities, every rung's estimate with its support."""
        lines = [f"note: {n}." for n in self.notes]
        lines += [r.line() for r in self.rungs.values()]
        return lines + (self.logged.lines() if self.logged else [])

    def verdict_lines(self) -> list[str]:
        """The console's verdict: the headline, the estimand, every comparison's sentence,
        the unsubscribe budget, and (over replications) how far one run's batch means are
        from the spread across runs."""
        where = f", {self.n_replications} replications" if self.replications else ""
        lines = [
            "",
            f"VERDICT ({self.scenario}{where}, vs {self.baseline}): {self.headline}",
            f"  estimand: {self.estimand}.",
        ]
        lines += [f"  - {c.sentence()}" for c in self.comparisons]
        if self.pairs:
            lines.append("  the rest of the ladder (same family):")
            lines += [f"  - {c.sentence()}" for c in self.pairs]
        lines += [
            f"  unsubscribe budget, {g.rung}: {g.status} — {g.note}"
            for g in self.guardrails.values()
        ]
        if self.over_replications:
            ratios = [
                c.stderr / c.within_stderr
                for c in self.comparisons
                if c.within_stderr and math.isfinite(c.stderr) and c.within_stderr > 0
            ]
            if ratios:
                root = math.sqrt(self.n_replications)
                lines.append(
                    "  diagnostic: runs of the same campaign differ in their exact Δ by "
                    f"{min(ratios) * root:.1f}–{max(ratios) * root:.1f}x the standard error one "
                    "run's batch means claim (they see the noise within one run only)"
                )
        return lines

    def __str__(self) -> str:
        return "\n".join(self.verdict_lines()).strip("\n")
