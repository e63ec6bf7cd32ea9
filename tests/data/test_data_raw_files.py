"""Raw files with foreign column names, table-driven: every way a team's export can differ
from ours (CSV or parquet, string or integer-looking ids, a shuffled catalog keyed by another
column, index / id-like / personal columns, rows out of time order) maps through the
``columns`` config to the same estimates as the hand-converted log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from omegaconf import OmegaConf

from bandits.data import load_log
from bandits.offline import evaluate_policy, make_estimators
from bandits.policies import make_policy
from bandits.simulate.scenarios import make_scenario
from experiments.common import log_options

ESTIMATORS = ("ips", "snips", "dr")
MAPPING = {
    "action": "item",
    "reward": "clicked",
    "propensity": "p_shown",
    "timestamp": "sent_at",
    "catalog_id": "item",
    "reward_type": "click",
}


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> tuple[Path, Path, pl.DataFrame, pl.DataFrame]:
    """The hand-converted log (our names, time order) and its catalog, as files."""
    scenario = make_scenario("uniform", 3000, 20261201)
    drop = ["round", "day", "user_key", "action_probs", "true_expected_reward", "expected_reward"]
    frame = scenario.data.frame.drop(drop)  # what a real export has: no ground truth
    frame = frame.with_columns(
        pl.Series("action", [scenario.data.action_ids[a] for a in scenario.data.action])
    )
    catalog = scenario.catalog.select("variant_id", "category", "tone", "discount")
    d = tmp_path_factory.mktemp("ours")
    frame.write_parquet(d / "log.parquet")
    catalog.write_parquet(d / "catalog.parquet")
    return d / "log.parquet", d / "catalog.parquet", frame, catalog


def _theirs(frame: pl.DataFrame, catalog: pl.DataFrame, case: str, d: Path) -> tuple[Path, Path]:
    """``frame`` exported the way ``case`` says; returns (log, catalog) paths."""
    rng = np.random.default_rng(7)
    ids = catalog["variant_id"].to_list()
    if "int_ids" in case:  # the shop's item numbers: integers in parquet, digits in a CSV
        numbers = {v: 1000 + 7 * i for i, v in enumerate(ids)}
        frame = frame.with_columns(pl.col("action").replace_strict(numbers, return_dtype=pl.Int64))
        catalog = catalog.with_columns(pl.col("variant_id").replace_strict(numbers).cast(pl.String))
    theirs = frame.rename(
        {"action": "item", "reward": "clicked", "propensity": "p_shown", "timestamp": "sent_at"}
    ).with_columns(pl.col("clicked").cast(pl.Int64))
    if "extra_columns" in case:
        n = theirs.height
        theirs = theirs.with_row_index("").with_columns(
            pl.Series("customer_id", rng.permutation(10**6)[:n]),  # digits, unique: an id
            pl.Series("first_name", rng.choice(["Ana", "Ben", "Chloé"], n)),
        )
    if "shuffled_rows" in case:
        theirs = theirs.sample(fraction=1.0, shuffle=True, seed=3)
    items = catalog.sample(fraction=1.0, shuffle=True, seed=5).rename({"variant_id": "item"})
    ext = "csv" if "csv" in case else "parquet"
    log_path, cat_path = d / f"theirs.{ext}", d / f"items.{ext}"
    if ext == "csv":
        theirs = theirs.with_columns(pl.col("sent_at").dt.strftime("%Y-%m-%d %H:%M:%S%.3f"))
        theirs.write_csv(log_path)
        items.write_csv(cat_path)
    else:
        theirs.write_parquet(log_path)
        items.write_parquet(cat_path)
    return log_path, cat_path


def _estimates(data, variant: str = "home_friendly_20off") -> dict[str, tuple[float, ...]]:
    policy = make_policy("fixed", {"variant": variant})
    policy.reset(data.problem_spec(), 0)
    result = evaluate_policy(
        data, policy, make_estimators(list(ESTIMATORS)), cross_fit_folds=0, seed=0
    )
    return {k: (e.value, e.ci_low, e.ci_high) for k, e in result.estimates.items()}


CASES = [
    "parquet",
    "csv",
    "parquet int_ids",
    "csv int_ids",
    "csv extra_columns",
    "parquet extra_columns int_ids",
    "csv shuffled_rows",
    "parquet shuffled_rows extra_columns",
]


@pytest.mark.parametrize("case", CASES)
def test_a_raw_export_maps_to_the_hand_converted_estimates(ours, tmp_path, case):
    log_path, cat_path, frame, catalog = ours
    if "csv" in case:  # CSV keeps milliseconds; the hand-converted log the same times
        frame = frame.with_columns(pl.col("timestamp").dt.truncate("1ms"))
        log_path = tmp_path / "ours.parquet"
        frame.write_parquet(log_path)
    expected_data = load_log(log_path, cat_path)
    expected = _estimates(expected_data)
    theirs_log, theirs_cat = _theirs(frame, catalog, case, tmp_path)
    options = log_options(OmegaConf.create({"columns": MAPPING}))
    data = load_log(theirs_log, theirs_cat, **options)
    assert data.context_columns == expected_data.context_columns
    if "extra_columns" in case:
        assert {c for c, _ in data.excluded_columns} == {"", "customer_id", "first_name"}
    assert data.reordered == ("shuffled_rows" in case)
    variant = "home_friendly_20off"
    if "int_ids" in case:  # the same items under the shop's numbers, in the shuffled order
        number = {v: str(1000 + 7 * i) for i, v in enumerate(catalog["variant_id"].to_list())}
        assert sorted(data.action_ids) == sorted(number[v] for v in expected_data.action_ids)
        assert list(data.action_ids) != [number[v] for v in expected_data.action_ids]
        variant = number[variant]
    got = _estimates(data, variant)
    if "shuffled_rows" in case:  # a sort restores the order; sums in the same order
        for name in ESTIMATORS:
            assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name
    else:
        assert got == expected  # to the last digit
