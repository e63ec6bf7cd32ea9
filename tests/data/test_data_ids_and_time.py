"""Ids are ids (actions map to a catalog by ``variant_id`` whatever the file type or how the
ids look), time-ordered logs and time splits, and the data fingerprint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bandits.data import LoggedData, fingerprint, load_log, order_by_time, write_log
from bandits.errors import ConfigError, DataError
from bandits.offline import split_log
from bandits.ope import IPS

N = 300
INT_LOOKING = ["49", "7", "0", "3", "12", "5"]  # "0", "3", "5" are also valid positions
ZERO_TO_K = ["0", "1", "2", "3", "4", "5"]
NAMED = ["promo_a", "promo_b", "retarget", "generic", "winter", "spring"]
LEADING_ZEROS = ["7", "07", "007", "0", "00", "5"]  # one id each: text, never numbers
#: a target policy's probability of each variant id (the same whatever the catalog order)
TARGET = np.array([0.30, 0.05, 0.25, 0.10, 0.20, 0.10])


def raw_log(ids: list[str], seed: int = 0) -> pl.DataFrame:
    """A log of ``N`` decisions over variant ``ids`` (as text), non-uniform logging."""
    rng = np.random.default_rng(seed)
    logging = np.array([0.25, 0.1, 0.2, 0.15, 0.2, 0.1])
    chosen = rng.choice(len(ids), size=N, p=logging)
    return pl.DataFrame(
        {
            "action": pl.Series(ids).gather(chosen),
            "reward": (rng.random(N) < 0.2 + 0.1 * chosen / len(ids)).astype(float),
            "propensity": logging[chosen],
            "hour": rng.integers(0, 24, N),
        }
    )


def shuffled_catalog(ids: list[str], seed: int = 1) -> pl.DataFrame:
    """The catalog of ``ids`` in a shuffled row order (so an id is not its position)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    while (order == np.arange(len(ids))).any():  # no id keeps its position
        order = rng.permutation(len(ids))
    return pl.DataFrame({"variant_id": [ids[i] for i in order], "discount": order * 5})


def target_probs(ids: list[str], action_ids: tuple[str, ...], n: int) -> np.ndarray:
    """``(n, K)`` target probabilities in the order of ``action_ids``."""
    return np.tile([TARGET[ids.index(a)] for a in action_ids], (n, 1))


def hand_converted(frame: pl.DataFrame, catalog: pl.DataFrame) -> np.ndarray:
    """The action column converted by hand: each id's row in the catalog."""
    row = {v: i for i, v in enumerate(catalog["variant_id"].to_list())}
    return np.array([row[v] for v in frame["action"].to_list()], dtype=np.int64)


def ips(data_action: np.ndarray, reward: np.ndarray, propensity: np.ndarray, pi: np.ndarray):
    return IPS().estimate(reward=reward, action=data_action, propensity=propensity, target_probs=pi)


def _csv(frame: pl.DataFrame, tmp: Path, name: str) -> Path:
    return write_log(frame, tmp / f"{name}.csv")


def _parquet(frame: pl.DataFrame, tmp: Path, name: str) -> Path:
    return write_log(frame, tmp / f"{name}.parquet")


def _as_int(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("action").cast(pl.Int64))


Writer = Callable[[pl.DataFrame, Path, str], Any]
#: case -> (ids, how the log is stored, how the catalog is given)
ID_CASES: dict[str, tuple[list[str], Writer, Writer]] = {
    "csv, integer-looking ids, csv catalog": (INT_LOOKING, _csv, _csv),
    "csv, integer-looking ids, parquet catalog": (INT_LOOKING, _csv, _parquet),
    "parquet, integer-looking string ids": (INT_LOOKING, _parquet, _parquet),
    "parquet, integer-typed actions, integer-looking ids": (
        INT_LOOKING,
        lambda f, tmp, name: _parquet(_as_int(f), tmp, name),
        _parquet,
    ),
    "parquet, integer-typed actions, ids 0..K-1 shuffled": (
        ZERO_TO_K,
        lambda f, tmp, name: _parquet(_as_int(f), tmp, name),
        _csv,
    ),
    "csv, integer actions, ids 0..K-1 shuffled, frame catalog": (
        ZERO_TO_K,
        _csv,
        lambda f, tmp, name: f,
    ),
    "frame, integer-typed actions, ids 0..K-1 shuffled": (
        ZERO_TO_K,
        lambda f, tmp, name: _as_int(f),
        lambda f, tmp, name: f,
    ),
    "csv, string ids": (NAMED, _csv, _csv),
    "parquet, string ids": (NAMED, _parquet, _parquet),
    "csv, ids with leading zeros, csv catalog": (LEADING_ZEROS, _csv, _csv),
}


@pytest.mark.parametrize("name", list(ID_CASES))
def test_actions_map_to_the_catalog_by_id(name: str, tmp_path: Path) -> None:
    ids, write_log_as, write_catalog_as = ID_CASES[name]
    frame, catalog = raw_log(ids), shuffled_catalog(ids)
    assert catalog["variant_id"].to_list() != ids  # an id is not its position
    data = load_log(
        write_log_as(frame, tmp_path, "log"), catalog=write_catalog_as(catalog, tmp_path, "cat")
    )
    assert data.action_ids == tuple(catalog["variant_id"].to_list())
    expected = hand_converted(frame, catalog)
    np.testing.assert_array_equal(data.action, expected)
    got = ips(data.action, data.reward, data.propensity, target_probs(ids, data.action_ids, N))
    want = ips(
        expected,
        frame["reward"].to_numpy(),
        frame["propensity"].to_numpy(),
        target_probs(ids, data.action_ids, N),
    )
    assert got.value == want.value  # to the last digit
    assert (got.ci_low, got.ci_high) == (want.ci_low, want.ci_high)


def test_integer_looking_ids_are_not_row_positions(tmp_path: Path) -> None:
    """The bug in the issue: ids "0", "3", "5" are also valid row numbers of the catalog;
    read as positions they silently score other variants."""
    frame, catalog = raw_log(INT_LOOKING), shuffled_catalog(INT_LOOKING)
    path = _csv(frame, tmp_path, "log")
    subset = frame.filter(pl.col("action").is_in(["0", "3", "5"]))
    write_log(subset, tmp_path / "small.csv")
    by_id = load_log(tmp_path / "small.csv", catalog=catalog)
    by_position = load_log(tmp_path / "small.csv", catalog=catalog, action_index="position")
    np.testing.assert_array_equal(by_id.action, hand_converted(subset, catalog))
    np.testing.assert_array_equal(by_position.action, subset["action"].cast(pl.Int64).to_numpy())
    assert not np.array_equal(by_id.action, by_position.action)
    # the whole log has ids >= K: as positions they are out of range, as ids they are fine
    with pytest.raises(DataError, match="action indices not in the catalog"):
        load_log(path, catalog=catalog, action_index="position")
    assert load_log(path, catalog=catalog).n == N


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (pl.Series("action", [0, 3, 99, 5, 42, 0]), "e.g. [99, 42]"),  # integer-typed
        (pl.Series("action", ["0", "3", "99", "5", "42", "0"]), "e.g. ['99', '42']"),
    ],
)
def test_an_id_not_in_the_catalog_is_one_line_naming_the_column(
    stored: pl.Series, shown: str, tmp_path: Path
) -> None:
    frame = pl.DataFrame({"action": stored, "reward": [1.0, 0.0] * 3, "propensity": [1 / 6] * 6})
    path = write_log(frame, tmp_path / "log.parquet")
    with pytest.raises(DataError) as info:
        load_log(path, catalog=shuffled_catalog(ZERO_TO_K))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("column 'action': variant ids not in the catalog (6 variants)")
    assert "rows [2, 4] (2 in all)" in message and shown in message
    assert "action_index='position'" in message


def test_action_index_must_be_id_or_position() -> None:
    with pytest.raises(ConfigError, match="action_index must be one of 'id', 'position'"):
        load_log(raw_log(NAMED), catalog=shuffled_catalog(NAMED), action_index="row")


def test_without_a_catalog_integer_actions_are_positions() -> None:
    frame = _as_int(raw_log(ZERO_TO_K))
    data = load_log(frame)
    assert data.catalog_inferred and data.action_ids == tuple(ZERO_TO_K)
    np.testing.assert_array_equal(data.action, frame["action"].to_numpy())


# ---------------------------------------------------------------- time


def _times(kind: str, n: int) -> pl.Series:
    """Strictly increasing times of ``kind`` (row i is the i-th earliest)."""
    start = dt.datetime(2026, 3, 1, 8, 0)
    if kind == "datetime":
        return pl.Series([start + dt.timedelta(minutes=13 * i) for i in range(n)])
    if kind == "date":
        return pl.Series([start.date() + dt.timedelta(days=i) for i in range(n)])
    if kind == "integer":
        return pl.Series(1_700_000_000 + 60 * np.arange(n))
    return pl.Series(0.5 + 0.25 * np.arange(n))  # float


def out_of_order(kind: str, n: int = 40, seed: int = 3) -> tuple[pl.DataFrame, np.ndarray]:
    """A log whose rows are a shuffle of time order; returns it and each row's rank."""
    rng = np.random.default_rng(seed)
    rank = rng.permutation(n)
    frame = pl.DataFrame(
        {
            "timestamp": _times(kind, n).gather(rank),
            "action": pl.Series(NAMED).gather(rng.integers(0, len(NAMED), n)),
            "reward": rank.astype(float),  # the reward tells each row's time rank
            "propensity": np.full(n, 1 / len(NAMED)),
            "hour": rng.integers(0, 24, n),
        }
    )
    return frame, rank


TIME_CASES: dict[str, tuple[str, str]] = {
    "parquet datetime": ("datetime", "parquet"),
    "parquet date": ("date", "parquet"),
    "parquet integer": ("integer", "parquet"),
    "parquet float": ("float", "parquet"),
    "csv datetime text": ("datetime", "csv"),
    "csv date text": ("date", "csv"),
    "csv integer": ("integer", "csv"),
}


@pytest.mark.parametrize("name", list(TIME_CASES))
def test_out_of_order_rows_are_ordered_flagged_and_split_by_time(name: str, tmp_path: Path) -> None:
    kind, fmt = TIME_CASES[name]
    frame, rank = out_of_order(kind)
    path = write_log(frame, tmp_path / f"log.{fmt}")
    data = load_log(path, catalog=pl.DataFrame({"variant_id": NAMED}))
    assert data.reordered and data.time_column == "timestamp"
    assert "timestamp" not in data.context_columns
    times = data.frame["timestamp"]
    assert times.is_sorted()
    order = np.argsort(rank)
    # the frame and every array moved together
    np.testing.assert_array_equal(data.reward, np.arange(frame.height, dtype=float))
    np.testing.assert_array_equal(data.frame["reward"].to_numpy(), data.reward)
    np.testing.assert_array_equal(data.frame["hour"].to_numpy(), frame["hour"].to_numpy()[order])
    np.testing.assert_array_equal(data.action, hand_converted(frame[order], data.catalog))

    train, test = split_log(data, 0.75)
    assert (train.n, test.n) == (30, 10)
    np.testing.assert_array_equal(train.reward, np.arange(30, dtype=float))  # earliest rows
    np.testing.assert_array_equal(test.reward, np.arange(30, 40, dtype=float))
    assert test.cutoff == _times(kind, 40)[30] and train.cutoff is None
    assert train.frame["timestamp"].max() <= test.cutoff <= test.frame["timestamp"].min()


def test_rows_in_time_order_are_not_flagged_and_ties_keep_file_order() -> None:
    t = [dt.datetime(2026, 1, 1, h) for h in (0, 1, 1, 1, 2, 3)]
    frame = pl.DataFrame(
        {"timestamp": t, "action": [0, 1, 0, 1, 0, 1], "reward": [0.0, 1, 2, 3, 4, 5]}
    ).with_columns(propensity=pl.lit(0.5))
    data = load_log(frame)
    assert data.time_column == "timestamp" and not data.reordered
    shuffled = load_log(frame[[5, 3, 0, 1, 4, 2]])
    assert shuffled.reordered
    np.testing.assert_array_equal(shuffled.reward, [0.0, 3, 1, 2, 4, 5])  # ties: 3, 1, 2
    _, test = split_log(data, 0.5)
    assert test.cutoff == dt.datetime(2026, 1, 1, 1)


def test_another_time_column_or_none() -> None:
    frame, rank = out_of_order("integer")
    frame = frame.rename({"timestamp": "ts"})
    catalog = pl.DataFrame({"variant_id": NAMED})
    data = load_log(frame, catalog, time_column="ts")
    assert data.reordered and data.time_column == "ts"
    assert data.context_columns == ("hour",)  # the time is not context
    # without a 'timestamp' column and no time_column: row order, split by rows
    plain = load_log(frame, catalog)
    assert plain.time_column is None and not plain.reordered
    assert "ts" in plain.context_columns
    _, test = split_log(plain, 0.5)
    assert test.cutoff is None
    np.testing.assert_array_equal(test.reward, rank[20:].astype(float))
    # time_column=None keeps row order even with a 'timestamp' column
    kept = load_log(frame.rename({"ts": "timestamp"}), catalog, time_column=None)
    assert kept.time_column is None and not kept.reordered
    with pytest.raises(DataError, match="time column 'when' is not in log '<frame>'"):
        load_log(frame, catalog, time_column="when")


def test_split_log_orders_a_log_given_out_of_order() -> None:
    frame, _ = out_of_order("datetime")
    data = load_log(frame, pl.DataFrame({"variant_id": NAMED}), time_column=None)
    unordered: LoggedData = dataclasses.replace(data, time_column="timestamp")
    train, test = split_log(unordered, 0.5)
    np.testing.assert_array_equal(train.reward, np.arange(20, dtype=float))
    assert test.reordered and test.cutoff == _times("datetime", 40)[20]
    assert order_by_time(data, "timestamp").reordered


def _bad_time_csv(tmp: Path) -> Path:
    path = tmp / "log.csv"
    path.write_text(
        "timestamp,action,reward,propensity\n"
        "2026-01-01 10:00:00,0,1,0.5\n"
        "2026-01-01 11:00:00,1,0,0.5\n"
        "yesterday,1,0,0.5\n"
        "2026-01-01 12:00:00,0,1,0.5\n"
    )
    return path


def _null_time_parquet(tmp: Path) -> Path:
    frame = pl.DataFrame(
        {
            "timestamp": [dt.datetime(2026, 1, 1), None, dt.datetime(2026, 1, 3), None],
            "action": [0, 1, 0, 1],
            "reward": [1.0, 0.0, 1.0, 0.0],
            "propensity": [0.5] * 4,
        }
    )
    return write_log(frame, tmp / "log.parquet")


def _nan_time_frame(tmp: Path) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [1.0, 2.0, float("nan"), 4.0],
            "action": [0, 1, 0, 1],
            "reward": [1.0, 0.0, 1.0, 0.0],
            "propensity": [0.5] * 4,
        }
    )


def _bool_time_frame(tmp: Path) -> pl.DataFrame:
    return _nan_time_frame(tmp).with_columns(timestamp=pl.Series([True, False, True, False]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            _bad_time_csv,
            "column 'timestamp': text that is not a date or time in rows [2] (1 in all), "
            "e.g. ['yesterday']",
        ),
        (_null_time_parquet, "column 'timestamp': null times in rows [1, 3] (2 in all)"),
        (_nan_time_frame, "column 'timestamp': NaN or infinite times in rows [2] (1 in all)"),
        (_bool_time_frame, "column 'timestamp': expected times (datetimes, dates or numbers)"),
    ],
)
def test_bad_times_are_one_line_errors(
    make: Callable[[Path], Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(DataError) as info:
        load_log(make(tmp_path))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(message), str(info.value)


# ---------------------------------------------------------------- fingerprint


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    frame = raw_log(NAMED)
    catalog = tmp_path / "catalog.parquet"
    write_log(shuffled_catalog(NAMED), catalog)
    log = write_log(frame, tmp_path / "log.parquet")
    first = fingerprint(log, catalog)
    assert len(first) == 16 and fingerprint(log, catalog) == first  # no change: same
    assert fingerprint(log) != first  # the catalog is part of it
    write_log(raw_log(NAMED, seed=5), log)  # overwritten with different data
    assert fingerprint(log, catalog) != first
    # the same bytes with a new modification time (rewritten or touched): new too
    second = fingerprint(log, catalog)
    stat = log.stat()
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(log, catalog) != second

    parts = tmp_path / "parts"
    write_log(frame.head(100), parts / "part-0.parquet")
    write_log(frame.tail(200), parts / "part-1.parquet")
    by_dir = fingerprint(parts)
    assert fingerprint(str(parts / "part-*.parquet")) == by_dir  # the same files
    write_log(frame.tail(10), parts / "part-2.parquet")  # a new part
    assert fingerprint(parts) != by_dir
    csv = write_log(frame, tmp_path / "log.csv")
    assert fingerprint(csv) != fingerprint(log)
    with pytest.raises(DataError, match="no such file"):
        fingerprint(tmp_path / "nope.parquet")
