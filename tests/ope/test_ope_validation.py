"""Input validation: message format, no needless copies, accepted dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import DR, IPS, SNIPS
from bandits.ope.validation import validate_logged_data


def log(n: int = 20, k: int = 3) -> dict:
    rng = np.random.default_rng(0)
    action = np.arange(n) % k
    return {
        "reward": rng.random(n),
        "action": action,
        "propensity": np.full(n, 1.0 / k),
        "target_probs": np.full((n, k), 1.0 / k),
    }


def test_message_lists_rows_and_values_on_one_line() -> None:
    data = log()
    data["propensity"] = data["propensity"].copy()
    data["propensity"][[3, 17]] = [0.0, 1.2]
    with pytest.raises(ValueError) as info:
        IPS().estimate(**data)
    assert str(info.value) == "propensity must be in (0, 1]: rows [3, 17] (values 0, 1.2)"


def test_message_truncates_long_row_lists() -> None:
    data = log()
    data["reward"] = np.full(20, np.nan)
    with pytest.raises(ValueError) as info:
        IPS().estimate(**data)
    msg = str(info.value)
    expected = "reward must be finite: rows [0, 1, 2, 3, 4] and 15 more (values {})"
    assert msg == expected.format(", ".join(["nan"] * 5))


def test_row_sum_message() -> None:
    data = log()
    data["target_probs"] = data["target_probs"].copy()
    data["target_probs"][5] = [0.5, 0.2, 0.2]
    with pytest.raises(
        ValueError, match=r"^target_probs rows must sum to 1 .*rows \[5\] \(sums 0.9\)$"
    ):
        SNIPS().estimate(**data)


def test_row_sum_tolerance_is_1e_6() -> None:
    data = log()
    data["target_probs"] = data["target_probs"].copy()
    data["target_probs"][:, 0] += 5e-7
    IPS().estimate(**data)  # within tolerance
    data["target_probs"][:, 0] += 1e-6
    with pytest.raises(ValueError, match="target_probs"):
        IPS().estimate(**data)


def test_action_out_of_range_names_k() -> None:
    data = log()
    data["action"] = data["action"].copy()
    data["action"][7] = 3
    with pytest.raises(ValueError, match=r"action must be in \[0, 3\).*rows \[7\] \(values 3\)"):
        IPS().estimate(**data)


def test_float64_inputs_are_not_copied() -> None:
    data = log()
    data["reward_hat"] = np.zeros((20, 3))
    v = validate_logged_data(**data)
    for key in ("reward", "propensity", "target_probs", "reward_hat"):
        assert getattr(v, key) is data[key]
    assert v.action is data["action"]


def test_accepts_lists_integral_floats_and_unsigned_actions() -> None:
    data = log()
    ref = IPS().estimate(**data).value
    as_lists = {k: v.tolist() for k, v in data.items()}
    assert IPS().estimate(**as_lists).value == ref
    assert IPS().estimate(**{**data, "action": data["action"].astype(float)}).value == ref
    assert IPS().estimate(**{**data, "action": data["action"].astype(np.uint64)}).value == ref
    assert IPS().estimate(**{**data, "reward": data["reward"].astype(np.float32)}).value == (
        pytest.approx(ref, rel=1e-6)
    )


def test_logging_probs_supply_or_check_propensity() -> None:
    data = log()
    lp = np.full((20, 3), 1.0 / 3)
    ref = IPS().estimate(**data)
    without_p = {k: v for k, v in data.items() if k != "propensity"}
    assert IPS().estimate(**without_p, logging_probs=lp).value == ref.value
    wrong = {**data, "propensity": np.full(20, 0.5)}
    with pytest.raises(
        ValueError, match="logging_probs at the logged action must equal propensity"
    ):
        IPS().estimate(**wrong, logging_probs=lp)
    lp_zero = lp.copy()
    lp_zero[4] = [0.0, 0.5, 0.5]  # row 4 logged action 1 -> fine; row 3 logged action 0
    lp_zero[3] = [0.0, 0.5, 0.5]
    with pytest.raises(
        ValueError, match=r"logging_probs must be > 0 at the logged action: rows \[3\]"
    ):
        IPS().estimate(**without_p, logging_probs=lp_zero)
    with pytest.raises(ValueError, match="logging_probs must have the shape"):
        IPS().estimate(**data, logging_probs=lp[:, :2])


def test_reward_hat_required_message() -> None:
    with pytest.raises(ValueError, match=r"reward_hat \(shape \(n, K\)\) is required by DR"):
        DR().estimate(**log())
