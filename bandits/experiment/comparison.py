"""The personalization ladder compared on a source, as a library call: the settings of the
statistics, the words that describe them (estimand, method notes — derived from the
settings, so a label never says 95% when alpha is 0.1), and :func:`compare_policies`.

The statistics themselves live in :mod:`bandits.compare`; what a source contributes
(replications of a simulated campaign, or paired off-policy terms on a log) in
:mod:`bandits.experiment.sources`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bandits.compare import Guardrail, percent
from bandits.errors import ConfigError
from bandits.policies.base import Policy

if TYPE_CHECKING:
    from bandits.experiment.results import ComparisonResult

__all__ = [
    "ONE_REPLICATION",
    "ComparisonSettings",
    "ComparisonSource",
    "Guardrail",
    "check_ladder",
    "compare_policies",
    "ladder_from_settings",
    "logged_estimand",
    "logged_notes",
    "simulated_estimand",
    "simulation_notes",
]


@dataclass(frozen=True)
class ComparisonSettings:
    """How a comparison decides: every rung against ``baseline``, the family-wise error
    rate ``alpha`` (Holm), the ``power`` for the minimum detectable effect, the relative
    ``target_lift`` the sample needed is computed for, the ``focus`` rungs the headline is
    about and (simulation) the rungs in ``versus`` they should beat, and the unsubscribe
    ``guardrail`` (simulation)."""

    baseline: str
    alpha: float = 0.05
    power: float = 0.8
    target_lift: float = 0.05
    focus: tuple[str, ...] = ()
    versus: tuple[str, ...] = ()
    guardrail: Guardrail = field(default_factory=Guardrail)

    def __post_init__(self) -> None:
        for name in ("alpha", "power"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0.0 < float(value) < 1.0:
                raise ConfigError(f"{name} must be in (0, 1), got {value!r}")
        if not float(self.target_lift) > 0.0:
            raise ConfigError(f"target_lift must be > 0, got {self.target_lift!r}")


class ComparisonSource(Protocol):
    """Where the ladder is compared: a simulated audience or a decision log.

    ``kind`` is ``"simulate"`` or ``"logs"``; ``scenario`` names the audience or the log;
    ``seed`` is the one seed behind its numbers. :meth:`check` returns the rungs that can
    run on this source (fresh, unbound copies) and those left out with the reason (a
    one-line ConfigError when the baseline cannot run); :meth:`compare` runs the kept rungs
    and decides with ``settings``.
    """

    kind: str
    seed: int

    @property
    def scenario(self) -> str: ...

    def check(
        self, policies: Mapping[str, Policy], baseline: str
    ) -> tuple[dict[str, Policy], dict[str, str]]: ...

    def compare(
        self,
        policies: Mapping[str, Policy],
        settings: ComparisonSettings,
        left_out: Mapping[str, str],
    ) -> ComparisonResult: ...


def ladder_from_settings(ladder: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Policy]:
    """Rung label → unbound policy from ``{label: {"name": <registry name>, <setting>:
    value, …}}`` (the ``ladder:`` of ``configs/compare.yaml``); a rung without a ``name``,
    an unknown policy or setting is a one-line ConfigError."""
    from bandits.policies import make_policy

    policies = {}
    for label, spec in ladder.items():
        settings = dict(spec or {})
        name = settings.pop("name", None)
        if not name:
            raise ConfigError(f"ladder.{label} needs a policy 'name'")
        if settings.get("interactions") is not None:
            settings["interactions"] = tuple(settings["interactions"])
        policies[str(label)] = make_policy(str(name), settings)
    return policies


def check_ladder(policies: Mapping[str, Policy], baseline: str, focus: Sequence[str] = ()) -> None:
    """ConfigError unless the ladder has at least two rungs, ``baseline`` is one and — when
    ``focus`` is given — at least one of its rungs is in the ladder (the apps pass a focus
    the user set; the default focus of a ladder cut down with ``~ladder.vw`` is skipped)."""
    if len(policies) < 2:
        raise ConfigError("ladder needs at least two rungs (a baseline and a policy to compare)")
    if baseline not in policies:
        raise ConfigError(
            f"baseline '{baseline}' is not a ladder rung (rungs: {', '.join(policies)})"
        )
    if focus and not any(str(f) in policies for f in focus):
        raise ConfigError(
            f"focus: none of {', '.join(map(str, focus))} is a ladder rung "
            f"(rungs: {', '.join(policies)})"
        )


def compare_policies(
    source: ComparisonSource,
    policies: Mapping[str, Policy],
    *,
    baseline: str,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: float = 0.05,
    focus: Sequence[str] = (),
    versus: Sequence[str] = (),
    guardrail: Guardrail | None = None,
    left_out: Mapping[str, str] | None = None,
) -> ComparisonResult:
    """Compare every rung of ``policies`` (label → policy; copies are run, the given
    objects are not touched) with ``baseline`` on ``source``.

    ``alpha`` is the family-wise error rate of the verdicts (Holm's method; simulation:
    over every pair of rungs), ``power`` and ``target_lift`` set the minimum detectable
    effect and the sample a ``target_lift`` relative lift would need; ``focus`` are the
    rungs the headline is about and (simulation) ``versus`` the rungs they should beat;
    ``guardrail`` the unsubscribe budget (simulation; default: none). ``left_out``: what
    ``source.check`` left out, when the caller has already checked the ladder (the apps do,
    to fail before any run exists); otherwise it is checked here.
    """
    check_ladder(policies, baseline)
    settings = ComparisonSettings(
        baseline=str(baseline),
        alpha=float(alpha),
        power=float(power),
        target_lift=float(target_lift),
        focus=tuple(str(f) for f in focus),
        versus=tuple(str(v) for v in versus),
        guardrail=guardrail or Guardrail(),
    )
    kept = dict(policies)
    if left_out is None:
        kept, left_out = source.check(policies, settings.baseline)
    return source.compare(kept, settings, dict(left_out))


# ----- the words ------------------------------------------------------------------------------

#: why there is no interval over replications with one replication
ONE_REPLICATION = (
    "one replication: no interval over replications can be formed, so the verdict falls back "
    "to this run's within-run batch means (they capture the noise within one run, not between "
    "runs of the policy); set replications >= 2 for a verdict about the policies"
)


def simulated_estimand(rounds: int, replications: int) -> str:
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


def logged_estimand(rows: int, estimator: str, train_fraction: float, learners: bool) -> str:
    """The question a comparison on a log answers, in one line."""
    trained = (
        f"; learning rungs trained on the first {train_fraction:.0%} of the log, then held fixed"
        if learners
        else ""
    )
    return (
        f"expected reward per impression of each rung as a fixed policy on this log's "
        f"population, estimated on its {rows:,} evaluation rows with {estimator.upper()} "
        f"terms{trained}"
    )


def _levels(alpha: float) -> str:
    """How the Holm-consistent levels follow from ``alpha``, in words."""
    return (
        "1 - alpha/(m - j) of its Holm step (j = 0, 1, … its rank by p-value among the m "
        "comparisons; from the first comparison Holm keeps on, that step's level), never "
        f"below {percent(1 - alpha)}"
    )


def simulation_notes(alpha: float, power: float) -> tuple[str, ...]:
    """How to read a simulated comparison (over replications), with the numbers used."""
    return (
        "The unit of evidence is a replication: one independent run of the whole campaign, "
        "with a fresh draw of the audience (its world, users and days) and fresh policy seeds, "
        "all from the root seed. Within a replication every rung faces the same users, "
        "contexts and potential outcomes (common random numbers); each rung draws its own "
        "policy seed, so the same policy listed twice is a genuine A/A.",
        "Each replication contributes its exact Δ: the difference in the simulator's expected "
        "reward of the variants the rungs chose, averaged over the campaign, so response noise "
        "does not blur it. The interval is Student t over the replications (R - 1 degrees of "
        f"freedom) at the Holm-consistent level {_levels(alpha)}.",
        "One family for the whole ladder: every pair of rungs (each rung against the baseline, "
        "the focus rungs against retargeting and segments, and the pairs that say which rung is "
        "best — any rung could be) is tested with Holm's method at the family-wise error rate "
        f"alpha = {alpha:g}. The interval printed next to a verdict is the Holm-consistent one "
        "that decided it (at its Holm step's level, not Bonferroni's): it excludes 0 exactly "
        "when the verdict is better/worse.",
        "Who gains, who loses: Holm's method over all the cells of the segment / channel / "
        "weather / daypart tables at once (every rung and dimension), on each cell's exact Δ "
        "per replication, each cell's interval at its Holm step's level; with one replication "
        "the tables are exploratory and make no claims.",
        "Cost: the exact expected unsubscribes per 1,000 impressions, with intervals over the "
        "replications. The unsubscribe budget (guardrail) is checked with simultaneous "
        f"(Bonferroni: 1 - {alpha:g}/m for m intervals) Student-t intervals: 'exceeds' when the "
        "whole interval is over budget, 'within' when it is all under, else 'may exceed'.",
        "Diagnostic: the standard error one run's batch means would have claimed for the "
        "realised Δ, next to the spread across replications. Batch means capture the noise "
        "within one run only, so one run's interval answers a question about that run, not "
        "about the policy.",
        f"The minimum detectable effect uses {percent(power)} power at two-sided alpha = "
        f"{alpha:g} (normal quantiles); the replications needed scale with the square of MDE / "
        "target lift.",
    )


def logged_notes(alpha: float, power: float, estimator: str) -> tuple[str, ...]:
    """How to read a comparison on a log, with the numbers and the estimator used."""
    name = estimator.upper()
    return (
        f"Each difference is paired: every policy is scored on the same rows with the {name} "
        "estimator's per-row terms, and the difference of two policies is the mean of the "
        "difference of their terms.",
        "Intervals use batch-means standard errors (contiguous blocks of rows, in time order) "
        "with Student-t quantiles on blocks - 1 degrees of freedom, at the Holm-consistent level "
        f"shown next to each interval: {_levels(alpha)}.",
        "Verdicts control the family-wise error rate over the policies compared with the "
        f"baseline (Holm's method): 'better'/'worse' only when the Holm-adjusted p-value is "
        f"below alpha = {alpha:g}; otherwise 'we can't tell yet'. The interval printed next to "
        "a verdict excludes 0 exactly when the verdict is better/worse. In the segment / "
        "channel / weather / daypart tables the verdicts are Holm-adjusted within each policy "
        f"and dimension, and the intervals are at {percent(1 - alpha)} (1 - alpha, unadjusted).",
        "A rung whose value the log cannot identify (most of its probability on variants the "
        "logger never showed there, or hardly any effective sample) is 'unsupported', never "
        "better/worse; rare successes widen the interval to at least the rungs' score floors.",
        f"The minimum detectable effect uses {percent(power)} power at two-sided alpha = "
        f"{alpha:g} (normal quantiles); the rows needed scale with the square of MDE / target "
        "lift.",
        "When the log carries the simulator's truth (a simulated log), the 'exact Δ' column is "
        "the true difference in expected reward per impression on the same rows — the ground "
        "truth the verdict is checked against.",
        f"Cost: the log's cost column (unsubscribes), scored with the same {name} terms.",
    )
