"""Input forms: CSV with string variant ids, integer actions without a catalog, frames,
column projection, context detection, and atomic writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bandits.data import detect_context_columns, load_log, write_log
from bandits.data.context import infer_features_lazy
from bandits.errors import DataError
from bandits.features import FeatureSchema


def variant_log(n: int = 40, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A log with string variant ids over a 4-variant catalog, non-uniform logging."""
    rng = np.random.default_rng(seed)
    ids = ["promo_a", "promo_b", "retarget", "generic"]
    probs = rng.dirichlet(np.ones(len(ids)), size=n)
    action = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, len(ids) - 1)
    frame = pl.DataFrame(
        {
            "timestamp": [dt.datetime(2026, 1, 5) + dt.timedelta(minutes=7 * i) for i in range(n)],
            "user_id": rng.integers(0, 10, n),
            "action": pl.Series(ids).gather(action),
            "reward": rng.random(n).round(3),
            "propensity": probs[np.arange(n), action],
            "action_probs": pl.Series(probs, dtype=pl.Array(pl.Float64, len(ids))),
            "unsubscribed": rng.random(n) < 0.1,
            "channel": pl.Series(["email", "push", "sms"]).gather(rng.integers(0, 3, n)),
            "hour": rng.integers(0, 24, n),
            "spend": rng.gamma(2.0, 10.0, n),
            "expected_reward": rng.random(n),
            "true_click_prob": rng.random(n),
        }
    )
    catalog = pl.DataFrame(
        {"variant_id": ids, "discount": [10, 20, 0, 0], "tone": ["fun", "fun", "calm", "calm"]}
    )
    return frame, catalog


def test_csv_with_string_variant_ids(tmp_path: Path) -> None:
    frame, catalog = variant_log()
    write_log(frame, tmp_path / "log.csv")
    write_log(catalog, tmp_path / "catalog.csv")
    assert (tmp_path / "log.csv").read_text().count("\n") == frame.height + 1

    data = load_log(tmp_path / "log.csv", catalog=tmp_path / "catalog.csv")
    ids = catalog["variant_id"].to_list()
    assert data.action_ids == tuple(ids)
    expected = np.array([ids.index(v) for v in frame["action"].to_list()])
    np.testing.assert_array_equal(data.action, expected)
    np.testing.assert_array_equal(data.reward, frame["reward"].to_numpy())
    np.testing.assert_array_equal(data.propensity, frame["propensity"].to_numpy())
    assert data.logging_probs is not None
    np.testing.assert_array_equal(data.logging_probs, frame["action_probs"].to_numpy())
    assert data.frame["timestamp"].dtype == pl.Datetime
    assert data.context_columns == ("channel", "hour", "spend")
    assert data.cost_columns == ("unsubscribed",)
    np.testing.assert_array_equal(data.costs("unsubscribed"), frame["unsubscribed"].to_numpy())
    assert data.features.columns == ("channel", "hour", "spend")
    assert data.features.categorical[0].levels == ("email", "push", "sms")
    # the same log from parquet gives the same arrays and features
    write_log(frame, tmp_path / "log.parquet")
    same = load_log(tmp_path / "log.parquet", catalog=catalog)
    np.testing.assert_array_equal(same.action, data.action)
    assert same.features == data.features


def test_integer_actions_without_catalog() -> None:
    frame = pl.DataFrame(
        {
            "action": [0, 4, 4, 1, 0],
            "reward": [True, False, True, True, False],  # booleans read as 0/1
            "propensity": [0.2] * 5,
            "action_probs": pl.Series([[0.2] * 5] * 5, dtype=pl.Array(pl.Float64, 5)),
        }
    )
    data = load_log(frame)
    assert data.catalog_inferred
    assert data.action_ids == ("0", "1", "2", "3", "4") and data.n_actions == 5
    assert data.catalog.columns == ["variant_id"]
    np.testing.assert_array_equal(data.action, [0, 4, 4, 1, 0])
    np.testing.assert_array_equal(data.reward, [1.0, 0.0, 1.0, 1.0, 0.0])
    assert data.source == "<frame>" and data.context_columns == ()
    assert data.features == FeatureSchema()


def test_integer_actions_index_a_given_catalog(tmp_path: Path) -> None:
    frame, catalog = variant_log()
    ids = catalog["variant_id"].to_list()
    as_index = frame.with_columns(
        pl.col("action").replace_strict(ids, list(range(4)), return_dtype=pl.Int64)
    )
    write_log(as_index, tmp_path / "log.csv")
    data = load_log(tmp_path / "log.csv", catalog=catalog, action_index="position")
    assert not data.catalog_inferred and data.action_ids == tuple(ids)
    np.testing.assert_array_equal(data.action, as_index["action"].to_numpy())


def test_arrays_are_zero_copy_views_of_the_frame(tmp_path: Path) -> None:
    frame, catalog = variant_log(200)
    write_log(
        frame.with_columns(pl.col("action").cast(pl.Enum(catalog["variant_id"]))),
        tmp_path / "log.parquet",
    )
    data = load_log(tmp_path / "log.parquet", catalog=catalog)
    for arr in (data.reward, data.propensity, data.logging_probs):
        assert arr is not None and not arr.flags.owndata and not arr.flags.writeable
    assert data.action.dtype == np.int64


def test_columns_projection_and_explicit_context(tmp_path: Path) -> None:
    frame, catalog = variant_log()
    path = write_log(frame, tmp_path / "log.parquet")
    data = load_log(path, catalog, columns=["hour"])
    # the time column is always read: the log is ordered and split by it
    assert data.frame.columns == ["timestamp", "action", "reward", "propensity", "hour"]
    assert data.context_columns == ("hour",) and data.logging_probs is None
    data = load_log(path, catalog, context_columns=["channel", "user_id"])
    assert data.context_columns == ("channel", "user_id")
    assert data.features.columns == ("channel", "user_id")
    with pytest.raises(DataError, match="unknown column"):
        load_log(path, catalog, columns=["nope"])


def test_context_detection_skips_outcomes_bookkeeping_and_truth() -> None:
    frame, _ = variant_log()
    schema = frame.with_columns(
        pl.lit(1).alias("round"), pl.lit(None).alias("nothing"), pl.lit(0.5).alias("clicks")
    ).schema
    assert detect_context_columns(schema) == ("channel", "hour", "spend", "clicks")
    slot = frame.with_columns(pl.lit(1).alias("position")).schema  # a slot shapes clicks
    assert "position" in detect_context_columns(slot)
    assert detect_context_columns(schema, reward_column="clicks", cost_columns=()) == (
        "unsubscribed",
        "channel",
        "hour",
        "spend",
    )


def test_lazy_inference_matches_feature_schema_infer(tmp_path: Path) -> None:
    frame, _ = variant_log(500)
    frame = frame.with_columns(flag=pl.col("hour") > 12)
    columns = ("channel", "hour", "flag", "spend")
    eager = FeatureSchema.infer(frame, columns)
    lazy = infer_features_lazy(frame.lazy(), frame.schema, columns, "<frame>")
    assert [c.levels for c in lazy.categorical] == [c.levels for c in eager.categorical]
    for a, b in zip(lazy.numeric, eager.numeric, strict=True):
        assert a.name == b.name
        assert a.center == pytest.approx(b.center, rel=1e-12)
        assert a.scale == pytest.approx(b.scale, rel=1e-12)
    np.testing.assert_allclose(lazy.transform(frame), eager.transform(frame), rtol=1e-10)


def test_parts_and_glob_load_like_one_file(tmp_path: Path) -> None:
    frame, catalog = variant_log(90)
    whole = load_log(frame, catalog)
    for i, (start, stop) in enumerate([(0, 25), (25, 26), (26, 90)]):
        write_log(frame.slice(start, stop - start), tmp_path / "parts" / f"part-{i:03d}.parquet")
    write_log(catalog, tmp_path / "parts" / "catalog.parquet")
    by_dir = load_log(tmp_path / "parts")  # catalog found beside the parts
    by_glob = load_log(str(tmp_path / "parts" / "part-*.parquet"), catalog=catalog)
    for data in (by_dir, by_glob):
        np.testing.assert_array_equal(data.action, whole.action)
        np.testing.assert_array_equal(data.logging_probs, whole.logging_probs)
        assert data.frame.equals(frame)


def test_write_log_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame, _ = variant_log()
    path = write_log(frame, tmp_path / "out" / "log.parquet")
    before = path.read_bytes()

    def crash_midway(self: pl.DataFrame, file: Path, **kwargs: object) -> None:
        assert Path(file).name.endswith(".parquet.tmp")  # never the final name
        Path(file).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    import bandits.data.io as io_module  # write_log's parquet writer (with page checksums)

    monkeypatch.setattr(io_module, "write_parquet", crash_midway)
    with pytest.raises(DataError, match=r"cannot write '.*log\.parquet': disk full"):
        write_log(frame.head(3), path)
    assert path.read_bytes() == before  # the complete old file is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["log.parquet"]  # no .tmp left
    with pytest.raises(DataError, match="cannot write"):
        write_log(frame, tmp_path / "new" / "fresh.parquet")
    assert not (tmp_path / "new" / "fresh.parquet").exists()
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        write_log(frame, tmp_path / "log.txt")


def test_given_features_override_and_are_required(tmp_path: Path) -> None:
    frame, catalog = variant_log()
    schema = FeatureSchema.infer(frame, ["channel"])
    data = load_log(frame, catalog, features=schema.to_dict())
    assert data.features == schema
    assert data.features.transform(data.frame).shape == (frame.height, 1 + 3)
    with pytest.raises(DataError, match="missing context column 'channel' needed by the given"):
        load_log(frame.drop("channel"), catalog, features=schema)
    with pytest.raises(DataError, match="malformed 'features'"):
        load_log(frame, catalog, features={"numeric": {"hour": {"centre": 1.0}}})
