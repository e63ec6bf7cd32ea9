"""Logs without a propensity column: load_log(propensity="auto" | "require" | "estimate")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bandits.data import iter_log_batches, load_log, write_log
from bandits.data.load import with_estimated_propensities
from bandits.errors import ConfigError, DataError

CATALOG = pl.DataFrame({"variant_id": ["a", "b", "c"]})


def rule_log(n: int = 1500, seed: int = 0) -> pl.DataFrame:
    """ε-greedy (0.4) over a rule on ``segment`` and ``visits <= 3`` (K = 3), with the exact
    propensity and distribution."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["new", "loyal"], n)
    visits = rng.integers(0, 10, n)
    rule = np.where(visits <= 3, 2, np.where(segment == "new", 0, 1))
    probs = np.full((n, 3), 0.4 / 3)
    probs[np.arange(n), rule] += 0.6
    action = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return pl.DataFrame(
        {
            "action": np.array(["a", "b", "c"])[action],
            "reward": rng.random(n),
            "propensity": probs[np.arange(n), action],
            "action_probs": pl.Series(probs, dtype=pl.Array(pl.Float64, 3)),
            "segment": segment,
            "visits": visits,
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_auto_estimates_when_the_log_has_no_propensities(tmp_path: Path, suffix: str) -> None:
    full = rule_log()
    path = write_log(full.drop("propensity", "action_probs"), tmp_path / f"log{suffix}")
    data = load_log(path, catalog=CATALOG)
    assert data.propensity_source == "estimated"
    assert "model" in data.propensity_model
    assert data.logging_probs is not None and data.logging_probs.shape == (data.n, 3)
    np.testing.assert_allclose(data.logging_probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(
        data.propensity, data.logging_probs[np.arange(data.n), data.action]
    )
    assert data.propensity.min() > 0.0 and data.propensity.max() <= 1.0
    exact = full["action_probs"].to_numpy()
    assert np.abs(data.logging_probs - exact).mean() < 0.03
    assert data.frame.columns == ["action", "reward", "segment", "visits"]
    assert data.context_columns == ("segment", "visits")


def test_auto_uses_the_column_when_present() -> None:
    data = load_log(rule_log(), catalog=CATALOG)
    assert data.propensity_source == "logged" and data.propensity_model == ""
    np.testing.assert_array_equal(data.propensity, rule_log()["propensity"].to_numpy())


def test_require_raises_one_line_naming_the_column(tmp_path: Path) -> None:
    path = write_log(rule_log().drop("propensity", "action_probs"), tmp_path / "log.csv")
    with pytest.raises(DataError) as info:
        load_log(path, catalog=CATALOG, propensity="require")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("missing required column 'propensity' (present: action, reward")
    assert "propensity='auto'" in message


def test_estimate_ignores_the_columns_even_when_wrong() -> None:
    frame = rule_log().with_columns(
        propensity=pl.lit(None, dtype=pl.Float64),  # null everywhere: not read
        action_probs=pl.lit([1.0, 0.0, 0.0], dtype=pl.Array(pl.Float64, 3)),
    )
    data = load_log(frame, catalog=CATALOG, propensity="estimate", seed=3)
    assert data.propensity_source == "estimated"
    again = load_log(frame, catalog=CATALOG, propensity="estimate", seed=3)
    np.testing.assert_array_equal(data.logging_probs, again.logging_probs)  # seeded
    assert "propensity" not in data.context_columns


def test_partial_propensity_column_is_an_error_not_estimated() -> None:
    frame = rule_log().with_columns(
        pl.when(pl.int_range(pl.len()).is_in([4, 9]))
        .then(None)
        .otherwise(pl.col("propensity"))
        .alias("propensity")
    )
    with pytest.raises(DataError, match=r"column 'propensity': null values in rows \[4, 9\]"):
        load_log(frame, catalog=CATALOG)


def test_action_probs_without_propensity_is_reported() -> None:
    with pytest.raises(DataError) as info:
        load_log(rule_log().drop("propensity"), catalog=CATALOG)
    message = str(info.value)
    assert "missing required column 'propensity'" in message and "\n" not in message
    assert "propensity='estimate'" in message


def test_bad_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="propensity must be one of 'auto', 'require'"):
        load_log(rule_log(), catalog=CATALOG, propensity="maybe")


def test_columns_selection_with_estimation() -> None:
    frame = rule_log().drop("propensity", "action_probs").with_columns(extra=pl.lit(1.0))
    data = load_log(frame, catalog=CATALOG, columns=["segment", "visits"])
    assert data.frame.columns == ["action", "reward", "segment", "visits"]
    assert data.propensity_source == "estimated"


def test_streaming_requires_the_column_and_says_so(tmp_path: Path) -> None:
    path = write_log(rule_log().drop("propensity", "action_probs"), tmp_path / "log.parquet")
    with pytest.raises(DataError) as info:
        iter_log_batches(path, catalog=CATALOG)
    message = str(info.value)
    assert "missing required column 'propensity'" in message and "streaming" in message
    assert "\n" not in message


def test_with_estimated_propensities_replaces_the_logged_ones() -> None:
    data = load_log(rule_log(seed=1), catalog=CATALOG)
    est = with_estimated_propensities(data, seed=1)
    assert est.propensity_source == "estimated" and data.propensity_source == "logged"
    assert est.logging_probs is not None
    assert np.abs(est.propensity - data.propensity).mean() < 0.05
