"""Paired comparisons of policies against a baseline, with verdicts that can say "we can't
tell yet".

Every comparison works on per-round *paired* terms: the same rounds (the same users, contexts
and potential outcomes in simulation, thanks to common random numbers; the same logged rows
offline, with doubly robust per-row terms). For a policy A and the baseline B the estimand is
the mean per-round difference ``Δ = E[v_A - v_B]``.

* **Interval.** Rounds of a learning policy are not independent (the policy changes as it
  learns), so the standard error uses *batch means*: the rounds, in time order, are cut into
  ``n_blocks`` contiguous blocks and ``se = sd(block means) / sqrt(n_blocks)``. Interval:
  ``Δ ± t_{B-1}·se``; p-value: two-sided Student t with ``B - 1`` degrees of freedom.
* **Several policies.** Verdicts control the family-wise error rate over the policies
  compared with the baseline by Holm's step-down method (Holm 1979): a policy is **better**
  or **worse** only if its Holm-adjusted p-value is below ``alpha`` (sign from Δ); otherwise
  **inconclusive**. The interval reported with a verdict is the one that decided it: the
  comparison ranked ``j`` (by p-value) gets the level ``1 - alpha / (m - j + 1)`` of its
  Holm step while the step-down goes on, and every comparison after the first one kept gets
  the level of that step (:func:`holm_levels`), so an interval excludes 0 exactly when the
  verdict is better/worse. Subgroup tables (segment, channel, …) are adjusted by Holm within
  each dimension.
* **Support.** Offline, a rung whose value the log cannot identify (evidence
  ``insufficient``: most of its probability on variants the logger never showed there, or
  hardly any effective sample) gets the verdict **unsupported**, never better/worse, with
  the reason and what data would settle it. Rare successes widen the standard error to at
  least the rungs' score floors combined (``floor_se``; see :mod:`bandits.ope.intervals`).
* **What it would take.** The minimum detectable effect at this sample size (two-sided
  ``alpha``, power ``1 - beta``) is ``MDE = (z_{1-alpha/2} + z_{1-beta})·se``; the rounds needed
  to detect a lift ``L`` scale as ``n·(MDE / L)²``.

**Over replications (simulation).** A simulated verdict is about the policies, not one run:
each of ``R`` independent replications of the campaign contributes one exact difference
``Δ_r`` (:mod:`bandits.simulate.replications`), and :func:`replicated_difference` gives
``mean(Δ_r) ± t_{R-1}·sd(Δ_r)/sqrt(R)`` — batch means with the replications as the blocks.
One run's batch means (:func:`blocked_difference`, from per-block sums) capture only the
noise within that run; they stay as a diagnostic and as the fallback when ``R = 1``.
:func:`compare_family` tests every pair of rungs (:func:`ladder_pairs`) as one Holm family
with Holm-consistent intervals, which answers the whole ladder at once: each rung against
the baseline, the focus rungs against retargeting and segments, and the best rung
(:func:`best_rung`); :func:`ladder_headline` says it in one paragraph.
:func:`replicated_group_lifts` runs Holm over every who-gains cell shown at once, and
:func:`check_guardrail` holds each rung's unsubscribes per 1,000 impressions against a budget
with simultaneous (Bonferroni) intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import polars as pl
from scipy.special import stdtr, stdtrit

BETTER, WORSE, INCONCLUSIVE, UNSUPPORTED = "better", "worse", "inconclusive", "unsupported"
_N = NormalDist()


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired per-round differences with a batch-means interval."""

    diff: float
    stderr: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_blocks: int


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom:
    ``2·F_df(-|t|)`` (:func:`scipy.special.stdtr`, the CDF ``scipy.stats.t`` uses)."""
    if not math.isfinite(t):
        return 0.0
    return float(2.0 * stdtr(df, -abs(t)))


def t_quantile(q: float, df: float) -> float:
    """Quantile ``F_df^{-1}(q)`` of Student's t (:func:`scipy.special.stdtrit`, the inverse
    CDF ``scipy.stats.t.ppf`` uses). The special functions are called directly, without
    ``scipy.stats``' per-call argument handling, which costs far more than the function on
    a scalar (``experiments/benchmarks/student_t_results.md``); a comparison asks for
    hundreds (every pair and who-gains cell)."""
    return float(stdtrit(df, q))


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, n_blocks: int = 50, level: float = 0.95
) -> PairedDifference:
    """Paired difference of per-round values ``a, b`` of shape ``(n,)`` (time order).

    ``se`` is the batch-means standard error over ``min(n_blocks, n // 10)`` contiguous
    blocks (at least 2); intervals and p-values use Student's t with ``blocks - 1`` degrees
    of freedom (honest when there are few blocks). With fewer than 20 rounds the interval is
    infinite.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = int(d.size)
    blocks = min(int(n_blocks), n // 10)
    mean = float(d.mean()) if n else float("nan")
    if n < 20 or blocks < 2:
        return PairedDifference(mean, math.inf, -math.inf, math.inf, 1.0, n, max(blocks, 0))
    edges = block_edges(n, blocks)
    means = np.add.reduceat(d, edges[:-1]) / np.diff(edges)
    fallback = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return _from_block_means(mean, means, n, level, fallback)


def block_edges(n: int, blocks: int) -> np.ndarray:
    """Edges ``(blocks + 1,)`` of ``blocks`` contiguous blocks over ``n`` rounds (sizes differ
    by at most one round): block ``j`` is rounds ``[edges[j], edges[j + 1])``."""
    return np.linspace(0, n, blocks + 1).astype(np.int64)


def blocked_difference(
    block_sums: np.ndarray, block_sizes: np.ndarray, *, level: float = 0.95
) -> PairedDifference:
    """:func:`paired_difference` from per-block sums of the paired differences
    ``(blocks,)`` and the blocks' sizes ``(blocks,)`` (rounds): the same batch-means
    estimate, for when only block sums were kept (a replication's summary). Under common
    random numbers every policy's rounds fall in the same blocks, so the sums of ``a - b``
    are the differences of the policies' own block sums."""
    sums = np.asarray(block_sums, dtype=np.float64)
    sizes = np.asarray(block_sizes, dtype=np.float64)
    n = int(sizes.sum())
    mean = float(sums.sum() / n) if n else float("nan")
    if n < 20 or sums.size < 2:
        return PairedDifference(mean, math.inf, -math.inf, math.inf, 1.0, n, int(sums.size))
    return _from_block_means(mean, sums / sizes, n, level, 0.0)


def replicated_difference(per_replication: np.ndarray, *, level: float = 0.95) -> PairedDifference:
    """Mean of independent per-replication differences ``x (R,)`` (one value per
    replication, e.g. each run's exact Δ) with a Student-t interval on ``R - 1`` degrees of
    freedom: ``mean ± t_{R-1}·sd(x)/sqrt(R)``. The replications are the "blocks"
    (``n = n_blocks = R``). With one replication the interval is infinite; with a zero
    spread (e.g. the same deterministic policy twice) it is the point itself, p = 1 when
    the mean is 0."""
    x = np.asarray(per_replication, dtype=np.float64)
    r = int(x.size)
    mean = float(x.mean()) if r else float("nan")
    if r < 2:
        return PairedDifference(mean, math.inf, -math.inf, math.inf, 1.0, r, r)
    return _from_block_means(mean, x, r, level, 0.0)


def _from_block_means(
    mean: float, means: np.ndarray, n: int, level: float, fallback_se: float
) -> PairedDifference:
    """Student-t interval and p-value for ``mean`` from ``B`` independent block means
    ``(B,)``: ``se = sd(means)/sqrt(B)`` (``fallback_se`` when that is 0), ``B - 1`` df."""
    blocks = int(means.size)
    se = float(means.std(ddof=1) / math.sqrt(blocks))
    if se == 0.0:
        se = fallback_se
    df = blocks - 1
    crit = t_quantile(0.5 + level / 2, df)
    if se == 0.0:
        p = 1.0 if mean == 0 else 0.0
        return PairedDifference(mean, 0.0, mean, mean, p, n, blocks)
    p = t_two_sided_p(mean / se, df)
    return PairedDifference(mean, se, mean - crit * se, mean + crit * se, p, n, blocks)


def interval_at(d: PairedDifference, level: float) -> tuple[float, float]:
    """``d``'s interval at another confidence ``level`` (same standard error and degrees of
    freedom, ``n_blocks - 1``); ``d``'s own interval when it has no finite standard error."""
    if d.n_blocks < 2 or not math.isfinite(d.stderr):
        return d.ci_low, d.ci_high
    crit = t_quantile(0.5 + level / 2, d.n_blocks - 1)
    return d.diff - crit * d.stderr, d.diff + crit * d.stderr


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control), same order as input."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """Confidence level of each comparison's interval, consistent with Holm's verdicts.

    Sorted by p-value, comparison ``j`` (0-based) is tested at ``alpha / (m - j)``; the
    step-down stops at the first ``p >= alpha / (m - j)``. Rejected comparisons get the
    level ``1 - alpha / (m - j)`` of their own step, and every comparison from the stopping
    step on gets that step's level. Then an interval excludes 0 exactly when Holm rejects.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [1.0 - alpha] * m
    stop_level = None
    for rank, i in enumerate(order):
        step = 1.0 - alpha / (m - rank)
        if stop_level is None and p_values[i] < alpha / (m - rank):
            levels[i] = step
            continue
        if stop_level is None:
            stop_level = step
        levels[i] = stop_level
    return levels


def verdict(diff: float, p_adjusted: float, alpha: float) -> str:
    if not math.isfinite(diff) or p_adjusted >= alpha:
        return INCONCLUSIVE
    return BETTER if diff > 0 else WORSE


def mde(stderr: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable (absolute) difference at this standard error."""
    return (_N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power)) * stderr


def sample_needed(n: int, mde_now: float, lift: float) -> float:
    """Sample size at which the MDE reaches ``|lift|`` (an absolute difference), from the MDE
    ``mde_now`` at size ``n`` (the standard error scales as ``1/sqrt(n)``):
    ``n·(MDE / lift)²``; infinite when ``lift`` is 0 or the MDE is not finite."""
    lift = abs(lift)
    return n * (mde_now / lift) ** 2 if lift > 0 and math.isfinite(mde_now) else math.inf


@dataclass(frozen=True)
class PolicyComparison:
    """One policy against another (the baseline, or another rung of the ladder): the
    estimated difference, its verdict, the truth where known and what a conclusive answer
    would take.

    ``n`` and ``rounds_needed`` count ``unit``: rounds (one simulated run), logged rows, or
    replications (``replications > 0``: the interval is over that many independent
    replications of the campaign, each contributing its exact Δ). Over replications,
    ``observed_diff`` is the mean Δ of the realised rewards and ``within_stderr`` the
    standard error one run's batch means would have claimed (root mean square over the
    replications) — diagnostics, not the verdict. ``guardrail`` is the cost side's status
    against a configured budget (``within`` / ``exceeds`` / ``may exceed``; None without a
    budget), explained in ``guardrail_note``.
    """

    policy: str
    baseline: str
    value: float
    baseline_value: float
    diff: float
    relative_lift: float
    stderr: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    verdict: str
    mde: float
    n: int
    rounds_needed: float
    target_lift: float
    ci_level: float
    evidence: str
    reason: str
    true_diff: float | None
    cost: float | None
    baseline_cost: float | None
    cost_diff: float | None
    cost_ci_low: float | None
    cost_ci_high: float | None
    replications: int = 0
    unit: str = "rounds"
    observed_diff: float | None = None
    within_stderr: float | None = None
    guardrail: str | None = None
    guardrail_note: str = ""

    def sentence(self) -> str:
        pct = f"{self.relative_lift:+.1%}" if math.isfinite(self.relative_lift) else "n/a"
        interval = f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        level = _pct(self.ci_level)
        per = "per round" if self.unit == "rounds" else "per impression"
        if self.verdict == UNSUPPORTED:
            return f"{self.policy} vs {self.baseline}: unsupported by this log — {self.reason}."
        if self.verdict == INCONCLUSIVE:
            what = {"replications": "replications of this campaign"}.get(self.unit, self.unit)
            need = (
                f"about {self.rounds_needed:,.0f} {what} would detect a {self.target_lift:.1%} lift"
                if math.isfinite(self.rounds_needed)
                else "more data is needed"
            )
            return (
                f"{self.policy} vs {self.baseline}: we can't tell yet "
                f"(difference {self.diff:+.4f}, {level} Holm-consistent CI {interval}, smallest "
                f"detectable {self.mde:.4f}; {need})."
            )
        return (
            f"{self.policy} is {self.verdict} than {self.baseline}: {self.diff:+.4f} {per} "
            f"({pct}), {level} Holm-consistent CI {interval}, Holm-adjusted p = "
            f"{self.p_adjusted:.2g}."
        )


def percent(level: float) -> str:
    """A confidence level as text: 0.95 → "95%", 0.9875 → "98.8%"."""
    return f"{level:.1%}".replace(".0%", "%")


_pct = percent


@dataclass(frozen=True)
class PairedTerms:
    """Per-round paired terms of one policy on the shared rounds: ``value (n,)`` (realised
    reward in simulation, the off-policy estimator's per-round term offline), optional
    ``truth (n,)`` (expected reward, simulation) and ``cost (n,)`` (e.g. unsubscribes).

    Offline, ``evidence`` / ``reason`` are the estimate's support verdict
    (:mod:`bandits.ope.support`), ``floor_se`` the standard error implied by its score floor
    for rare successes (0 when it does not apply), ``remedy`` what data would identify it and
    ``interval`` its value's interval (the support bound when it is not identified), from
    which an unsupported comparison's interval is built.
    """

    value: np.ndarray
    truth: np.ndarray | None = None
    cost: np.ndarray | None = None
    evidence: str = "sufficient"
    reason: str = ""
    floor_se: float = 0.0
    remedy: str = ""
    interval: tuple[float, float] | None = None


def compare_to_baseline(
    terms: Mapping[str, PairedTerms],
    baseline: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: float = 0.05,
    n_blocks: int = 50,
    unit: str = "rounds",
) -> list[PolicyComparison]:
    """Compare every policy in ``terms`` with ``baseline`` on their paired rounds
    (``unit``: what a round is — ``rounds`` of one simulated run, ``logged rows``).

    ``target_lift`` is relative to the baseline's value (0.05 = a 5% lift) and sets
    ``rounds_needed``. Verdicts are Holm-adjusted over the policies compared.
    """
    if baseline not in terms:
        raise KeyError(f"baseline '{baseline}' is not among the compared policies {list(terms)}")
    base = terms[baseline]
    others = [k for k in terms if k != baseline]
    level = 1 - alpha
    diffs = {}
    for k in others:
        d = paired_difference(terms[k].value, base.value, n_blocks=n_blocks, level=level)
        floor = math.hypot(terms[k].floor_se, base.floor_se)
        if floor > d.stderr and d.n_blocks >= 2 and math.isfinite(d.stderr):
            # rare successes: the batch means understate the noise of a handful of events
            p = t_two_sided_p(d.diff / floor, d.n_blocks - 1)
            d = PairedDifference(d.diff, floor, -math.inf, math.inf, p, d.n, d.n_blocks)
        diffs[k] = d
    unsupported = {
        k: _unsupported_reason(terms[k], k, base, baseline)
        for k in others
        if terms[k].evidence == "insufficient" or base.evidence == "insufficient"
    }
    tested = [k for k in others if k not in unsupported]
    adjusted = dict(zip(tested, holm([diffs[k].p_value for k in tested]), strict=True))
    levels = dict(zip(tested, holm_levels([diffs[k].p_value for k in tested], alpha), strict=True))
    base_value = float(np.mean(base.value))
    out = []
    for k in others:
        d = diffs[k]
        t = terms[k]
        ci_level = levels.get(k, level)
        ci_low, ci_high = interval_at(d, ci_level)
        m = mde(d.stderr, alpha, power)
        needed = sample_needed(d.n, m, target_lift * base_value)
        if k in unsupported:
            needed = math.inf  # more rows of the same kind never reveal the untried variants
            if t.interval is not None and base.interval is not None:
                # what the log allows: any value in each rung's bound, not the model's guess
                ci_low = t.interval[0] - base.interval[1]
                ci_high = t.interval[1] - base.interval[0]
            else:
                ci_low, ci_high = -math.inf, math.inf
        true_diff = None
        if t.truth is not None and base.truth is not None:
            true_diff = float(np.mean(t.truth) - np.mean(base.truth))
        cost = base_cost = cost_diff = cost_low = cost_high = None
        if t.cost is not None and base.cost is not None:
            c = paired_difference(t.cost, base.cost, n_blocks=n_blocks, level=level)
            cost, base_cost = float(np.mean(t.cost)), float(np.mean(base.cost))
            cost_diff, cost_low, cost_high = c.diff, c.ci_low, c.ci_high
        value = float(np.mean(t.value))
        weakest = max((t, base), key=lambda x: _EVIDENCE_ORDER.get(x.evidence, 0))
        out.append(
            PolicyComparison(
                policy=k,
                baseline=baseline,
                value=value,
                baseline_value=base_value,
                diff=d.diff,
                relative_lift=d.diff / base_value if base_value else math.nan,
                stderr=d.stderr,
                ci_low=ci_low,
                ci_high=ci_high,
                p_value=d.p_value,
                p_adjusted=adjusted.get(k, 1.0),
                verdict=UNSUPPORTED if k in unsupported else verdict(d.diff, adjusted[k], alpha),
                mde=m,
                n=d.n,
                rounds_needed=needed,
                target_lift=target_lift,
                ci_level=ci_level,
                evidence=weakest.evidence,
                reason=unsupported.get(k, weakest.reason),
                true_diff=true_diff,
                cost=cost,
                baseline_cost=base_cost,
                cost_diff=cost_diff,
                cost_ci_low=cost_low,
                cost_ci_high=cost_high,
                unit=unit,
            )
        )
    return out


def _lift(c: PolicyComparison) -> str:
    """Relative lift, or the absolute difference when the baseline's value is 0."""
    if math.isfinite(c.relative_lift):
        return f"{c.relative_lift:+.1%}"
    return f"{c.diff:+.4f} (baseline value 0)"


_EVIDENCE_ORDER = {"sufficient": 0, "weak": 1, "insufficient": 2}


def _unsupported_reason(t: PairedTerms, name: str, base: PairedTerms, baseline: str) -> str:
    parts = []
    for label, x in ((name, t), (baseline, base)):
        if x.evidence == "insufficient":
            parts.append(f"{label}: {x.reason}" + (f" ({x.remedy})" if x.remedy else ""))
    return "; ".join(parts)


def comparisons_frame(comparisons: Sequence[PolicyComparison]) -> pl.DataFrame:
    return pl.DataFrame([asdict(c) for c in comparisons])


def group_lifts(
    terms: Mapping[str, PairedTerms],
    baseline: str,
    groups: Mapping[str, np.ndarray],
    *,
    alpha: float = 0.05,
    min_rounds: int = 200,
    n_blocks: int = 20,
) -> pl.DataFrame:
    """Lift of every policy over ``baseline`` within each group of each dimension.

    ``groups`` maps a dimension (``segment``, ``channel``, …) to per-round labels ``(n,)``
    (strings; null/empty for rounds without a label). Groups with fewer than ``min_rounds``
    rounds are reported without a verdict. Holm adjustment within each (policy, dimension).
    Returns columns: policy, dimension, group, n, diff, ci_low, ci_high, relative_lift,
    verdict, true_diff.
    """
    rows = []
    base = terms[baseline]
    for name, t in terms.items():
        if name == baseline:
            continue
        for dim, labels in groups.items():
            labels = np.asarray(labels, dtype=object)
            valid = (labels != None) & (labels != "")  # noqa: E711 - elementwise on objects
            present = np.unique(labels[valid].astype(str)).tolist()
            stats = []
            for g in present:
                mask = labels == g
                d = paired_difference(
                    t.value[mask], base.value[mask], n_blocks=n_blocks, level=1 - alpha
                )
                true_diff = None
                if t.truth is not None and base.truth is not None:
                    true_diff = float(np.mean(t.truth[mask] - base.truth[mask]))
                b = float(np.mean(base.value[mask]))
                stats.append((g, int(mask.sum()), d, b, true_diff))
            testable = [s for s in stats if s[1] >= min_rounds]
            adj = dict(
                zip([s[0] for s in testable], holm([s[2].p_value for s in testable]), strict=True)
            )
            gate = None
            if t.evidence == "insufficient" or base.evidence == "insufficient":
                gate = UNSUPPORTED
            elif t.floor_se > 0.0 or base.floor_se > 0.0:
                gate = "too few successes"  # a handful of events overall: no cell claims
            for g, n, d, b, true_diff in stats:
                v = verdict(d.diff, adj[g], alpha) if g in adj else "too few rounds"
                v = gate or v
                rows.append(
                    {
                        "policy": name,
                        "dimension": dim,
                        "group": g,
                        "n": n,
                        "diff": d.diff,
                        "ci_low": d.ci_low,
                        "ci_high": d.ci_high,
                        "relative_lift": d.diff / b if b else math.nan,
                        "verdict": v,
                        "true_diff": true_diff,
                    }
                )
    return pl.DataFrame(rows)


def headline(comparisons: Sequence[PolicyComparison], focus: Sequence[str] = ()) -> str:
    """The verdict in one sentence, about the ``focus`` policies (default: all)."""
    chosen = [c for c in comparisons if not focus or c.policy in focus] or list(comparisons)
    better = [c for c in chosen if c.verdict == BETTER]
    worse = [c for c in chosen if c.verdict == WORSE]
    unclear = [c for c in chosen if c.verdict == INCONCLUSIVE]
    unsupported = [c for c in chosen if c.verdict == UNSUPPORTED]
    base = chosen[0].baseline if chosen else "the baseline"
    parts = []
    if better:
        best = max(better, key=lambda c: c.diff)
        level = _pct(best.ci_level)
        parts.append(
            f"{', '.join(c.policy for c in better)} beat{'s' if len(better) == 1 else ''} "
            f"{base} (best: {best.policy}, {_lift(best)} per impression, "
            f"{level} CI [{best.ci_low:+.4f}, {best.ci_high:+.4f}])"
        )
    if worse:
        parts.append(f"{', '.join(c.policy for c in worse)} did worse than {base}")
    if unclear:
        parts.append(f"for {', '.join(c.policy for c in unclear)} we can't tell yet")
    if unsupported:
        parts.append(
            f"the log cannot answer for {', '.join(c.policy for c in unsupported)} "
            "(unsupported: it rarely or never shows what they would choose)"
        )
    return ("; ".join(parts) + ".") if parts else "Nothing to compare."


# ----- the whole ladder as one family (simulation: over replications) ------------------------


def ladder_pairs(labels: Sequence[str], baseline: str) -> list[tuple[str, str]]:
    """Every pair of rungs once: first ``(rung, baseline)`` for every other rung, then
    ``(b, a)`` for the other pairs, the later rung of the ladder (the more personal one, in
    the ladder's order: mass → segments → individual) first. All pairs are needed to say
    which rung is best (any rung could be), and they include the focus rungs against
    retargeting and segments."""
    others = [k for k in labels if k != baseline]
    pairs = [(k, baseline) for k in others]
    pairs += [(b, a) for j, b in enumerate(others) for a in others[:j]]
    return pairs


@dataclass(frozen=True)
class PairEvidence:
    """What the comparison of rung ``a`` with rung ``b`` rests on: ``diff`` estimates
    ``E[v_a - v_b]`` (over replications, or one run's batch means), ``cost`` the same for
    the cost (unsubscribes per impression); ``observed_diff``, ``within_stderr`` and
    ``true_diff`` are diagnostics carried into the :class:`PolicyComparison`."""

    diff: PairedDifference
    cost: PairedDifference | None = None
    observed_diff: float | None = None
    within_stderr: float | None = None
    true_diff: float | None = None


def compare_family(
    evidence: Mapping[tuple[str, str], PairEvidence],
    values: Mapping[str, float],
    *,
    costs: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: float = 0.05,
    replications: int = 0,
    unit: str = "rounds",
) -> list[PolicyComparison]:
    """Every pair ``(a, b)`` of ``evidence`` as **one family**: Holm's step-down over all of
    them controls the family-wise error rate at ``alpha`` (a verdict better/worse only when
    the Holm-adjusted p-value is below ``alpha``), and each interval is at its Holm step's
    level (:func:`holm_levels`), so it excludes 0 exactly when the verdict is better/worse.

    ``values`` (and ``costs``) are each rung's estimated value (cost) per impression; the
    relative lift is ``Δ / value_b`` and the sample needed for ``target_lift`` is relative
    to ``value_b``, counted in ``unit`` (``n`` of the evidence: replications or rounds).
    Returns the comparisons in the order of ``evidence``.
    """
    pairs = list(evidence)
    p_values = [evidence[p].diff.p_value for p in pairs]
    adjusted = holm(p_values)
    levels = holm_levels(p_values, alpha)
    out = []
    for (a, b), p_adj, ci_level in zip(pairs, adjusted, levels, strict=True):
        e = evidence[(a, b)]
        d = e.diff
        ci_low, ci_high = interval_at(d, ci_level)
        m = mde(d.stderr, alpha, power)
        base_value = float(values[b])
        cost = base_cost = cost_diff = cost_low = cost_high = None
        if e.cost is not None and costs is not None:
            cost, base_cost = float(costs[a]), float(costs[b])
            cost_diff, cost_low, cost_high = e.cost.diff, e.cost.ci_low, e.cost.ci_high
        out.append(
            PolicyComparison(
                policy=a,
                baseline=b,
                value=float(values[a]),
                baseline_value=base_value,
                diff=d.diff,
                relative_lift=d.diff / base_value if base_value else math.nan,
                stderr=d.stderr,
                ci_low=ci_low,
                ci_high=ci_high,
                p_value=d.p_value,
                p_adjusted=p_adj,
                verdict=verdict(d.diff, p_adj, alpha),
                mde=m,
                n=d.n,
                rounds_needed=sample_needed(d.n, m, target_lift * base_value),
                target_lift=target_lift,
                ci_level=ci_level,
                evidence="sufficient",
                reason="",
                true_diff=e.true_diff,
                cost=cost,
                baseline_cost=base_cost,
                cost_diff=cost_diff,
                cost_ci_low=cost_low,
                cost_ci_high=cost_high,
                replications=replications,
                unit=unit,
                observed_diff=e.observed_diff,
                within_stderr=e.within_stderr,
            )
        )
    return out


def find_pair(
    family: Sequence[PolicyComparison], a: str, b: str
) -> tuple[str, PolicyComparison] | None:
    """The verdict of ``a`` against ``b`` (better / worse / inconclusive) and the
    comparison it comes from, whichever way round the family holds the pair."""
    for c in family:
        if (c.policy, c.baseline) == (a, b):
            return c.verdict, c
        if (c.policy, c.baseline) == (b, a):
            flipped = {BETTER: WORSE, WORSE: BETTER}.get(c.verdict, c.verdict)
            return flipped, c
    return None


def best_rung(
    family: Sequence[PolicyComparison], values: Mapping[str, float]
) -> tuple[str, list[str]]:
    """The rung with the highest estimated value and the rungs it is *not* shown to beat in
    ``family`` (empty: it is better than every other rung, under the family's error
    control)."""
    best = max(values, key=lambda k: values[k])
    unresolved = []
    for other in values:
        if other == best:
            continue
        found = find_pair(family, best, other)
        if found is None or found[0] != BETTER:
            unresolved.append(other)
    return best, unresolved


@dataclass(frozen=True)
class Guardrail:
    """A budget on the cost side, in unsubscribes per 1,000 impressions: at most
    ``max_per_1000`` for any rung, and/or at most ``max_extra_per_1000`` more than the
    baseline's own rate. Neither set: no guardrail."""

    max_per_1000: float | None = None
    max_extra_per_1000: float | None = None

    #: the settings' names in a config (``guardrail.<name>``)
    KEYS = ("max_unsubscribe_per_1000", "max_extra_unsubscribe_per_1000")

    @classmethod
    def from_settings(cls, settings: Mapping[str, object] | None) -> Guardrail:
        """From ``{max_unsubscribe_per_1000: …, max_extra_unsubscribe_per_1000: …}`` (each a
        number >= 0 or None); an unknown key or a bad value is a one-line ConfigError."""
        from bandits.errors import ConfigError

        settings = settings or {}
        unknown = sorted(set(settings) - set(cls.KEYS))
        if unknown:
            raise ConfigError(
                f"guardrail: unknown key '{unknown[0]}' (known: {', '.join(cls.KEYS)})"
            )
        values: list[float | None] = []
        for key in cls.KEYS:
            v = settings.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
                raise ConfigError(f"guardrail.{key} must be a number >= 0 or null, got {v!r}")
            values.append(None if v is None else float(v))
        return cls(*values)

    @property
    def active(self) -> bool:
        return self.max_per_1000 is not None or self.max_extra_per_1000 is not None

    def describe(self, baseline: str) -> str:
        parts = []
        if self.max_per_1000 is not None:
            parts.append(f"at most {self.max_per_1000:g} unsubscribes per 1,000 impressions")
        if self.max_extra_per_1000 is not None:
            parts.append(f"at most {self.max_extra_per_1000:g} more per 1,000 than {baseline}")
        return " and ".join(parts) or "none"


WITHIN, EXCEEDS, MAY_EXCEED = "within", "exceeds", "may exceed"


@dataclass(frozen=True)
class GuardrailCheck:
    """One rung against the unsubscribe budget. Rates per 1,000 impressions with
    simultaneous (Bonferroni) intervals at ``level``: ``rate`` for the rung's own rate,
    ``extra`` for its difference from the baseline (None where not checked)."""

    rung: str
    status: str
    rate: tuple[float, float, float]
    extra: tuple[float, float, float] | None
    level: float
    note: str


def check_guardrail(
    cost: Mapping[str, PairedDifference],
    cost_vs_baseline: Mapping[str, PairedDifference],
    baseline: str,
    guardrail: Guardrail,
    *,
    alpha: float = 0.05,
) -> dict[str, GuardrailCheck]:
    """Each rung's unsubscribes against the ``guardrail``'s budgets.

    ``cost[k]`` estimates rung ``k``'s unsubscribes per impression (an interval for its
    mean), ``cost_vs_baseline[k]`` its difference from the baseline's (rungs other than the
    baseline). Every interval checked — one per rung and budget — is at the Bonferroni level
    ``1 - alpha / m`` (``m`` intervals in all), so all hold together with probability at
    least ``1 - alpha``. Status: **exceeds** if some budget lies below its interval (the rung
    is over budget), **within** if every checked interval lies at or below its budget, else
    **may exceed** (we can't tell yet). Empty without an active guardrail.
    """
    if not guardrail.active:
        return {}
    rungs = list(cost)
    m = (len(rungs) if guardrail.max_per_1000 is not None else 0) + (
        len([k for k in rungs if k != baseline]) if guardrail.max_extra_per_1000 is not None else 0
    )
    level = 1.0 - alpha / max(m, 1)
    out = {}
    for k in rungs:
        checks: list[tuple[float, float, float]] = []  # (low, high, budget) per 1,000
        lo, hi = interval_at(cost[k], level)
        rate = (1000 * cost[k].diff, 1000 * lo, 1000 * hi)
        notes = []
        if guardrail.max_per_1000 is not None:
            checks.append((rate[1], rate[2], guardrail.max_per_1000))
            notes.append(
                f"{rate[0]:.2f} per 1,000 ({_pct(level)} CI [{rate[1]:.2f}, {rate[2]:.2f}]) "
                f"vs a budget of {guardrail.max_per_1000:g}"
            )
        extra = None
        if guardrail.max_extra_per_1000 is not None and k != baseline and k in cost_vs_baseline:
            d = cost_vs_baseline[k]
            lo, hi = interval_at(d, level)
            extra = (1000 * d.diff, 1000 * lo, 1000 * hi)
            checks.append((extra[1], extra[2], guardrail.max_extra_per_1000))
            notes.append(
                f"{extra[0]:+.2f} per 1,000 vs {baseline} ({_pct(level)} CI "
                f"[{extra[1]:+.2f}, {extra[2]:+.2f}]) vs a budget of "
                f"+{guardrail.max_extra_per_1000:g}"
            )
        if not checks:
            continue
        if any(low > budget for low, _, budget in checks):
            status = EXCEEDS
        elif all(high <= budget for _, high, budget in checks):
            status = WITHIN
        else:
            status = MAY_EXCEED
        out[k] = GuardrailCheck(k, status, rate, extra, level, "; ".join(notes))
    return out


def _names(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def ladder_headline(
    family: Sequence[PolicyComparison],
    baseline: str,
    values: Mapping[str, float],
    *,
    focus: Sequence[str] = (),
    versus: Sequence[str] = (),
    guardrails: Mapping[str, GuardrailCheck] | None = None,
    guardrail: Guardrail | None = None,
) -> str:
    """The whole ladder's answer in one paragraph, from one family of comparisons
    (:func:`compare_family`): every rung against ``baseline`` (with its verdict), whether
    each ``focus`` rung beats every rung in ``versus`` (e.g. retargeting *and* segments),
    the best rung overall, and the rungs over the unsubscribe budget — in particular those
    that win on reward but exceed it."""
    vs_base = [c for c in family if c.baseline == baseline]
    parts = []
    better = sorted((c for c in vs_base if c.verdict == BETTER), key=lambda c: -c.diff)
    worse = sorted((c for c in vs_base if c.verdict == WORSE), key=lambda c: c.diff)
    unclear = [c for c in vs_base if c.verdict == INCONCLUSIVE]
    if better:
        top = better[0]
        lifts = [f"{c.policy} {_lift(c)}" for c in better]
        lifts[0] += f" ({_pct(top.ci_level)} CI [{top.ci_low:+.4f}, {top.ci_high:+.4f}])"
        parts.append(f"better than {baseline}: {', '.join(lifts)}")
    if worse:
        parts.append(f"worse than {baseline}: {', '.join(f'{c.policy} {_lift(c)}' for c in worse)}")
    if unclear:
        parts.append(f"vs {baseline} we can't tell yet for {_names([c.policy for c in unclear])}")
    rivals = [v for v in versus if v in values]
    if any(v != baseline for v in rivals):
        for f in [f for f in focus if f in values]:
            against = [v for v in rivals if v != f]
            if not against:
                continue
            said = {v: (find_pair(family, f, v) or (INCONCLUSIVE, None))[0] for v in against}
            beaten = [v for v in against if said[v] == BETTER]
            if len(beaten) == len(against):
                both = "both " if len(against) == 2 else ("all of " if len(against) > 2 else "")
                parts.append(f"{f} beats {both}{_names(against)}")
                continue
            lost = [v for v in against if said[v] == WORSE]
            open_ = [v for v in against if v not in beaten and v not in lost]
            rest = []
            if lost:
                rest.append(f"is worse than {_names(lost)}")
            if open_:
                rest.append(f"vs {_names(open_)} we can't tell yet")
            lead = f"beats {_names(beaten)} but " if beaten else ""
            parts.append(f"{f} {lead}{' and '.join(rest)}")
    if len(values) > 1:
        best, unresolved = best_rung(family, values)
        if not unresolved:
            parts.append(f"best rung: {best} (better than every other rung)")
        else:
            parts.append(
                f"best by estimate: {best}, not shown to beat {_names(unresolved)} "
                "(we can't tell yet)"
            )
    if guardrails and guardrail is not None:
        budget = guardrail.describe(baseline)
        winners = {c.policy for c in better}
        over = [g for g in guardrails.values() if g.status == EXCEEDS]
        maybe = [g for g in guardrails.values() if g.status == MAY_EXCEED]
        for g in over:
            what = "wins on reward but " if g.rung in winners else ""
            parts.append(f"{g.rung} {what}exceeds the unsubscribe budget ({budget}: {g.note})")
        for g in maybe:
            what = "wins on reward but " if g.rung in winners else ""
            parts.append(
                f"{g.rung} {what}may exceed the unsubscribe budget ({budget}; we can't tell yet:"
                f" {g.note})"
            )
        if not over and not maybe:
            parts.append(f"every rung is within the unsubscribe budget ({budget})")
    if not parts:
        return "Nothing to compare."
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def replicated_group_lifts(
    groups: Mapping[str, Sequence[str]],
    counts: Mapping[str, np.ndarray],
    cell_values: Mapping[str, Mapping[str, np.ndarray]],
    baseline: str,
    *,
    alpha: float = 0.05,
    min_rounds: int = 20,
) -> pl.DataFrame:
    """Lift of every rung over ``baseline`` in each group of each dimension, over
    replications, with the family-wise error controlled over **all cells shown**.

    ``groups`` maps a dimension to its ``G`` group labels; ``counts[dim]`` ``(R, G)`` the
    rounds of each group in each replication; ``cell_values[rung][dim]`` ``(R, G)`` the
    rung's exact value per impression in each group and replication (the simulator's
    expected rewards averaged over the group's rounds). A cell's per-replication Δ is the
    difference of the rung's and the baseline's; its interval is Student t over the
    replications (:func:`replicated_difference`). Holm's method runs over every testable cell
    of every rung and dimension at once (a cell is testable when it has rounds in every
    replication and at least ``min_rounds`` on average), and each cell's interval is at its
    Holm step's level (:func:`holm_levels`). With fewer than two replications no interval
    over replications exists: every cell is ``exploratory`` (a point estimate, no claim).

    Returns columns: policy, dimension, group, n (mean rounds per replication), diff,
    ci_low, ci_high, relative_lift, verdict, true_diff (null: the Δ is itself exact),
    p_adjusted, ci_level.
    """
    cells = []
    for rung, dims in cell_values.items():
        if rung == baseline:
            continue
        for dim, labels in groups.items():
            values, base = dims[dim], cell_values[baseline][dim]
            n = counts[dim]
            for j, g in enumerate(labels):
                present = bool(np.all(n[:, j] > 0))
                x = values[:, j] - base[:, j]
                d = replicated_difference(x[np.isfinite(x)], level=1 - alpha)
                b = float(np.nanmean(base[:, j])) if present else math.nan
                testable = present and n.shape[0] >= 2 and float(n[:, j].mean()) >= min_rounds
                cells.append((rung, dim, g, float(n[:, j].mean()), d, b, testable))
    tested = [i for i, c in enumerate(cells) if c[6]]
    p_values = [cells[i][4].p_value for i in tested]
    adjusted = dict(zip(tested, holm(p_values), strict=True))
    levels = dict(zip(tested, holm_levels(p_values, alpha), strict=True))
    rows = []
    for i, (rung, dim, g, n_mean, d, b, testable) in enumerate(cells):
        if testable:
            lo, hi = interval_at(d, levels[i])
            v = verdict(d.diff, adjusted[i], alpha)
        else:
            lo, hi = -math.inf, math.inf
            replicated = next(iter(counts.values())).shape[0] >= 2
            v = "too few rounds" if replicated else "exploratory"
        rows.append(
            {
                "policy": rung,
                "dimension": dim,
                "group": g,
                "n": round(n_mean),
                "diff": d.diff,
                "ci_low": lo,
                "ci_high": hi,
                "relative_lift": d.diff / b if b and math.isfinite(b) else math.nan,
                "verdict": v,
                "true_diff": None,
                "p_adjusted": adjusted.get(i, math.nan),
                "ci_level": levels.get(i, math.nan),
            }
        )
    return pl.DataFrame(rows)
