"""A real decision log from the simulator, written the way the simulate app writes it, loads
back with no conversion: action indices, propensities, logging distribution, features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bandits.data import is_ground_truth, iter_log_batches, load_log, write_log_dir
from bandits.policies import make_policy
from bandits.simulate import (
    AudienceSettings,
    Environment,
    OnlineResult,
    default_feature_schema,
    run_online,
)


@pytest.fixture(scope="module")
def simulated() -> tuple[OnlineResult, Environment]:
    env = Environment(AudienceSettings(n_users=500, impressions_per_day=200), 11)
    result = run_online(env, make_policy("uniform"), 600, 3, eval_rounds=0)
    return result, env


@pytest.fixture
def app_dir(simulated, tmp_path: Path) -> Path:
    """``decision_log/`` exactly as ``experiments/simulate.py`` logs it."""
    result, env = simulated
    d = tmp_path / "decision_log"
    d.mkdir()
    result.log.write_parquet(d / "decision_log.parquet")
    env.catalog.to_frame().write_parquet(d / "catalog.parquet")
    meta = {"features": default_feature_schema().to_dict(), "policy": "uniform", "rounds": 600}
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def _expected_index(log: pl.DataFrame, env: Environment) -> np.ndarray:
    ids = list(env.catalog.variant_ids)
    return (
        log["action"].replace_strict(ids, list(range(len(ids))), return_dtype=pl.Int64).to_numpy()
    )


def test_simulate_directory_loads_as_is(simulated, app_dir: Path) -> None:
    result, env = simulated
    log = result.log
    k = env.catalog.n_variants
    data = load_log(app_dir)

    assert data.source == str(app_dir)
    assert data.n == log.height > 0
    assert data.n_actions == k
    assert data.action_ids == env.catalog.variant_ids
    assert not data.catalog_inferred
    assert data.catalog.equals(env.catalog.to_frame())
    assert data.action.dtype == np.int64 and data.action.shape == (data.n,)
    np.testing.assert_array_equal(data.action, _expected_index(log, env))
    np.testing.assert_array_equal(data.reward, log["reward"].to_numpy())
    np.testing.assert_allclose(data.propensity, 1.0 / k)  # uniform logging
    assert data.logging_probs is not None and data.logging_probs.shape == (data.n, k)
    np.testing.assert_allclose(data.logging_probs, 1.0 / k)
    assert data.cost_columns == ("unsubscribed",)

    # features round-trip through metadata.json, and featurise the loaded frame identically
    assert data.features == default_feature_schema()
    np.testing.assert_array_equal(
        data.features.transform(data.frame), default_feature_schema().transform(log)
    )
    # context: every observable column, never bookkeeping, costs or ground truth
    assert set(data.features.columns) <= set(data.context_columns)
    assert "hour" in data.context_columns
    for col in ("round", "day", "timestamp", "user_key", "unsubscribed", "action_probs"):
        assert col not in data.context_columns
    assert not any(is_ground_truth(c) for c in data.context_columns)
    assert "true_expected_reward" in data.frame.columns  # kept in the frame, not context
    spec = data.problem_spec()
    assert spec.n_actions == k and spec.features == data.features


def test_simulate_file_with_explicit_catalog(simulated, app_dir: Path) -> None:
    result, env = simulated
    data = load_log(app_dir / "decision_log.parquet", catalog=app_dir / "catalog.parquet")
    np.testing.assert_array_equal(data.action, _expected_index(result.log, env))
    # no metadata.json: features inferred from the context columns (Enum levels kept sorted)
    assert set(data.features.columns) == set(data.context_columns)
    segment = next(c for c in data.features.categorical if c.name == "segment")
    assert segment.levels == tuple(sorted(result.log["segment"].unique().cast(pl.String)))
    assert data.features.transform(data.frame).shape[0] == data.n


def test_simulate_directory_streams_like_whole(app_dir: Path) -> None:
    whole = load_log(app_dir)
    batches = list(iter_log_batches(app_dir, batch_rows=128))
    assert [b.row_offset for b in batches] == list(range(0, whole.n, 128))
    np.testing.assert_array_equal(np.concatenate([b.action for b in batches]), whole.action)
    np.testing.assert_array_equal(np.concatenate([b.propensity for b in batches]), whole.propensity)
    assert all(b.features == whole.features for b in batches)


def test_write_log_dir_round_trip(simulated, tmp_path: Path) -> None:
    result, env = simulated
    d = write_log_dir(
        tmp_path / "out",
        result.log,
        env.catalog.to_frame(),
        metadata={"features": default_feature_schema().to_dict()},
    )
    assert sorted(p.name for p in d.iterdir()) == [
        "catalog.parquet",
        "decision_log.parquet",
        "metadata.json",
    ]
    data = load_log(d)
    assert data.frame.equals(result.log)
    assert data.features == default_feature_schema()
