"""Interval coverage on simulated logs: the test-sized version of
``experiments/benchmarks/coverage.py`` (same scenarios, targets and machinery).

Each check counts how many of ``n`` independent logs' 95 % intervals contain that log's true
value. A correct interval's count is Binomial(n, 0.95); the threshold is the fewest covered
logs it reaches with probability ≥ 99.9 % (40 logs: 33, i.e. P(X ≤ 32) = 0.07 %; 200 logs:
179), so a correct interval fails one of the 18 checks below with probability < 2 %, while an
interval covering 80 % of the time fails each check with probability > 50 %.
"""

from __future__ import annotations

import pytest

from experiments.benchmarks.coverage import (
    CoverageConfig,
    binomial_cdf,
    min_covered,
    run_coverage,
    summarize,
)

UNBIASED = ("ips", "snips", "dr")


def _undercovered(config: CoverageConfig) -> list[tuple[str, str, str, int, int]]:
    records, _ = run_coverage(config)
    summary = summarize(records)
    need = min_covered(config.n_logs)
    assert summary.height == len(config.scenarios) * 3 * len(UNBIASED)
    assert (summary["logs"] == config.n_logs).all()
    return [
        (r["scenario"], r["target"], r["estimator"], round(r["coverage"] * r["logs"]), need)
        for r in summary.to_dicts()
        if round(r["coverage"] * r["logs"]) < need
    ]


def test_thresholds_are_rare_for_a_correct_interval_and_catch_a_wrong_one():
    assert min_covered(40) == 33 and min_covered(200) == 179
    assert binomial_cdf(32, 40, 0.95) < 1e-3 <= binomial_cdf(33, 40, 0.95)
    assert binomial_cdf(32, 40, 0.80) > 0.5
    assert binomial_cdf(178, 200, 0.95) < 1e-3 <= binomial_cdf(179, 200, 0.95)


@pytest.mark.parametrize("scenario", ["uniform", "epsilon_greedy"])
def test_intervals_cover_the_true_value(scenario):
    """40 logs of 5,000 rows: IPS, SNIPS and DR cover each target's true value (popular
    and rare fixed variants, the retargeting rule) in ≥ 33 of 40 logs."""
    config = CoverageConfig(
        scenarios=(scenario,), n_logs=40, n_rows=5000, estimators=UNBIASED, jobs=1
    )
    assert _undercovered(config) == []


@pytest.mark.slow
def test_intervals_cover_the_true_value_full():
    """The benchmark's size: 200 logs of 10,000 rows (seeds 1000..1199) per scenario."""
    config = CoverageConfig(
        scenarios=("uniform", "epsilon_greedy"), n_logs=200, estimators=UNBIASED, jobs=2
    )
    assert _undercovered(config) == []


@pytest.mark.parametrize(("model", "folds"), [("logistic", 2), ("ridge", 0)])
def test_no_zero_width_intervals_on_rare_click_logs(model, folds):
    """With ~45 clicks in 10,000 rows, a target's weighted rows often hold no click at all:
    an interval of width 0 then claims certainty it does not have (IPS and SNIPS; with the
    in-sample ridge model, the evaluate app's default, every estimator: a variant whose
    logged rows have no click gets a model predicting exactly 0)."""
    config = CoverageConfig(
        scenarios=("rare_clicks",), n_logs=8, n_rows=10_000, model=model, folds=folds, jobs=1
    )
    records, _ = run_coverage(config)
    zero = records.filter((records["ci_high"] - records["ci_low"]) == 0)
    assert records.height == 8 * 3 * len(config.estimator_names())
    assert zero.height == 0, zero.select("target", "estimator", "seed", "value").to_dicts()
