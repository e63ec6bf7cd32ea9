"""What a team declares about its log's columns — the reward's type and range, columns kept
out of the context, the user column, categorical / numeric overrides — is enforced, shown in
the column table, and means the same whole or streamed."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bandits.data import iter_log_batches, load_log
from bandits.data.columns import column_table
from bandits.errors import ConfigError, DataError
from bandits.offline import evaluate_policy, evaluate_stream, make_estimators
from bandits.policies import make_policy

CATALOG = pl.DataFrame({"variant_id": ["a", "b", "c"]})


def _log(n: int = 3000, seed: int = 0, **extra) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "action": rng.choice(["a", "b", "c"], n),
            "reward": (rng.random(n) < 0.05).astype(float),
            "propensity": np.full(n, 1 / 3),
            "weather": rng.choice(["sun", "rain"], n),
            "store_code": rng.integers(1, 8, n),
            "spend": rng.gamma(2.0, 10.0, n),
            "position": rng.integers(1, 4, n),
            **extra,
        }
    )


def _with_reward(values: list[float]) -> pl.DataFrame:
    frame = _log(len(values))
    return frame.with_columns(pl.Series("reward", values, dtype=pl.Float64))


@pytest.mark.parametrize(
    ("rewards", "kind", "span", "message"),
    [
        ([0.0, 1.0, -1.0, 0.0, -1.0], "click", None, "values other than 0 and 1"),
        ([0.0, 1.0, 0.5, 0.0, 1.0], "click", None, "rows [2] (1 in all), e.g. [0.5]"),
        ([0.0, 2.0, 1.5, 3.0, 0.0], "count", None, "not counts"),
        ([0.0, 2.0, -1.0, 3.0, 0.0], "count", None, "rows [2]"),
        ([0.0, 12.5, -3.0, 0.0, 7.0], "revenue", None, "negative values"),
        ([0.0, 12.5, 300.0, 0.0, 7.0], None, [0.0, 100.0], "outside the declared reward_range"),
        ([0.0, 12.5, -30.0, 0.0, 7.0], "revenue", [-20.0, 100.0], "rows [2]"),
    ],
)
def test_rewards_breaking_their_declaration_are_one_line_naming_the_rows(
    rewards, kind, span, message
):
    with pytest.raises(DataError) as err:
        load_log(_with_reward(rewards), catalog=CATALOG, reward_type=kind, reward_range=span)
    text = str(err.value)
    assert "\n" not in text and "column 'reward'" in text and message in text, text


@pytest.mark.parametrize(
    ("rewards", "kind", "span", "expected"),
    [
        ([0.0, 1.0, 1.0, 0.0, 0.0], "click", None, (0.0, 1.0)),
        ([0.0, 2.0, 1.0, 3.0, 0.0], "count", None, None),
        ([0.0, 12.5, 3.0, 0.0, 7.0], "revenue", None, None),
        ([0.0, 12.5, -3.0, 0.0, 7.0], "revenue", [-20, 100], (-20.0, 100.0)),
        ([0.0, 1.0, -1.0, 0.0, 1.0], None, None, None),  # undeclared: not checked
    ],
)
def test_rewards_keeping_their_declaration_load_with_the_declared_range(
    rewards, kind, span, expected
):
    data = load_log(_with_reward(rewards), catalog=CATALOG, reward_type=kind, reward_range=span)
    assert data.reward_type == kind and data.reward_range == expected
    role = column_table(data).filter(pl.col("column") == "reward")["role"].item()
    assert role == (f"reward ({kind}, declared)" if kind else "reward")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reward_type": "clicks"}, ConfigError, "reward_type must be one of click, count"),
        ({"reward_range": [1, 0]}, ConfigError, "min < max"),
        ({"reward_range": "0,1"}, ConfigError, "reward_range must be [min, max]"),
        ({"categorical": ["spend"], "numeric": ["spend"]}, ConfigError, "both categorical"),
        ({"categorical": "store_code"}, ConfigError, "must be a list"),
        ({"exclude_columns": ["nope"]}, DataError, "excluded column 'nope' is not in the log"),
        ({"user_column": "nope"}, DataError, "excluded column 'nope'"),
        ({"categorical": ["nope"]}, DataError, "'nope' is declared categorical but is not"),
        (
            {"context_columns": ["weather", "position"], "exclude_columns": ["position"]},
            ConfigError,
            "both a context column and excluded",
        ),
    ],
)
def test_bad_declarations_are_one_line(kwargs, error, message):
    with pytest.raises(error) as err:
        load_log(_log(), catalog=CATALOG, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_position_is_context_unless_excluded_and_the_user_column_never_is():
    frame = _log(user=np.random.default_rng(5).integers(0, 50, 3000))  # 50 users: not unique
    plain = load_log(frame, catalog=CATALOG)
    assert "position" in plain.context_columns and "user" in plain.context_columns
    data = load_log(frame, catalog=CATALOG, exclude_columns=["position"], user_column="user")
    assert set(data.context_columns) == {"weather", "store_code", "spend"}
    reasons = dict(data.excluded_columns)
    assert reasons == {
        "position": "excluded by the column mapping",
        "user": "the user column: an identifier, never a feature",
    }
    roles = dict(column_table(data).select("column", "role").iter_rows())
    assert roles["position"] == roles["user"] == "excluded from the context"


def test_categorical_and_numeric_overrides_change_the_encoding():
    frame = _log().with_columns(pl.col("spend").round(2).cast(pl.String).alias("spend_text"))
    data = load_log(frame, catalog=CATALOG, categorical=["store_code"], numeric=["spend_text"])
    cats = {f.name: f.levels for f in data.features.categorical}
    nums = {f.name for f in data.features.numeric}
    assert cats["store_code"] == tuple(str(i) for i in range(1, 8))
    assert "spend_text" in nums and "store_code" not in nums
    plain = load_log(frame.drop("spend_text"), catalog=CATALOG)
    assert "store_code" in {f.name for f in plain.features.numeric}
    with pytest.raises(DataError, match=r"'spend_text' has .* distinct values .* numeric="):
        load_log(frame, catalog=CATALOG)  # 2,000-odd levels of text: say what to do
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("spend_text"))
        .alias("spend_text")
    )
    with pytest.raises(DataError, match=r"declared numeric.*rows \[7\].*'n/a'"):
        load_log(bad, catalog=CATALOG, numeric=["spend_text"])


def test_a_streamed_log_takes_the_same_mapping_and_gives_the_same_estimates(tmp_path):
    frame = _log(n=5000, seed=3, user_id=np.arange(5000), shopper=np.arange(5000) * 7)
    theirs = frame.rename({"action": "item", "reward": "clicked", "propensity": "p_logged"})
    theirs.write_parquet(tmp_path / "log.parquet", row_group_size=700)
    catalog = CATALOG.rename({"variant_id": "item"}).with_columns(price=pl.Series([1.0, 2.0, 3.0]))
    catalog.write_parquet(tmp_path / "catalog.parquet")
    options = {
        "column_map": {"action": "item", "reward": "clicked", "propensity": "p_logged"},
        "catalog_id_column": "item",
        "reward_type": "click",
        "exclude_columns": ["position"],
        "categorical": ["store_code"],
    }
    whole = load_log(tmp_path / "log.parquet", tmp_path / "catalog.parquet", **options)
    batches = list(
        iter_log_batches(
            tmp_path / "log.parquet", tmp_path / "catalog.parquet", batch_rows=1200, **options
        )
    )
    assert batches[0].context_columns == whole.context_columns
    assert batches[0].features.categorical == whole.features.categorical  # store_code 1..7
    lazy, eager = batches[0].features.numeric, whole.features.numeric  # one-pass vs two-pass std
    assert [f.name for f in lazy] == [f.name for f in eager] == ["spend"]
    assert lazy[0].scale == pytest.approx(eager[0].scale, rel=1e-12)
    streamed = dict(batches[0].excluded_columns)  # distinct counts are estimates there
    assert streamed.keys() == dict(whole.excluded_columns).keys()
    assert "5,000 distinct values in 5,000 rows" in streamed["shopper"]
    assert {"shopper", "position"} == dict(whole.excluded_columns).keys()
    assert "user_id" not in whole.context_columns  # bookkeeping by name
    assert batches[0].reward_range == whole.reward_range == (0.0, 1.0)
    estimators = make_estimators(["ips", "snips"], interval="analytic")
    policy = make_policy("fixed", {"variant": "b"})
    policy.reset(whole.problem_spec(), 0)
    a = evaluate_policy(whole, policy, estimators)
    b = evaluate_stream(batches, policy, estimators)
    for name in ("ips", "snips"):
        assert a.estimates[name].value == pytest.approx(b.estimates[name].value, rel=1e-12)
        assert a.estimates[name].ci_high == pytest.approx(b.estimates[name].ci_high, rel=1e-9)


def test_a_streamed_click_log_with_a_bad_reward_stops_at_its_batch(tmp_path):
    frame = _log(n=3000).with_columns(
        pl.when(pl.int_range(pl.len()) == 2500)
        .then(-1.0)
        .otherwise(pl.col("reward"))
        .alias("reward")
    )
    frame.write_parquet(tmp_path / "log.parquet")
    CATALOG.write_parquet(tmp_path / "catalog.parquet")
    batches = iter_log_batches(
        tmp_path / "log.parquet", tmp_path / "catalog.parquet", batch_rows=1000, reward_type="click"
    )
    with pytest.raises(DataError, match=r"rows \[2500\]"):
        list(batches)
    frame.rename({"reward": "clicked"}).write_parquet(tmp_path / "theirs.parquet")
    renamed = iter_log_batches(
        tmp_path / "theirs.parquet",
        tmp_path / "catalog.parquet",
        batch_rows=1000,
        reward_type="click",
        column_map={"reward": "clicked"},
    )
    with pytest.raises(DataError, match=r"column 'clicked' \(read as reward\).*rows \[2500\]"):
        list(renamed)
