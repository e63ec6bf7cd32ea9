"""The two sources a ladder is compared on, behind one protocol
(:class:`~bandits.experiment.comparison.ComparisonSource`).

* :class:`SimulatedSource` — ``replications`` independent runs of a campaign on a synthetic
  audience (:mod:`bandits.simulate.replications`): each replication's exact Δ, Student t
  over the replications, one Holm family over every pair of rungs, who-gains cells over all
  cells, the unsubscribe guardrail.
* :class:`LoggedSource` — one decision log (:mod:`bandits.offline.ladder`): every rung scored
  on the same held-out rows with one estimator's per-row terms, batch-means intervals, Holm
  over the rungs compared with the baseline, support evidence per rung.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bandits.compare import (
    best_rung,
    check_guardrail,
    compare_family,
    compare_to_baseline,
    group_lifts,
    headline,
    ladder_headline,
    ladder_pairs,
    percent,
)
from bandits.data.contract import LoggedData
from bandits.errors import ConfigError, DataError
from bandits.experiment.comparison import (
    ONE_REPLICATION,
    ComparisonSettings,
    logged_estimand,
    logged_notes,
    simulated_estimand,
    simulation_notes,
)
from bandits.experiment.results import ComparisonResult, LoggedDetails, RungSummary
from bandits.policies.base import Policy
from bandits.simulate.environment import Environment
from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.online import problem_spec
from bandits.simulate.replications import (
    ReplicatedLadder,
    Replication,
    run_replications,
)


def _focus(settings: ComparisonSettings, compared: list[str]) -> tuple[str, ...]:
    """The focus rungs that were compared with the baseline (all of them if none was)."""
    return tuple(f for f in settings.focus if f in compared) or tuple(compared)


@dataclass(frozen=True)
class SimulatedSource:
    """``replications`` independent runs of a ``rounds``-impression campaign on
    ``audience``, all from the one ``seed`` (replication ``i``'s seeds:
    :func:`bandits.simulate.replications.replication_seeds`), in ``n_jobs`` worker processes
    (``-1``: one per core). ``n_blocks``: contiguous blocks of one run's batch means (the
    within-run diagnostic, and the verdict's evidence with one replication);
    ``eval_rounds``: held-out impressions for each run's final policy value.

    ``reuse``: replications already computed (index → :class:`Replication`, e.g. read back
    from finished runs), not run again; ``on_replication`` is called with each new
    replication as it finishes (in completion order). ``bundle_dir``: replication 0's
    learning policies, as they ended the run, are saved there as deployable bundles
    ``<bundle_dir>/<label>`` (what the compare app logs as MLflow models)."""

    audience: AudienceSettings
    rounds: int = 20_000
    seed: int = 1
    replications: int = 20
    eval_rounds: int = 5000
    n_blocks: int = 50
    n_jobs: int = 1
    reuse: Mapping[int, Replication] = field(default_factory=dict)
    on_replication: Callable[[Replication], None] | None = None
    bundle_dir: str | None = None
    kind: str = "simulate"

    def __post_init__(self) -> None:
        checks = (
            ("rounds", 1, "impressions per campaign"),
            ("replications", 1, "independent runs of the campaign"),
            ("eval_rounds", 0, "held-out impressions"),
            ("n_blocks", 2, "blocks of one run's batch means"),
            ("n_jobs", 1, "worker processes, or -1 for one per core"),
        )
        for name, low, what in checks:
            value = getattr(self, name)
            if name == "n_jobs" and value == -1:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be a whole number >= {low} ({what}), got {value!r}")

    @property
    def scenario(self) -> str:
        return self.audience.name

    @property
    def estimand(self) -> str:
        return simulated_estimand(self.rounds, self.replications)

    @property
    def todo(self) -> list[int]:
        """The replication indices still to run (not in ``reuse``)."""
        return [i for i in range(self.replications) if i not in self.reuse]

    def plan(self) -> str:
        """One line: how many replications, how many reused, how many to run where."""
        reused, todo = self.replications - len(self.todo), len(self.todo)
        return (
            f"replications: {self.replications}"
            + (f" ({reused} reused from finished runs)" if reused else "")
            + (f", {todo} to run on {self.n_jobs} worker(s)" if todo else "")
        )

    def check(
        self, policies: Mapping[str, Policy], baseline: str
    ) -> tuple[dict[str, Policy], dict[str, str]]:
        """Bind a copy of every rung to the audience's catalog, so settings that depend on
        it fail now (``ladder.<rung>: …``); every rung runs in simulation."""
        spec = problem_spec(Environment(self.audience, 0))
        for label, policy in policies.items():
            try:
                policy.clone().bind(spec, 0)
            except ConfigError as exc:
                raise ConfigError(f"ladder.{label}: {exc}") from None
        return {label: p.clone() for label, p in policies.items()}, {}

    def compare(
        self,
        policies: Mapping[str, Policy],
        settings: ComparisonSettings,
        left_out: Mapping[str, str],
    ) -> ComparisonResult:
        fresh = run_replications(
            self.audience,
            policies,
            self.rounds,
            self.seed,
            self.todo,
            eval_rounds=self.eval_rounds,
            n_blocks=self.n_blocks,
            n_jobs=self.n_jobs,
            on_done=self.on_replication,
            bundle_dir=self.bundle_dir,
        )
        reps = sorted(
            [*fresh, *(self.reuse[i] for i in range(self.replications) if i in self.reuse)],
            key=lambda r: r.index,
        )
        ladder = ReplicatedLadder(tuple(reps))
        n_reps = ladder.n
        rungs = {}
        for label in ladder.labels:
            first = reps[0].rungs[label]
            per_rep = ladder.per_replication(label)
            rungs[label] = RungSummary(
                label=label,
                policy=first.policy,
                params=first.params,
                curves=ladder.mean_curves(label),
                metrics={
                    **ladder.mean_summary(label),
                    "value": float(per_rep.mean()),
                    "value_sd_over_replications": float(per_rep.std(ddof=1)) if n_reps > 1 else 0.0,
                    "unsubscribes_per_1000": 1000
                    * float(ladder.per_replication(label, "cost").mean()),
                },
                replications=n_reps,
            )
        baseline, alpha = settings.baseline, settings.alpha
        values = ladder.point_values()
        family = compare_family(
            ladder.evidence(ladder_pairs(ladder.labels, baseline)),
            values,
            costs=ladder.point_costs(),
            alpha=alpha,
            power=settings.power,
            target_lift=settings.target_lift,
            replications=n_reps if ladder.over_replications else 0,
            unit="replications" if ladder.over_replications else "rounds",
        )
        own, vs = ladder.cost_evidence(baseline)
        checks = check_guardrail(own, vs, baseline, settings.guardrail, alpha=alpha)
        family = [
            replace(c, guardrail=checks[c.policy].status, guardrail_note=checks[c.policy].note)
            if c.baseline == baseline and c.policy in checks
            else c
            for c in family
        ]
        sentence = ladder_headline(
            family,
            baseline,
            values,
            focus=[f for f in settings.focus if f in values],
            versus=list(settings.versus),
            guardrails=checks,
            guardrail=settings.guardrail,
        )
        best, unresolved = best_rung(family, values)
        comparisons = tuple(c for c in family if c.baseline == baseline)
        group_note = (
            "Claims control the family-wise error rate over every cell of every table "
            "below at once (Holm), on each cell's exact Δ per replication."
            if n_reps > 1
            else "Exploratory: with one replication no interval over runs exists; "
            "the tables show point differences and make no better/worse claims."
        )
        return ComparisonResult(
            source=self.kind,
            scenario=self.scenario,
            baseline=baseline,
            seed=int(self.seed),
            alpha=alpha,
            power=settings.power,
            target_lift=settings.target_lift,
            n=int(self.rounds),
            unit="rounds",
            estimand=simulated_estimand(int(self.rounds), n_reps),
            headline=sentence,
            focus=_focus(settings, [c.policy for c in comparisons]),
            comparisons=comparisons,
            pairs=tuple(c for c in family if c.baseline != baseline),
            groups=ladder.group_lifts(baseline, alpha=alpha),
            group_note=group_note,
            group_family="Holm over every cell shown",
            method_notes=simulation_notes(alpha, settings.power),
            notes=(ONE_REPLICATION,) if n_reps == 1 else (),
            guardrail=settings.guardrail,
            guardrails=checks,
            best_rung=best,
            best_rung_clear=not unresolved,
            rungs=rungs,
            replications=tuple(reps),
        )


@dataclass(frozen=True)
class LoggedSource:
    """One decision log: learning rungs train on the first ``train_fraction`` of its rows
    (in time order), every rung is scored on the rest with the per-row terms of
    ``estimator`` (``dr`` by default; its reward model ``reward_model``, cross-fitted over
    ``cross_fit_folds`` folds), and the paired differences get batch-means intervals over
    ``n_blocks`` contiguous blocks. ``seed`` seeds the policies and the folds; ``scenario``
    names the log in the report (default: its file or directory name)."""

    data: LoggedData
    seed: int = 1
    train_fraction: float = 0.5
    estimator: str = "dr"
    reward_model: str = "auto"
    cross_fit_folds: int = 5
    n_blocks: int = 50
    name: str | None = None
    kind: str = "logs"

    @property
    def scenario(self) -> str:
        return self.name or Path(str(self.data.source)).name or "decision_log"

    def check(
        self, policies: Mapping[str, Policy], baseline: str
    ) -> tuple[dict[str, Policy], dict[str, str]]:
        """The rungs that can run on this log (fresh, unbound) and those left out with the
        reason: a rung that needs what the log lacks (a context column such as ``segment``,
        a catalog column such as ``category``) fails on the first rows. The baseline must
        run, and at least one rung besides it (else a one-line ConfigError)."""
        spec = self.data.problem_spec()
        probe = spec.contexts(self.data.frame.head(min(self.data.n, 50)))
        left_out = {}
        for label, policy in policies.items():
            try:
                trial = policy.clone()
                trial.bind(spec, 0)
                trial.action_probs(probe)
            except (ConfigError, DataError) as exc:
                left_out[label] = str(exc)
        if baseline in left_out:
            raise ConfigError(
                f"baseline '{baseline}' cannot run on this log: {left_out[baseline]} "
                "(choose another baseline=, e.g. one of: "
                f"{', '.join(k for k in policies if k not in left_out) or 'none'})"
            )
        if len(policies) - len(left_out) < 2:
            raise ConfigError(
                "no rung besides the baseline can run on this log: "
                + "; ".join(f"{k}: {v}" for k, v in left_out.items())
            )
        kept = {k: p.clone() for k, p in policies.items() if k not in left_out}
        return kept, left_out

    @staticmethod
    def left_out_line(left_out: Mapping[str, str]) -> str:
        """One line naming the rungs :meth:`check` left out and why."""
        return "left out of the ladder (this log lacks what they need): " + "; ".join(
            f"{k} ({v})" for k, v in left_out.items()
        )

    def compare(
        self,
        policies: Mapping[str, Policy],
        settings: ComparisonSettings,
        left_out: Mapping[str, str],
    ) -> ComparisonResult:
        from bandits.offline.evaluate import logger_tags
        from bandits.offline.ladder import offline_ladder

        data, baseline, alpha = self.data, settings.baseline, settings.alpha
        runs = {k: p.clone() for k, p in policies.items()}
        ladder = offline_ladder(
            data,
            runs,
            train_fraction=float(self.train_fraction),
            seed=int(self.seed),
            reward_model=str(self.reward_model),
            cross_fit_folds=int(self.cross_fit_folds),
            estimator=str(self.estimator),
            level=1 - alpha,
        )
        support: dict[str, float] = {}
        tags = {"support_source": ladder.support_source, **logger_tags(data)}
        if left_out:
            tags["ladder.left_out"] = "; ".join(f"{k}: {v}" for k, v in left_out.items())[:5000]
        for label, est in ladder.estimates.items():
            d = est.diagnostics
            for key in ("ess", "max_weight", "mean_weight", "unsupported_target_mass"):
                if key in d:
                    support[f"{label}.{key}"] = float(d[key])
            tags[f"evidence.{label}"] = est.evidence
            if est.evidence_reason:
                tags[f"evidence.{label}.reason"] = est.evidence_reason[:5000]
        comps = compare_to_baseline(
            ladder.terms,
            baseline,
            alpha=alpha,
            power=settings.power,
            target_lift=settings.target_lift,
            n_blocks=int(self.n_blocks),
            unit="logged rows",
        )
        focus = _focus(settings, [c.policy for c in comps])
        learners = any(type(p).learns for p in runs.values())
        return ComparisonResult(
            source=self.kind,
            scenario=self.scenario,
            baseline=baseline,
            seed=int(self.seed),
            alpha=alpha,
            power=settings.power,
            target_lift=settings.target_lift,
            n=ladder.test.n,
            unit="logged rows",
            estimand=logged_estimand(
                ladder.test.n, str(self.estimator), float(self.train_fraction), learners
            ),
            headline=headline(comps, focus),
            focus=focus,
            comparisons=tuple(comps),
            groups=group_lifts(ladder.terms, baseline, ladder.groups, alpha=alpha),
            group_note=(
                "Claims are Holm-adjusted within each policy and dimension; the intervals are "
                f"at {percent(1 - alpha)} (1 - alpha, unadjusted)."
            ),
            group_family="Holm within each dimension",
            method_notes=logged_notes(alpha, settings.power, str(self.estimator)),
            logged=LoggedDetails(
                data=data,
                test=ladder.test,
                estimates=dict(ladder.estimates),
                support_source=ladder.support_source,
                left_out=dict(left_out),
                tags=tags,
                support=support,
            ),
        )
