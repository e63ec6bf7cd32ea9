"""A team's raw export with a mistake in it, through the evaluate app's command line: each
stops with exit 2 and one ``error:`` line naming the column (in the file's own name) and the
first offending rows — no traceback, and no MLflow store or run created before the error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from app_cli import run_app

MAPPING = [
    "columns.action=item",
    "columns.reward=clicked",
    "columns.propensity=p_shown",
    "columns.timestamp=sent_at",
    "columns.catalog_id=item",
    "columns.reward_type=click",
]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    rng = np.random.default_rng(11)
    n = 600
    d = tmp_path_factory.mktemp("export")
    pl.DataFrame({"item": ["a", "b", "c"], "price": [1.0, 2.0, 3.0]}).write_csv(d / "items.csv")
    pl.DataFrame(
        {
            "item": rng.choice(["a", "b", "c"], n),
            "clicked": (rng.random(n) < 0.1).astype(int),
            "p_shown": np.full(n, 1 / 3),
            "sent_at": [f"2026-03-{1 + i // 100:02d} 10:{i % 60:02d}:00" for i in range(n)],
            "weather": rng.choice(["sun", "rain"], n),
            "store": [str(s) for s in rng.integers(1, 5, n)],
        }
    ).write_csv(d / "clicks.csv")
    return d


def _broken(export: Path, tmp_path: Path, column: str, rows: list[int], value: object) -> Path:
    frame = pl.read_csv(export / "clicks.csv", infer_schema_length=0)  # all text, as written
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_in(rows))
        .then(pl.lit(str(value)))
        .otherwise(pl.col(column))
        .alias(column)
    )
    frame.write_csv(tmp_path / "clicks.csv")
    return tmp_path / "clicks.csv"


CASES = [
    ("clicked", [4, 9], -1, [], "column 'clicked' (read as reward): values other than 0 and 1"),
    ("clicked", [7], 2, [], "rows [7] (1 in all)"),
    ("p_shown", [3, 5], 0, [], "column 'p_shown' (read as propensity): values outside (0, 1]"),
    ("p_shown", [8], 1.5, [], "rows [8]"),
    ("item", [12], "zz", [], "'zz'"),
    ("sent_at", [20], "yesterday", [], "column 'sent_at' (read as timestamp): text that is not"),
    ("store", [30], "n/a", ["columns.numeric=[store]"], "declared numeric"),
    ("weather", [], None, ["columns.reward=click"], "column mapping reward=click"),
    ("weather", [], None, ["columns.exclude=[nope]"], "excluded column 'nope' is not in the log"),
    ("weather", [], None, ["columns.reward_type=clicks"], "reward_type must be one of"),
    ("weather", [], None, ["columns.reward_range=[1,0]"], "min < max"),
]


@pytest.mark.parametrize(("column", "rows", "value", "extra", "message"), CASES)
def test_a_broken_export_is_one_line_before_any_run(
    export, tmp_path, column, rows, value, extra, message
):
    log = _broken(export, tmp_path, column, rows, value) if rows else export / "clicks.csv"
    run = run_app(
        "evaluate",
        tmp_path,
        f"logs={log}",
        f"catalog={export / 'items.csv'}",
        "policy=uniform",
        "estimators=[ips]",
        *MAPPING,
        *extra,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """Damaged and implausible logs in our own column names (a 3-variant catalog)."""
    rng = np.random.default_rng(12)
    d = tmp_path_factory.mktemp("damaged")
    pl.DataFrame({"variant_id": ["a", "b", "c"]}).write_parquet(d / "catalog.parquet")
    n = 3000
    good = pl.DataFrame(
        {
            "action": rng.choice(["a", "b", "c"], n),
            "reward": (rng.random(n) < 0.1).astype(float),
            "propensity": np.full(n, 1 / 3),
            "weather": rng.choice(["sun", "rain"], n),
            "spend": rng.gamma(2.0, 10.0, n),
        }
    )
    good.write_parquet(d / "good.parquet", compression="uncompressed")
    raw = bytearray((d / "good.parquet").read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (d / "corrupt.parquet").write_bytes(bytes(raw))
    text = good.write_csv()
    header, body = text.split("\n", 1)
    (d / "dup_header.csv").write_text(header.replace("weather", "reward") + "\n" + body)
    (d / "mixed").mkdir()
    good.head(1500).write_parquet(d / "mixed" / "part-0.parquet")
    good.tail(1500).write_csv(d / "mixed" / "part-1.csv")

    def at(rows, column, value):
        hit = pl.int_range(pl.len()).is_in(rows)
        return good.with_columns(pl.when(hit).then(value).otherwise(pl.col(column)).alias(column))

    at(list(range(40)), "reward", 1e308).write_parquet(d / "huge_reward.parquet")
    at([10], "propensity", 1e-300).write_parquet(d / "tiny_propensity.parquet")
    at([17], "spend", float("inf")).write_parquet(d / "inf_context.parquet")
    good.head(1).write_parquet(d / "one_row.parquet")
    late = pl.concat([good] * 5).with_columns(pl.col("spend").round(0).cast(pl.Int64))
    late = late.with_columns(
        pl.when(pl.int_range(pl.len()) == 12_345)
        .then(pl.lit("12,5"))
        .otherwise(pl.col("spend").cast(pl.String))
        .alias("spend")
    )
    late.write_csv(d / "late_type_error.csv")  # past the 10,000 rows the reader samples
    return d


DAMAGED = [
    ("corrupt.parquet", [], "damaged"),  # bytes that do not decode, or decode into garbage
    ("dup_header.csv", [], "column 'reward' appears twice in the header"),
    ("mixed", [], "mixes parquet and CSV parts"),
    ("huge_reward.parquet", [], "column 'reward': values beyond ±1e+15"),
    ("tiny_propensity.parquet", [], "column 'propensity': values below 1e-12"),
    ("inf_context.parquet", [], "column 'spend': NaN or infinite values in rows [17]"),
    ("one_row.parquet", [], "the log has 1 row; at least 10 are needed"),
    ("late_type_error.csv", [], "rows [12345] of late_type_error.csv"),
    ("good.parquet", ["policy=linucb", "train_fraction=0.999"], "evaluation part of the log has 3"),
]


@pytest.mark.parametrize(("name", "extra", "message"), DAMAGED)
def test_a_damaged_log_is_one_line_before_any_run(damaged, tmp_path, name, extra, message):
    run = run_app(
        "evaluate",
        tmp_path,
        f"logs={damaged / name}",
        f"catalog={damaged / 'catalog.parquet'}",
        "policy=uniform",
        *extra,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "Warning" not in run.stderr, run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert not (tmp_path / "mlflow.db").exists()


BAD_VALUES = [
    (["seed=abc"], "seed='abc': expected an integer"),
    (["seed=-1"], "seed=-1: must be ≥ 0"),
    (["level=2"], "level=2: must be in (0, 1)"),
    (["interval=nope"], "interval='nope': must be one of bounded, analytic, bootstrap"),
    (["reward_model.cross_fit_folds=1"], "use 0 (in-sample) or ≥ 2 folds"),
    (["reward_model.alpha=abc"], "reward_model.alpha='abc': expected a number"),
    (["stream.batch_rows=0"], "stream.batch_rows=0: must be ≥ 1"),
    (["policy=linucb", "policy.alpha=abc"], "policy.alpha='abc': expected a number"),
    (["policy=linucb", "train_fraction=1.5"], "train_fraction=1.5: must be in (0, 1)"),
    (["tracking.uri=bogus://x"], "tracking.uri=bogus://x: unknown scheme 'bogus'"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking server http://127.0.0.1:9 does not answer"),
    (["tracking.uri=sqlite:////proc/nope/mlflow.db"], "cannot create the MLflow store"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_a_bad_setting_is_one_line_before_any_run(damaged, tmp_path, args, message):
    run = run_app(
        "evaluate",
        tmp_path,
        f"logs={damaged / 'good.parquet'}",
        f"catalog={damaged / 'catalog.parquet'}",
        *(args if args[0].startswith("policy=") else ["policy=uniform", *args]),
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_machine_errors_are_one_line_naming_the_path_and_the_fix():
    import errno
    import sqlite3

    from experiments.common import environment_error

    full = OSError(errno.ENOSPC, "No space left on device", "/data/mlartifacts/x.parquet")
    assert environment_error(full) == (
        "No space left on device '/data/mlartifacts/x.parquet': no space left on the device: "
        "free space, or set tracking.uri elsewhere"
    )
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/mlruns")
    assert "Permission denied '/srv/mlruns': not permitted" in environment_error(denied)
    try:
        try:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("(sqlite3.OperationalError) wrapped") from inner
    except RuntimeError as wrapped:
        assert "the MLflow store is read-only" in environment_error(wrapped)
    assert environment_error(ValueError("a bug")) is None  # bugs keep their traceback
