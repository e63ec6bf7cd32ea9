"""The comparison statistics against their formulas and against simulated truth."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from bandits.compare import (
    BETTER,
    EXCEEDS,
    INCONCLUSIVE,
    MAY_EXCEED,
    WITHIN,
    WORSE,
    Guardrail,
    PairedTerms,
    PairEvidence,
    block_edges,
    blocked_difference,
    check_guardrail,
    compare_family,
    compare_to_baseline,
    group_lifts,
    headline,
    holm,
    ladder_headline,
    ladder_pairs,
    mde,
    paired_difference,
    replicated_difference,
    replicated_group_lifts,
    t_quantile,
    t_two_sided_p,
)


def test_paired_difference_matches_batch_means_by_hand():
    a = np.arange(40, dtype=float)
    b = np.zeros(40)
    res = paired_difference(a, b, n_blocks=4)
    block_means = np.array([4.5, 14.5, 24.5, 34.5])
    se = block_means.std(ddof=1) / 2.0
    assert res.diff == pytest.approx(19.5)
    assert res.stderr == pytest.approx(se)
    t3 = 3.182446305284263  # Student t, 3 degrees of freedom, 0.975 quantile (tables)
    assert res.ci_low == pytest.approx(19.5 - t3 * se)
    assert res.p_value == pytest.approx(t_two_sided_p(19.5 / se, 3))
    assert res.n_blocks == 4


@pytest.mark.parametrize(
    ("df", "q975", "t", "p"),
    # reference values from statistical tables / closed forms
    [
        (1, 12.706204736174694, 1.0, 0.5),
        (5, 2.5705818356363146, 2.5705818356363146, 0.05),
        (19, 2.0930240544083087, 0.0, 1.0),
        (200, 1.9718962236339088, 1.9718962236339088, 0.05),
    ],
)
def test_student_t_against_tables(df, q975, t, p):
    assert t_quantile(0.975, df) == pytest.approx(q975, rel=1e-9)
    assert t_two_sided_p(t, df) == pytest.approx(p, rel=1e-7)


def test_tiny_samples_have_infinite_intervals():
    res = paired_difference(np.ones(10), np.zeros(10))
    assert math.isinf(res.stderr) and res.p_value == 1.0


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.001, 0.9]) == pytest.approx([0.002, 0.9])


def test_mde_formula():
    assert mde(0.01, alpha=0.05, power=0.8) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-5)


def test_interval_coverage_on_autocorrelated_differences():
    """Batch-means intervals keep close to 95% coverage when rounds are autocorrelated
    (an AR(1) process, as with a learning policy's rewards), where the naive i.i.d.
    interval would not."""
    rng = np.random.default_rng(0)
    reps, n, rho, mu = 400, 4000, 0.9, 0.1
    eps = rng.standard_normal((reps, n))
    x = np.empty_like(eps)
    x[:, 0] = eps[:, 0]
    for t in range(1, n):  # builds the test data; 4000 vectorised steps over all reps
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    hits = naive_hits = 0
    for r in range(reps):
        res = paired_difference(x[r] + mu, np.zeros(n), n_blocks=40)
        hits += res.ci_low <= mu <= res.ci_high
        se_naive = x[r].std(ddof=1) / math.sqrt(n)
        naive_hits += abs(x[r].mean()) <= 1.96 * se_naive
    assert 0.91 <= hits / reps <= 0.98
    assert naive_hits / reps < 0.7


def _terms(rng, n, lift):
    base = rng.binomial(1, 0.2, n).astype(float)
    return {
        "base": PairedTerms(base, truth=np.full(n, 0.2)),
        "a": PairedTerms(
            np.clip(base + rng.binomial(1, lift, n), 0, 1), truth=np.full(n, 0.2 + lift)
        ),
        "b": PairedTerms(base.copy(), truth=np.full(n, 0.2)),
    }


def test_verdicts_and_headline():
    rng = np.random.default_rng(1)
    comps = {c.policy: c for c in compare_to_baseline(_terms(rng, 20_000, 0.05), "base")}
    assert comps["a"].verdict == BETTER and comps["b"].verdict == INCONCLUSIVE
    assert comps["a"].p_adjusted >= comps["a"].p_value
    assert comps["a"].true_diff == pytest.approx(0.05)
    assert "we can't tell yet" in comps["b"].sentence()
    assert "a beats base" in headline(list(comps.values()))
    flipped = compare_to_baseline(
        {"base": PairedTerms(np.ones(5000)), "c": PairedTerms(np.zeros(5000))}, "base"
    )
    assert flipped[0].verdict == WORSE


def test_rounds_needed_reach_the_mde():
    """At the suggested sample size the MDE equals the target lift (se ∝ 1/sqrt(n))."""
    rng = np.random.default_rng(2)
    (c,) = compare_to_baseline(
        {
            "base": PairedTerms(rng.binomial(1, 0.2, 2000).astype(float)),
            "a": PairedTerms(rng.binomial(1, 0.2, 2000).astype(float)),
        },
        "base",
        target_lift=0.05,
    )
    assert c.mde * math.sqrt(c.n / c.rounds_needed) == pytest.approx(0.05 * c.baseline_value)


def test_group_lifts_find_who_gains():
    rng = np.random.default_rng(3)
    n = 20_000
    labels = np.where(rng.random(n) < 0.5, "loyal", "new").astype(object)
    base = rng.binomial(1, 0.2, n).astype(float)
    gain = np.where(labels == "loyal", rng.binomial(1, 0.1, n), 0)
    terms = {"base": PairedTerms(base), "a": PairedTerms(np.clip(base + gain, 0, 1))}
    table = group_lifts(terms, "base", {"segment": labels})
    verdicts = dict(zip(table["group"], table["verdict"], strict=True))
    assert verdicts == {"loyal": BETTER, "new": INCONCLUSIVE}


def test_unknown_baseline():
    with pytest.raises(KeyError, match="baseline 'x'"):
        compare_to_baseline({"a": PairedTerms(np.ones(30))}, "x")


# ----- over replications, the whole ladder as one family -------------------------------------


def test_replicated_difference_by_hand():
    x = np.array([0.01, 0.03, -0.01, 0.02, 0.05])
    res = replicated_difference(x)
    se = x.std(ddof=1) / math.sqrt(5)
    t4 = 2.7764451051977987  # Student t, 4 degrees of freedom, 0.975 quantile (tables)
    assert res.diff == pytest.approx(x.mean()) and res.stderr == pytest.approx(se)
    assert res.ci_low == pytest.approx(x.mean() - t4 * se)
    assert res.p_value == pytest.approx(t_two_sided_p(x.mean() / se, 4))
    assert (res.n, res.n_blocks) == (5, 5)
    assert math.isinf(replicated_difference(np.array([0.2])).stderr)  # one run: no interval
    same = replicated_difference(np.zeros(4))  # e.g. a deterministic policy twice
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_blocked_difference_equals_paired_difference():
    rng = np.random.default_rng(4)
    a, b = rng.random(1003), rng.random(1003)
    direct = paired_difference(a, b, n_blocks=17)
    edges = block_edges(1003, 17)
    sums = np.add.reduceat(a, edges[:-1]) - np.add.reduceat(b, edges[:-1])
    from_sums = blocked_difference(sums, np.diff(edges))
    assert from_sums.diff == pytest.approx(direct.diff, abs=1e-12)
    assert from_sums.stderr == pytest.approx(direct.stderr, rel=1e-12)
    assert from_sums.p_value == pytest.approx(direct.p_value, rel=1e-9)


def _values(rng, effects, reps, sd):
    """Per-replication values ``(reps,)`` of rungs with the given mean effects, correlated
    within a replication (a shared world effect)."""
    world = rng.normal(0.3, 0.05, reps)
    return {k: world + mu + rng.normal(0, sd, reps) for k, mu in effects.items()}


def _family(values, baseline):
    """Every pair's verdict over replications (one family) and the rungs' mean values."""
    pairs = ladder_pairs(list(values), baseline)
    evidence = {p: PairEvidence(replicated_difference(values[p[0]] - values[p[1]])) for p in pairs}
    means = {k: float(v.mean()) for k, v in values.items()}
    reps = len(next(iter(values.values())))
    return compare_family(evidence, means, replications=reps, unit="replications"), means


def test_family_intervals_decide_the_verdicts():
    """Holm-consistent: every printed interval excludes 0 exactly when its verdict is
    better/worse, at a level between 1 - alpha and 1 - alpha/m."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        effects = {"base": 0.0, **{k: rng.choice([0.0, 0.004, 0.02]) for k in "abc"}}
        family, _ = _family(_values(rng, effects, 12, 0.01), "base")
        assert len(family) == 6  # every pair of 4 rungs, the baseline pairs first
        assert [c.baseline for c in family[:3]] == ["base"] * 3
        for c in family:
            excludes = c.ci_low > 0 or c.ci_high < 0
            assert excludes == (c.verdict in {BETTER, WORSE}), c.sentence()
            assert 0.95 - 1e-12 <= c.ci_level <= 1 - 0.05 / 6 + 1e-12
            if c.verdict == INCONCLUSIVE:
                assert "replications of this campaign would detect" in c.sentence()


def test_ladder_headline_answers_the_whole_ladder():
    rng = np.random.default_rng(6)
    effects = {
        "retargeting": 0.0,
        "one_for_all": 0.05,
        "segments": 0.07,
        "linucb": 0.1,
        "vw": 0.05,
    }
    family, means = _family(_values(rng, effects, 10, 0.002), "retargeting")
    guard = Guardrail(max_extra_per_1000=1.0)
    cost = {k: replicated_difference(np.full(10, 0.004) + rng.normal(0, 1e-5, 10)) for k in effects}
    cost["one_for_all"] = replicated_difference(np.full(10, 0.009) + rng.normal(0, 1e-5, 10))
    vs = {
        k: replicated_difference(
            (0.009 if k == "one_for_all" else 0.004) - np.full(10, 0.004) + rng.normal(0, 1e-5, 10)
        )
        for k in effects
        if k != "retargeting"
    }
    checks = check_guardrail(cost, vs, "retargeting", guard)
    assert checks["one_for_all"].status == EXCEEDS and checks["linucb"].status == WITHIN
    text = ladder_headline(
        family,
        "retargeting",
        means,
        focus=["linucb", "vw"],
        versus=["retargeting", "segments"],
        guardrails=checks,
        guardrail=guard,
    )
    for rung in ("one_for_all", "segments", "linucb", "vw"):  # every rung with its verdict
        assert rung in text.split(";")[0], text
    assert "linucb beats both retargeting and segments" in text
    assert "vw beats retargeting but is worse than segments" in text
    assert "best rung: linucb (better than every other rung)" in text
    assert "one_for_all wins on reward but exceeds the unsubscribe budget" in text


def test_guardrail_levels_and_statuses():
    rates = {"a": np.full(5, 0.002), "b": np.array([0.004, 0.006, 0.005, 0.007, 0.0055])}
    cost = {k: replicated_difference(v) for k, v in rates.items()}
    checks = check_guardrail(cost, {}, "a", Guardrail(max_per_1000=5.0), alpha=0.05)
    assert checks["a"].status == WITHIN and checks["b"].status == MAY_EXCEED
    assert checks["a"].level == pytest.approx(1 - 0.05 / 2)  # Bonferroni over 2 intervals
    lo, hi = checks["b"].rate[1:]
    assert lo < 5.0 < hi
    assert check_guardrail(cost, {}, "a", Guardrail()) == {}


def test_replicated_group_lifts_control_every_cell_at_once():
    """A planted gain in one cell is found; the family is every cell of every rung; with one
    replication the table is exploratory (no claims)."""
    rng = np.random.default_rng(7)
    reps, groups = 10, {"segment": ["loyal", "new"], "channel": ["email", "sms", "web"]}
    counts = {d: np.full((reps, len(g)), 300) for d, g in groups.items()}
    base = {d: rng.normal(0.2, 0.01, (reps, len(g))) for d, g in groups.items()}
    gain = {d: b + rng.normal(0, 0.002, b.shape) for d, b in base.items()}
    gain["segment"][:, 0] += 0.03
    same = {d: b + rng.normal(0, 0.002, b.shape) for d, b in base.items()}
    table = replicated_group_lifts(groups, counts, {"base": base, "a": gain, "b": same}, "base")
    claims = table.filter(pl.col("verdict").is_in([BETTER, WORSE]))
    assert claims.select("policy", "group").rows() == [("a", "loyal")]
    assert table.height == 10 and set(table["ci_level"].round(6)) <= {
        round(1 - 0.05 / k, 6) for k in range(1, 11)
    }
    one = replicated_group_lifts(
        groups,
        {d: c[:1] for d, c in counts.items()},
        {k: {d: v[:1] for d, v in x.items()} for k, x in {"base": base, "a": gain}.items()},
        "base",
    )
    assert set(one["verdict"]) == {"exploratory"}
