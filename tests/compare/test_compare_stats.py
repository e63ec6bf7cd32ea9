"""The comparison statistics against their formulas and against simulated truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.compare import (
    BETTER,
    INCONCLUSIVE,
    WORSE,
    PairedTerms,
    compare_to_baseline,
    group_lifts,
    headline,
    holm,
    mde,
    paired_difference,
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
