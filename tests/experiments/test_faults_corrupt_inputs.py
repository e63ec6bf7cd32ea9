"""Damaged log files through the real ``evaluate`` and ``compare source=logs`` apps.

Table-driven over corruption kinds (4 KiB — at most an eighth of the file — of random bytes
at a quarter, the middle and three quarters of the file; the file cut in half; its footer
zeroed; a wrong magic number) × formats (parquet as we write it, with page checksums; parquet
without checksums, uncompressed and zstd, as polars writes it by default; CSV). Each must stop
with exit 2 and one ``error:`` line naming the file, no traceback or warning, and no MLflow
store (so no run) created — never decode into garbage and go on.

Parquet with checksums is rejected by the checksum itself. Without checksums the damage is
caught where it shows: bytes that do not decode, or decoded values that are not finite, beyond
±1e15 or null. A CSV has no integrity check at all: a cut exactly at a line end would be a
valid shorter log, so the CSV cut here falls inside a row (after a comma).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from app_cli import run_app

#: What a rejection of a damaged file may say (besides naming the file).
REJECTIONS = (
    "the file is damaged",
    "cannot read log",
    "values beyond ±1e+15",
    "NaN or infinite values",
    "null values",
    "expected numbers, got text",
    "not in the catalog",
    "values outside (0, 1]",
    "values other than 0 and 1",
)
FORMATS = {
    "checksummed.parquet": "ours",
    "plain.parquet": "uncompressed",
    "zstd.parquet": "zstd",
    "log.csv": "csv",
}


def _kinds(raw: bytes, csv: bool, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    size = min(4096, len(raw) // 8)
    for frac in (0.25, 0.5, 0.75):
        damaged = bytearray(raw)
        at = int(len(raw) * frac)
        damaged[at : at + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        out[f"random_at_{int(frac * 100)}"] = bytes(damaged)
    if csv:
        out["truncated"] = raw[: raw.rfind(b",", 0, len(raw) // 2) + 1]  # inside a row
        tail = bytearray(raw)
        tail[-size:] = bytes(size)
        out["zeroed_tail"] = bytes(tail)
        out["wrong_magic"] = b"\x89PNG" + raw[4:]
    else:
        out["truncated"] = raw[: len(raw) // 2]
        footer = bytearray(raw)
        length = int.from_bytes(raw[-8:-4], "little")  # thrift footer, then its length, "PAR1"
        footer[-8 - length : -8] = bytes(length)
        out["zeroed_footer"] = bytes(footer)
        out["wrong_magic"] = b"XXXX" + raw[4:-4] + b"XXXX"
    return out


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> Path:
    from bandits.data.io import write_log

    rng = np.random.default_rng(31)
    d = tmp_path_factory.mktemp("corrupted")
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
    write_log(good, d / "checksummed.parquet")
    good.write_parquet(d / "plain.parquet", compression="uncompressed")
    good.write_parquet(d / "zstd.parquet")
    good.write_csv(d / "log.csv")
    for seed, base in enumerate(FORMATS):
        path = d / base
        for kind, data in _kinds(path.read_bytes(), base.endswith(".csv"), seed).items():
            (d / f"{path.stem}-{kind}{path.suffix}").write_bytes(data)
    return d


def _cases(formats: dict[str, str]) -> list[str]:
    names = []
    for base in formats:
        stem, suffix = base.rsplit(".", 1)
        kinds = ["random_at_25", "random_at_50", "random_at_75", "truncated", "wrong_magic"]
        kinds.append("zeroed_tail" if suffix == "csv" else "zeroed_footer")
        names += [f"{stem}-{kind}.{suffix}" for kind in kinds]
    return names


ALL = _cases(FORMATS)
#: the default run's set: the middle of each format, and one damaged end
FAST = [
    "checksummed-random_at_50.parquet",
    "checksummed-zeroed_footer.parquet",
    "plain-random_at_50.parquet",
    "zstd-random_at_50.parquet",
    "zstd-truncated.parquet",
    "log-random_at_50.csv",
    "log-truncated.csv",
    "log-zeroed_tail.csv",
]
#: compare's default set
COMPARE_FAST = [FAST[0], FAST[2], FAST[4], FAST[5]]


def _assert_rejected(run, tmp_path: Path, name: str) -> str:
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "Warning" not in run.stderr, run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, run.stderr
    line = errors[0]
    assert name in line, line  # the file is named
    assert any(phrase in line for phrase in REJECTIONS), line
    assert not (tmp_path / "mlflow.db").exists()  # no store, so no run, was created
    return line


def test_the_table_covers_every_kind_and_format(corrupted):
    assert len(ALL) == 24
    for name in ALL:  # every case exists and really is damaged: it differs from its source
        intact = corrupted / f"{name.split('-')[0]}.{name.rsplit('.', 1)[1]}"
        assert (corrupted / name).read_bytes() != intact.read_bytes(), name


def _evaluate(corrupted: Path, tmp_path: Path, name: str):
    return run_app(
        "evaluate",
        tmp_path,
        f"logs={corrupted / name}",
        f"catalog={corrupted / 'catalog.parquet'}",
        "policy=uniform",
        timeout=300,
    )


def _check_evaluate(corrupted: Path, tmp_path: Path, name: str) -> None:
    line = _assert_rejected(_evaluate(corrupted, tmp_path, name), tmp_path, name)
    if name.startswith("checksummed-random"):
        assert "page checksum does not match" in line, line


@pytest.mark.parametrize("name", FAST)
def test_evaluate_rejects_a_damaged_log_by_name(corrupted, tmp_path, name):
    _check_evaluate(corrupted, tmp_path, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ALL if n not in FAST])
def test_evaluate_rejects_every_damaged_log_by_name(corrupted, tmp_path, name):
    _check_evaluate(corrupted, tmp_path, name)


def _compare(corrupted: Path, tmp_path: Path, name: str):
    return run_app(
        "compare",
        tmp_path,
        "source=logs",
        f"logs={corrupted / name}",
        f"catalog={corrupted / 'catalog.parquet'}",
        "progress=false",
        timeout=300,
    )


@pytest.mark.parametrize("name", COMPARE_FAST)
def test_compare_rejects_a_damaged_log_by_name(corrupted, tmp_path, name):
    _assert_rejected(_compare(corrupted, tmp_path, name), tmp_path, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ALL if n not in COMPARE_FAST])
def test_compare_rejects_every_damaged_log_by_name(corrupted, tmp_path, name):
    _assert_rejected(_compare(corrupted, tmp_path, name), tmp_path, name)
