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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import polars as pl

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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """Quantile of Student's t (bisection on the CDF; ``q`` in (0.5, 1)); cached, since a
    comparison asks for the same few (q, df) pairs many times."""
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 1.0 - t_two_sided_p(mid, df) / 2.0 < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


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
    edges = np.linspace(0, n, blocks + 1).astype(np.int64)
    sums = np.add.reduceat(d, edges[:-1])
    means = sums / np.diff(edges)
    # weight blocks by size (they differ by at most one round)
    se = float(means.std(ddof=1) / math.sqrt(blocks))
    if se == 0.0:
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    df = blocks - 1
    crit = t_quantile(0.5 + level / 2, df)
    if se == 0.0:
        p = 1.0 if mean == 0 else 0.0
        return PairedDifference(mean, 0.0, mean, mean, p, n, blocks)
    p = t_two_sided_p(mean / se, df)
    return PairedDifference(mean, se, mean - crit * se, mean + crit * se, p, n, blocks)


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


@dataclass(frozen=True)
class PolicyComparison:
    """One policy against the baseline: observed paired difference, its verdict, the truth
    (simulation only) and what a conclusive answer would take."""

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

    def sentence(self) -> str:
        pct = f"{self.relative_lift:+.1%}" if math.isfinite(self.relative_lift) else "n/a"
        interval = f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        level = f"{self.ci_level:.1%}".replace(".0%", "%")
        if self.verdict == UNSUPPORTED:
            return f"{self.policy} vs {self.baseline}: unsupported by this log — {self.reason}."
        if self.verdict == INCONCLUSIVE:
            need = (
                f"about {self.rounds_needed:,.0f} rounds would detect a {self.target_lift:.1%} lift"
                if math.isfinite(self.rounds_needed)
                else "more data is needed"
            )
            return (
                f"{self.policy} vs {self.baseline}: we can't tell yet "
                f"(difference {self.diff:+.4f}, {level} Holm-consistent CI {interval}, smallest "
                f"detectable {self.mde:.4f}; {need})."
            )
        return (
            f"{self.policy} is {self.verdict} than {self.baseline}: {self.diff:+.4f} per round "
            f"({pct}), {level} Holm-consistent CI {interval}, Holm-adjusted p = "
            f"{self.p_adjusted:.2g}."
        )


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
) -> list[PolicyComparison]:
    """Compare every policy in ``terms`` with ``baseline`` on their paired rounds.

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
        ci_low, ci_high = d.ci_low, d.ci_high
        if d.n_blocks >= 2 and math.isfinite(d.stderr):
            crit = t_quantile(0.5 + ci_level / 2, d.n_blocks - 1)
            ci_low, ci_high = d.diff - crit * d.stderr, d.diff + crit * d.stderr
        lift_abs = abs(target_lift * base_value)
        m = mde(d.stderr, alpha, power)
        needed = d.n * (m / lift_abs) ** 2 if lift_abs > 0 and math.isfinite(m) else math.inf
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
        level = f"{best.ci_level:.1%}".replace(".0%", "%")
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
