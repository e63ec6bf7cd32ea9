"""`ParquetAppender`: a file written frame by frame equals the concatenation, and a failed
or aborted write never leaves a file under the final name."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from bandits.data import ParquetAppender
from bandits.errors import DataError


def _frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "round": np.arange(n, dtype=np.int64),
            "channel": pl.Series(
                rng.choice(["email", "push"], n), dtype=pl.Enum(["email", "push"])
            ),
            "segment": pl.Series(rng.choice(["a", "b"], n), dtype=pl.Categorical),
            "probs": pl.Series(rng.random((n, 4)), dtype=pl.Array(pl.Float64, 4)),
            "reward": rng.random(n),
        }
    )


def test_appended_file_equals_the_concatenation_with_row_groups(tmp_path):
    parts = [_frame(n, i) for i, n in enumerate([40, 0, 75, 3, 90])]
    path = tmp_path / "log.parquet"
    with ParquetAppender(path, row_group_rows=100) as out:
        for part in parts:
            out.write(part)
        assert not path.exists()  # nothing under the final name before close
    back = pl.read_parquet(path)
    assert back.equals(pl.concat(parts)) and back.schema == parts[0].schema
    sizes = [pq.read_metadata(path).row_group(i).num_rows for i in range(2)]
    assert sizes == [115, 93]  # buffered to ≥ 100 rows, remainder at close
    assert out.rows_written == 208
    assert not (tmp_path / "log.parquet.tmp").exists()


def test_schema_change_is_a_one_line_error_and_removes_the_partial_file(tmp_path):
    path = tmp_path / "log.parquet"
    out = ParquetAppender(path, row_group_rows=10)
    out.write(_frame(20, 0))
    assert (tmp_path / "log.parquet.tmp").exists()
    with pytest.raises(DataError, match=r"cannot append to .*log\.parquet.*schema") as err:
        out.write(_frame(5, 1).drop("reward"))
    assert "\n" not in str(err.value)
    assert not path.exists() and not (tmp_path / "log.parquet.tmp").exists()
    with pytest.raises(DataError, match="closed"):
        out.write(_frame(5, 1))


def test_an_exception_inside_the_block_leaves_no_file(tmp_path):
    path = tmp_path / "log.parquet"
    with pytest.raises(RuntimeError):
        with ParquetAppender(path, row_group_rows=10) as out:
            out.write(_frame(50, 0))
            raise RuntimeError("crash mid-run")
    assert list(tmp_path.iterdir()) == []


def test_no_rows_gives_an_empty_file_with_the_schema(tmp_path):
    path = tmp_path / "log.parquet"
    with ParquetAppender(path) as out:
        out.write(_frame(0, 0))
    back = pl.read_parquet(path)
    assert back.height == 0 and back.schema == _frame(0, 0).schema


def test_bad_row_group_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="row_group_rows"):
        ParquetAppender(tmp_path / "x.parquet", row_group_rows=0)
