"""The README's "Your own logs" walk-through, end to end: a shop-style CSV export (other
column names, rows out of time order, an index column, customer ids, first names) read with
``configs/columns/example_shop.yaml`` gives a verdict on the whole ladder, names the file's
columns, and stores no identifiers or personal data."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
from app_cli import ROOT, mlflow_runs, run_app


def test_a_shops_export_to_a_verdict_with_only_the_mapping(tmp_path):
    made = subprocess.run(
        [sys.executable, "-m", "experiments.example_log", str(tmp_path / "ex"), "--rows", "4000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    raw = pl.read_csv(tmp_path / "ex" / "clicks.csv")
    assert {"item_id", "clicked", "p_shown", "sent_at", "customer_id", "first_name"} <= set(
        raw.columns
    )
    assert not any(c.startswith("true_") or c == "expected_reward" for c in raw.columns)
    run = run_app(
        "compare",
        tmp_path,
        "source=logs",
        f"logs={tmp_path / 'ex' / 'clicks.csv'}",
        f"catalog={tmp_path / 'ex' / 'items.csv'}",
        "columns=example_shop",
    )
    assert run.returncode == 0, run.stderr
    err = run.stderr
    assert "ordered by 'sent_at'" in err  # the file's name for the time column
    assert "segment ← crm_segment" in err and "reward ← clicked" in err
    assert "first_name" in err and "personal data" in err
    assert "VERDICT" in err and "left out" not in err  # every rung found its columns
    (parent,) = [
        r for r in mlflow_runs(tmp_path, "compare") if "mlflow.parentRunId" not in r.data.tags
    ]
    assert parent.info.status == "FINISHED"
    assert "ladder.left_out" not in parent.data.tags
    store = (tmp_path / "mlflow.db").read_bytes()
    names = set(raw["first_name"].unique().to_list())
    customers = raw["customer_id"].head(50).to_list()
    for path in (tmp_path / "mlartifacts").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert not any(c.encode() in text for c in customers), path
            assert not any(f",{n},".encode() in text for n in names), path
    assert not any(c.encode() in store for c in customers)
