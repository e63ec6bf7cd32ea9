"""Identifiers, row indexes and personal data stay out of a detected context, and the
column table says what was inferred about every column."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bandits.data import load_log
from bandits.data.columns import column_lines, column_table, identifier_like_columns

CATALOG = pl.DataFrame({"variant_id": ["a", "b", "c"]})


def _log(n: int = 2000, **extra) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "action": rng.choice(["a", "b", "c"], n),
            "reward": rng.integers(0, 2, n).astype(float),
            "propensity": np.full(n, 1 / 3),
            "weather": rng.choice(["sun", "rain"], n),
            "age": rng.integers(18, 80, n),
            "spend": rng.gamma(2.0, 10.0, n),  # continuous: unique per row, still a feature
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("", np.arange(2000), "row index"),
        ("Unnamed: 0", np.arange(2000), "row index"),
        ("customer_id", np.random.default_rng(1).integers(0, 300, 2000), "identifier (its name)"),
        ("user_ref", [f"{i:08d}" for i in range(2000)], "2,000 distinct values"),
        ("order_no", np.random.default_rng(2).permutation(10**6)[:2000], "distinct values"),
        (
            "first_name",
            np.random.default_rng(3).choice([f"n{i}" for i in range(150)], 2000),
            "personal data",
        ),
        ("E-mail", [f"u{i}@x.org" for i in range(2000)], "personal data"),
    ],
)
def test_identifier_like_columns_are_excluded_from_a_detected_context(column, values, reason):
    data = load_log(_log(**{column: values}), catalog=CATALOG)
    assert column not in data.context_columns
    assert set(data.context_columns) == {"weather", "age", "spend"}
    (excluded,) = data.excluded_columns
    assert excluded[0] == column and reason in excluded[1]
    table = column_table(data)
    row = table.filter(pl.col("column") == column).row(0, named=True)
    assert row["role"] == "excluded from the context" and reason in row["reason"]
    if column in ("first_name", "E-mail", "user_ref"):  # never echo the values themselves
        assert "levels" not in row["summary"] and "n1" not in row["summary"]


def test_named_context_keeps_what_the_user_asked_for():
    frame = _log(customer_id=np.random.default_rng(1).integers(0, 300, 2000))
    data = load_log(frame, catalog=CATALOG, context_columns=["weather", "customer_id"])
    assert data.context_columns == ("weather", "customer_id") and data.excluded_columns == ()


def test_small_logs_and_floats_are_not_called_identifiers():
    frame = _log(n=50, code=[str(i) for i in range(50)])
    assert identifier_like_columns(frame, ["code", "spend"]) == {}  # too few rows to tell
    assert identifier_like_columns(_log(), ["spend", "age", "weather"]) == {}


def test_column_table_names_every_role():
    data = load_log(_log(unsubscribed=np.zeros(2000, dtype=bool)), catalog=CATALOG)
    roles = dict(column_table(data).select("column", "role").iter_rows())
    assert roles["action"] == "action" and roles["reward"] == "reward"
    assert roles["propensity"] == "propensity" and roles["unsubscribed"] == "cost"
    assert roles["weather"] == roles["age"] == roles["spend"] == "context"
    lines = column_lines(column_table(data))
    assert len(lines) == data.frame.width and any("levels rain, sun" in ln for ln in lines)
