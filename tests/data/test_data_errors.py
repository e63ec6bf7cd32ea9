"""Bad inputs -> one-line DataError naming the problem, the column (or file) and the rows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bandits.data import iter_log_batches, load_log, validate_log, write_log
from bandits.errors import DataError, UserError

K = 3
CATALOG = pl.DataFrame({"variant_id": ["a", "b", "c"], "tone": ["x", "y", "z"]})


def base_frame(n: int = 8) -> pl.DataFrame:
    """A valid log: string actions, uniform logging over K = 3, one context column."""
    return pl.DataFrame(
        {
            "action": ["a", "b", "c", "a", "b", "c", "a", "b"][:n],
            "reward": np.linspace(0.0, 1.0, n),
            "propensity": np.full(n, 1 / K),
            "action_probs": pl.Series(np.full((n, K), 1 / K), dtype=pl.Array(pl.Float64, K)),
            "weather": ["sun", "rain"] * (n // 2),
        }
    )


def with_col(name: str, values: Any, dtype: Any = None) -> pl.DataFrame:
    return base_frame().with_columns(pl.Series(name, values, dtype=dtype))


def probs(rows: list[list[float]]) -> pl.Series:
    return pl.Series("action_probs", rows, dtype=pl.Array(pl.Float64, len(rows[0])))


UNIFORM = [1 / K] * K
Case = Callable[[Path], tuple[Any, dict[str, Any]]]


def frame_case(frame: pl.DataFrame, **kwargs: Any) -> Case:
    return lambda tmp: (frame, {"catalog": CATALOG, **kwargs})


def file_case(write: Callable[[Path], Path], **kwargs: Any) -> Case:
    return lambda tmp: (write(tmp), kwargs)


def _write_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return write


def _empty_parquet(tmp: Path) -> Path:
    base_frame().head(0).write_parquet(tmp / "empty.parquet")
    return tmp / "empty.parquet"


def _corrupt_parquet(tmp: Path) -> Path:
    """A parquet file whose footer survives but whose data pages are garbage."""
    path = tmp / "corrupt.parquet"
    base_frame().write_parquet(path, compression="zstd", statistics=False)
    raw = bytearray(path.read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little") + 8
    raw[4 : len(raw) - footer] = bytes(b ^ 0x5A for b in raw[4 : len(raw) - footer])
    path.write_bytes(bytes(raw))
    return path


def _dir_with_metadata(text: str) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        d = tmp / "decision_log"
        write_log(base_frame(), d / "decision_log.parquet")
        write_log(CATALOG, d / "catalog.parquet")
        (d / "metadata.json").write_text(text)
        return d

    return write


def _csv_text_probs(tmp: Path) -> Path:
    path = tmp / "log.csv"
    frame = (
        base_frame()
        .drop("action_probs")
        .with_columns(
            action_probs=pl.Series(["[0.3,0.3,0.4]", "oops", "[0.5, 0.5, 0]"] + ["[1,0,0]"] * 5)
        )
    )
    frame.write_csv(path)
    return path


# id -> (case, fragment, column (or None for file-level errors), rows fragment or None)
CASES: dict[str, tuple[Case, str, str | None, str | None]] = {
    "missing propensity": (
        frame_case(base_frame().drop("propensity")),
        "missing required column 'propensity' (present: action, reward, action_probs",
        "propensity",
        None,
    ),
    "missing reward and action": (
        frame_case(base_frame().drop("reward", "action")),
        "missing required columns 'action', 'reward'",
        "reward",
        None,
    ),
    "null reward": (
        frame_case(with_col("reward", [0.0, 1.0, None, 0.0, 1.0, 0.0, None, 1.0])),
        "column 'reward': null values",
        "reward",
        "rows [2, 6] (2 in all)",
    ),
    "NaN reward": (
        frame_case(with_col("reward", [0.0, np.nan, 0, 0, 0, 0, 0, 0])),
        "column 'reward': NaN or infinite values",
        "reward",
        "rows [1] (1 in all), e.g. [nan]",
    ),
    "NaN propensity": (
        frame_case(with_col("propensity", [1 / K] * 7 + [np.nan])),
        "column 'propensity': NaN or infinite values",
        "propensity",
        "rows [7] (1 in all)",
    ),
    "null action": (
        frame_case(with_col("action", ["a", None, "c", "a", "b", "c", "a", "b"])),
        "column 'action': null values",
        "action",
        "rows [1] (1 in all)",
    ),
    "propensity outside (0, 1]": (
        frame_case(
            with_col("propensity", [1 / K, 1 / K, 1 / K, 0.0, 1 / K, 1 / K, 1 / K, 1.2]).drop(
                "action_probs"
            )
        ),
        "column 'propensity': values outside (0, 1]",
        "propensity",
        "rows [3, 7] (2 in all), e.g. [0.0, 1.2]",
    ),
    "unknown variant id": (
        frame_case(with_col("action", ["a", "zz", "c", "a", "q", "c", "zz", "b"])),
        "column 'action': variant ids not in the catalog (3 variants)",
        "action",
        "rows [1, 4, 6] (3 in all), e.g. ['zz', 'q']",
    ),
    "action index out of range": (
        frame_case(with_col("action", [0, 1, 2, 3, 0, -1, 2, 1]), action_index="position"),
        "column 'action': action indices not in the catalog (K = 3, valid 0..2)",
        "action",
        "rows [3, 5] (2 in all), e.g. [3, -1]",
    ),
    "negative action without catalog": (
        lambda tmp: (with_col("action", [0, 1, 2, -4, 0, 1, 2, 1]), {}),
        "column 'action': negative action indices",
        "action",
        "rows [3] (1 in all), e.g. [-4]",
    ),
    "non-integer float action": (
        frame_case(with_col("action", [0.0, 1.0, 2.5, 0.0, 1.0, 2.0, 0.0, 1.0])),
        "column 'action': non-integer action indices",
        "action",
        "rows [2] (1 in all), e.g. [2.5]",
    ),
    "variant ids without a catalog": (
        lambda tmp: (base_frame(), {}),
        "column 'action' holds variant ids (String) but no catalog was given",
        "action",
        None,
    ),
    "reward not numeric": (
        frame_case(with_col("reward", ["1", "0", "click", "0", "1", "none", "0", "1"])),
        "column 'reward': expected numbers, got text",
        "reward",
        "rows [2, 5] (2 in all), e.g. ['click', 'none']",
    ),
    "propensity as text": (
        frame_case(with_col("propensity", ["0.3333333333333333"] * 8)),
        "column 'propensity': numbers stored as text",
        "propensity",
        "rows [0, 1, 2, 3, 4, …] (8 in all)",
    ),
    "reward datetime": (
        frame_case(with_col("reward", [dt.datetime(2026, 1, d + 1) for d in range(8)])),
        "column 'reward': expected numbers, got type Datetime",
        "reward",
        "rows [0, 1, 2, 3, 4, …] (8 in all)",
    ),
    "action of type boolean": (
        frame_case(with_col("action", [True, False] * 4)),
        "column 'action': expected integer indices or variant id strings, got type Boolean",
        "action",
        "(8 in all)",
    ),
    "empty frame": (
        frame_case(base_frame().head(0)),
        "log is empty (0 rows; columns: action, reward",
        None,
        None,
    ),
    "empty parquet file": (
        file_case(_empty_parquet, catalog=CATALOG),
        "is empty (0 rows)",
        None,
        None,
    ),
    "empty CSV file": (file_case(_write_bytes("log.csv", b"")), "is empty (0 rows)", None, None),
    "missing path": (
        lambda tmp: (tmp / "nope.parquet", {}),
        "no such file or directory",
        None,
        None,
    ),
    "not parquet": (
        file_case(_write_bytes("log.parquet", b"action,reward,propensity\n0,1,0.5\n")),
        "cannot read log",
        None,
        None,
    ),
    "corrupt bytes": (
        file_case(_corrupt_parquet, catalog=CATALOG),
        "cannot read log",
        None,
        None,
    ),
    "unknown extension": (
        file_case(_write_bytes("log.json", b"{}")),
        "unsupported file type '.json' (expected .parquet or .csv, or a directory)",
        None,
        None,
    ),
    "glob matching nothing": (
        lambda tmp: (str(tmp / "part-*.parquet"), {}),
        "the pattern matches no files",
        None,
        None,
    ),
    "required context missing": (
        frame_case(base_frame(), required_context=("weather", "channel")),
        "missing context column 'channel' needed by the policy's features (present: action",
        "channel",
        None,
    ),
    "required context null": (
        frame_case(
            with_col("weather", ["sun", None, "rain", "sun", None, "sun", "rain", "sun"]),
            required_context=("weather",),
        ),
        "column 'weather': null values",
        "weather",
        "rows [1, 4] (2 in all)",
    ),
    "action_probs not summing to 1": (
        frame_case(
            base_frame().with_columns(probs([UNIFORM] * 5 + [[1 / K, 1 / K, 0.5]] + [UNIFORM] * 2))
        ),
        "column 'action_probs': rows that do not sum to 1 (tol 1e-06; sums shown)",
        "action_probs",
        "rows [5] (1 in all), e.g. [1.16666",
    ),
    "action_probs disagree with propensity": (
        frame_case(
            base_frame().with_columns(
                probs([[0.5, 0.25, 0.25]] + [UNIFORM] * 6 + [[0.2, 0.6, 0.2]])
            )
        ),
        "column 'action_probs': probability of the logged action disagrees with 'propensity'",
        "action_probs",
        "rows [0, 7] (2 in all), e.g. ['0.5 vs 0.333333', '0.6 vs 0.333333']",
    ),
    "action_probs negative": (
        frame_case(
            base_frame().with_columns(
                probs([UNIFORM] * 2 + [[2 / 3, 2 / 3, -1 / 3]] + [UNIFORM] * 5)
            )
        ),
        "column 'action_probs': negative, NaN or null entries",
        "action_probs",
        "rows [2] (1 in all)",
    ),
    "action_probs wrong width": (
        frame_case(base_frame().with_columns(probs([[0.5, 0.5]] * 8))),
        "column 'action_probs': arrays of 2 entries but the catalog has K = 3 variants",
        "action_probs",
        "(8 in all)",
    ),
    "action_probs ragged lists": (
        frame_case(
            base_frame().with_columns(
                pl.Series("action_probs", [UNIFORM] * 3 + [[0.5, 0.5]] + [UNIFORM] * 4)
            )
        ),
        "column 'action_probs': lists whose length is not the catalog size K = 3",
        "action_probs",
        "rows [3] (1 in all), e.g. ['length 2']",
    ),
    "action_probs text in CSV": (
        file_case(_csv_text_probs, catalog=CATALOG),
        "column 'action_probs': text that is not a list of numbers",
        "action_probs",
        "rows [1] (1 in all), e.g. ['oops']",
    ),
    "duplicate variant ids": (
        lambda tmp: (
            base_frame(),
            {"catalog": pl.DataFrame({"variant_id": ["a", "b", "a", "c", "b"]})},
        ),
        "catalog: column 'variant_id': duplicate ids",
        "variant_id",
        "rows [0, 1, 2, 4] (4 in all), e.g. ['a', 'b']",
    ),
    "catalog without variant_id": (
        lambda tmp: (base_frame(), {"catalog": pl.DataFrame({"id": ["a", "b", "c"]})}),
        "catalog: missing required column 'variant_id' (present: id)",
        "variant_id",
        None,
    ),
    "metadata not JSON": (
        file_case(_dir_with_metadata("{not json")),
        "cannot read metadata",
        None,
        None,
    ),
    "metadata features need a missing column": (
        file_case(
            _dir_with_metadata(
                json.dumps({"features": {"categorical": {"channel": ["email", "sms"]}}})
            )
        ),
        "missing context column 'channel' needed by the features in '",
        "channel",
        None,
    ),
    "ground truth as context": (
        frame_case(base_frame().with_columns(true_ctr=pl.lit(0.1)), context_columns=["true_ctr"]),
        "column 'true_ctr' is simulation ground truth and cannot be used as context",
        "true_ctr",
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_line_error(name: str, tmp_path: Path) -> None:
    case, fragment, column, rows = CASES[name]
    source, kwargs = case(tmp_path)
    with pytest.raises(DataError) as info:
        load_log(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert fragment in message, message
    if column is not None:
        assert f"'{column}'" in message, message
    if rows is not None:
        assert rows in message, message
    if isinstance(source, Path) and column is None:  # file-level errors name the file
        assert source.name in message, message
    err = info.value  # no polars / pyarrow / OS traceback chained to it
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    assert isinstance(info.value, UserError)


def test_validate_log_directly_matches_example_message() -> None:
    frame = pl.DataFrame(
        {
            "action": np.zeros(20, np.int64),
            "reward": np.zeros(20),
            "propensity": np.where(np.isin(np.arange(20), [3, 17]), [0.0] * 20, 0.5),
        }
    ).with_columns(
        pl.when(pl.int_range(20) == 17).then(1.2).otherwise("propensity").alias("propensity")
    )
    with pytest.raises(DataError) as info:
        validate_log(frame, None)
    assert str(info.value) == (
        "column 'propensity': values outside (0, 1] in rows [3, 17] (2 in all), e.g. [0.0, 1.2]"
    )


def test_stream_errors_use_global_row_numbers(tmp_path: Path) -> None:
    n = 2_500
    frame = pl.DataFrame(
        {
            "action": np.arange(n) % K,
            "reward": np.ones(n),
            "propensity": np.where(np.arange(n) == 2_103, 0.0, 1 / K),
        }
    )
    write_log(frame.head(1_000), tmp_path / "parts" / "part-0.parquet")
    write_log(frame.slice(1_000), tmp_path / "parts" / "part-1.parquet")
    batches = iter_log_batches(tmp_path / "parts", batch_rows=700)
    assert [b.row_offset for b in (next(batches), next(batches), next(batches))] == [0, 700, 1400]
    with pytest.raises(DataError, match=r"rows \[2103\] \(1 in all\), e\.g\. \[0\.0\]"):
        next(batches)  # rows 2100..2799: local row 3 is global row 2103


def test_stream_rejects_csv_and_bad_batch_size(tmp_path: Path) -> None:
    path = write_log(base_frame(), tmp_path / "log.csv")
    with pytest.raises(DataError, match="streaming reads parquet"):
        iter_log_batches(path, catalog=CATALOG)
    with pytest.raises(UserError, match="batch_rows must be >= 1"):
        iter_log_batches(path, catalog=CATALOG, batch_rows=0)
