"""Streaming: parts stream to exactly the arrays of the whole log, with one shared catalog and
feature schema; peak memory stays far below loading the log whole."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bandits.data import iter_log_batches, load_log, write_log

K = 6


def make_log(n: int, seed: int = 0, *, max_action_last: bool = False) -> pl.DataFrame:
    """``n`` rounds over K actions with a non-uniform logger and three context columns."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(K, 2.0), size=n)
    action = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, K - 1)
    if max_action_last:  # the highest index appears only in the last row
        probs[:, K - 1] = 0.0
        probs[-1] = np.eye(K)[K - 1]
        probs /= probs.sum(axis=1, keepdims=True)
        action = np.where(action == K - 1, 0, action)
        action[-1] = K - 1
    return pl.DataFrame(
        {
            "action": action.astype(np.int64),
            "reward": rng.random(n),
            "propensity": probs[np.arange(n), action],
            "action_probs": pl.Series(probs, dtype=pl.Array(pl.Float64, K)),
            "channel": pl.Series(["email", "push", "sms"]).gather(rng.integers(0, 3, n)),
            "hour": rng.integers(0, 24, n),
            "spend": rng.gamma(2.0, 5.0, n),
        }
    )


def write_parts(frame: pl.DataFrame, directory: Path, cuts: list[int]) -> Path:
    bounds = [0, *cuts, frame.height]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        write_log(frame.slice(lo, hi - lo), directory / f"part-{i:05d}.parquet")
    return directory


def test_parts_stream_to_the_whole_log(tmp_path: Path) -> None:
    frame = make_log(10_000, max_action_last=True)
    whole = load_log(write_log(frame, tmp_path / "whole.parquet"))
    parts = write_parts(frame, tmp_path / "parts", [1_700, 1_701, 6_000])
    batches = list(iter_log_batches(parts, batch_rows=1_234))

    assert [b.n for b in batches] == [1_234] * 8 + [10_000 - 8 * 1_234]
    assert [b.row_offset for b in batches] == list(range(0, 10_000, 1_234))
    for name in ("action", "reward", "propensity", "logging_probs"):
        streamed = np.concatenate([getattr(b, name) for b in batches])
        np.testing.assert_array_equal(streamed, getattr(whole, name), err_msg=name)
    assert pl.concat([b.frame for b in batches]).equals(whole.frame)
    # one catalog for all batches, inferred from the whole log (K - 1 only in the last row)
    assert whole.catalog_inferred and whole.n_actions == K
    assert all(b.catalog_inferred and b.action_ids == whole.action_ids for b in batches)
    # one feature schema for all batches, equal to the eager inference over the whole log
    first = batches[0].features
    assert all(b.features == first for b in batches)
    assert [c.levels for c in first.categorical] == [c.levels for c in whole.features.categorical]
    for a, b in zip(first.numeric, whole.features.numeric, strict=True):
        assert (a.name, a.center, a.scale) == pytest.approx((b.name, b.center, b.scale))


def test_stream_directory_layout_with_catalog_and_metadata(tmp_path: Path) -> None:
    frame = make_log(3_000, seed=1)
    ids = [f"v{i}" for i in range(K)]
    logged = frame.with_columns(pl.Series("action", ids).gather(frame["action"]))
    d = write_parts(logged, tmp_path / "log", [1_000])
    write_log(pl.DataFrame({"variant_id": ids, "discount": range(K)}), d / "catalog.parquet")
    meta = {"features": {"categorical": {"channel": ["email", "push", "sms"]}}}
    (d / "metadata.json").write_text(json.dumps(meta))

    whole = load_log(d)
    batches = list(iter_log_batches(d, batch_rows=1_000, columns=["spend"]))
    np.testing.assert_array_equal(np.concatenate([b.action for b in batches]), frame["action"])
    assert not whole.catalog_inferred and whole.action_ids == tuple(ids)
    for b in batches:
        assert b.features == whole.features and b.features.columns == ("channel",)
        assert b.frame.columns == ["action", "reward", "propensity", "channel", "spend"]


# ---------------------------------------------------------------- memory bound

ROWS = 2_500_000
BATCH = 200_000

# Runs in a fresh interpreter. Memory is the kernel's resident-set accounting (VmRSS now, VmHWM
# = peak, both per address space, so nothing is inherited from the pytest parent the way
# ru_maxrss is), not tracemalloc: polars and pyarrow allocate outside Python's allocator.
_PROBE = textwrap.dedent(
    """
    import json, sys
    from bandits.data import iter_log_batches, load_log

    def status_mb(key):
        with open("/proc/self/status") as fh:
            line = next(ln for ln in fh if ln.startswith(key + ":"))
        return int(line.split()[1]) / 1024

    path, batch = sys.argv[1], int(sys.argv[2])
    base = status_mb("VmRSS")
    total, rows = 0.0, 0
    for b in iter_log_batches(path, batch_rows=batch):
        total += float(b.reward.sum()) + float(b.logging_probs.sum())
        rows += b.n
    stream_peak = status_mb("VmHWM")
    data = load_log(path)
    whole_total = float(data.reward.sum()) + float(data.logging_probs.sum())
    print(json.dumps({
        "base": base, "stream_peak": stream_peak, "whole_peak": status_mb("VmHWM"),
        "rows": rows, "total": total, "whole_total": whole_total, "whole_rows": data.n,
    }))
    """
)


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~2.5M rounds, ~300 MB in memory (K = 10 logging probabilities per row), few MB on disk."""
    rng = np.random.default_rng(0)
    k = 10
    frame = pl.DataFrame(
        {
            "action": rng.integers(0, k, ROWS),
            "reward": (rng.random(ROWS) < 0.1).astype(np.float64),
            "propensity": np.full(ROWS, 1 / k),
            "action_probs": pl.Series(np.full((ROWS, k), 1 / k), dtype=pl.Array(pl.Float64, k)),
            "hour": rng.integers(0, 24, ROWS),
            "channel": pl.Series(["email", "push", "sms", "web"]).gather(rng.integers(0, 4, ROWS)),
        }
    )
    path = tmp_path_factory.mktemp("big") / "log.parquet"
    frame.write_parquet(path, row_group_size=100_000)
    return path


def test_streaming_peak_memory_is_far_below_whole_load(big_log: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(big_log), str(BATCH)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["rows"] == m["whole_rows"] == ROWS
    assert m["total"] == pytest.approx(m["whole_total"], rel=1e-12)
    stream = m["stream_peak"] - m["base"]
    whole = m["whole_peak"] - m["base"]
    assert whole > 250, m  # the whole log really was resident (~300 MB of arrays)
    assert stream < 0.35 * whole, m  # one 200k-row batch (~23 MB) plus reader buffers
