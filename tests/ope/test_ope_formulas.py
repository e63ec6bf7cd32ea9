"""Every estimator's value, stderr and interval against hand computation on tiny arrays."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from bandits.ope import DM, DR, IPS, SNDR, SNIPS, DRos, SwitchDR

Z95 = 1.959963984540054
Z90 = 1.6448536269514722

# n = 4 rounds, K = 2 actions
R = [1.0, 0.0, 0.5, 2.0]
A = [0, 1, 1, 0]
P = [0.5, 0.25, 0.8, 0.4]
PI = [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]]
Q = [[0.6, 0.3], [0.1, 0.2], [0.4, 0.7], [1.5, 0.5]]
N = 4

# hand-derived building blocks (plain Python, independent of the library)
W = [PI[i][A[i]] / P[i] for i in range(N)]  # [1.8, 3.2, 0.625, 2.5]
DM_TERMS = [sum(PI[i][k] * Q[i][k] for k in range(2)) for i in range(N)]
RESID = [R[i] - Q[i][A[i]] for i in range(N)]


def data(**extra: object) -> dict:
    out = {
        "reward": np.array(R),
        "action": np.array(A),
        "propensity": np.array(P),
        "target_probs": np.array(PI),
    }
    out.update(extra)
    return out


def mean_type_reference(terms: list[float]) -> tuple[float, float]:
    return statistics.fmean(terms), statistics.stdev(terms) / math.sqrt(len(terms))


def check(est, value: float, stderr: float, z: float = Z95, **extra: object) -> None:
    """The plain CLT / delta-method interval (``interval="analytic"``) against hand work."""
    e = est.set_params(interval="analytic").estimate(**data(**extra))
    assert e.value == pytest.approx(value, rel=1e-12, abs=1e-14)
    assert e.stderr == pytest.approx(stderr, rel=1e-12, abs=1e-14)
    assert e.ci_low == pytest.approx(value - z * stderr, rel=1e-12, abs=1e-14)
    assert e.ci_high == pytest.approx(value + z * stderr, rel=1e-12, abs=1e-14)
    assert e.n == N
    assert e.estimator == est.name


def test_building_blocks_by_hand() -> None:
    assert W == pytest.approx([1.8, 3.2, 0.625, 2.5])
    assert DM_TERMS == pytest.approx([0.57, 0.18, 0.55, 1.5])
    assert RESID == pytest.approx([0.4, -0.2, -0.2, 0.5])


def test_ips_by_hand() -> None:
    terms = [1.8 * 1.0, 3.2 * 0.0, 0.625 * 0.5, 2.5 * 2.0]
    assert statistics.fmean(terms) == pytest.approx(1.778125)
    check(IPS(), *mean_type_reference(terms))


def test_ips_clipped_by_hand() -> None:
    terms = [min(W[i], 2.0) * R[i] for i in range(N)]  # rows 1 and 3 clipped
    check(IPS(clip=2.0), *mean_type_reference(terms))
    assert IPS(clip=2.0).estimate(**data()).diagnostics["clipped_fraction"] == 0.5


def test_level_changes_z() -> None:
    terms = [W[i] * R[i] for i in range(N)]
    check(IPS(level=0.9), *mean_type_reference(terms), z=Z90)


def test_snips_by_hand() -> None:
    a_terms = [W[i] * R[i] for i in range(N)]
    value = sum(a_terms) / sum(W)
    # delta method for a ratio of means: Var ≈ (1/n) Var(A - V B) / mean(B)^2
    lin = [a_terms[i] - value * W[i] for i in range(N)]
    stderr = statistics.stdev(lin) / math.sqrt(N) / statistics.fmean(W)
    check(SNIPS(), value, stderr)


def test_dm_by_hand() -> None:
    check(DM(), *mean_type_reference(DM_TERMS), reward_hat=np.array(Q))


def test_dm_without_propensity_has_no_weight_diagnostics() -> None:
    kwargs = data(reward_hat=np.array(Q))
    del kwargs["propensity"]
    e = DM().estimate(**kwargs)
    assert e.value == pytest.approx(statistics.fmean(DM_TERMS), rel=1e-12)
    assert "ess" not in e.diagnostics
    assert "unsupported_target_mass" not in e.diagnostics  # support unknown without them
    assert e.evidence == "weak" and "no propensities" in e.evidence_reason


def test_dr_by_hand() -> None:
    terms = [DM_TERMS[i] + W[i] * RESID[i] for i in range(N)]
    check(DR(), *mean_type_reference(terms), reward_hat=np.array(Q))


def test_sndr_by_hand() -> None:
    c_terms = [W[i] * RESID[i] for i in range(N)]
    d_bar, w_bar = statistics.fmean(DM_TERMS), statistics.fmean(W)
    ratio = sum(c_terms) / sum(W)
    value = d_bar + ratio
    psi = [DM_TERMS[i] + (c_terms[i] - ratio * W[i]) / w_bar for i in range(N)]
    check(SNDR(), value, statistics.stdev(psi) / math.sqrt(N), reward_hat=np.array(Q))


def test_switch_dr_by_hand() -> None:
    lam = 2.0  # w = [1.8, 3.2, 0.625, 2.5]: rows 1 and 3 use the model only
    terms = [DM_TERMS[i] + (W[i] * RESID[i] if W[i] <= lam else 0.0) for i in range(N)]
    assert terms == pytest.approx([0.57 + 0.72, 0.18, 0.55 - 0.125, 1.5])
    check(SwitchDR(lambda_=lam), *mean_type_reference(terms), reward_hat=np.array(Q))
    e = SwitchDR(lambda_=lam, interval="analytic").estimate(**data(reward_hat=np.array(Q)))
    assert e.diagnostics["switched_fraction"] == 0.5


def test_dros_by_hand() -> None:
    lam = 4.0
    shrunk = [lam * w / (w * w + lam) for w in W]
    terms = [DM_TERMS[i] + shrunk[i] * RESID[i] for i in range(N)]
    check(DRos(lambda_=lam), *mean_type_reference(terms), reward_hat=np.array(Q))


@pytest.mark.parametrize("cls", [SwitchDR, DRos])
def test_lambda_limits_reduce_to_dm_and_dr(cls) -> None:
    kwargs = data(reward_hat=np.array(Q))
    dm, dr = DM().estimate(**kwargs), DR().estimate(**kwargs)
    at_zero, at_inf = cls(lambda_=0.0).estimate(**kwargs), cls(lambda_=math.inf).estimate(**kwargs)
    assert at_zero.value == pytest.approx(dm.value, rel=1e-12)
    assert at_zero.stderr == pytest.approx(dm.stderr, rel=1e-12)
    assert at_inf.value == pytest.approx(dr.value, rel=1e-12)
    assert at_inf.stderr == pytest.approx(dr.stderr, rel=1e-12)


def test_weight_diagnostics_by_hand() -> None:
    d = IPS().estimate(**data()).diagnostics
    assert d["ess"] == pytest.approx(sum(W) ** 2 / sum(w * w for w in W), rel=1e-12)
    assert d["max_weight"] == 3.2
    assert d["mean_weight"] == pytest.approx(sum(W) / N, rel=1e-12)
    assert d["unsupported_target_mass"] == 0.0  # both actions appear in the log


def test_unsupported_target_mass_by_hand() -> None:
    # K = 3, action 2 is never logged -> mean_i pi[i, 2]
    pi = np.array([[0.5, 0.2, 0.3], [0.1, 0.9, 0.0], [0.2, 0.2, 0.6], [0.7, 0.1, 0.2]])
    kwargs = {
        "reward": np.array(R),
        "action": np.array(A),
        "propensity": np.array(P),
        "target_probs": pi,
    }
    d = SNIPS().estimate(**kwargs).diagnostics
    assert d["unsupported_target_mass"] == pytest.approx((0.3 + 0.0 + 0.6 + 0.2) / 4, rel=1e-12)
    # with logging_probs: sum_k pi[i, k] 1[logging_probs[i, k] == 0] per row, averaged
    lp = np.array(
        [[0.5, 0.5, 0.0], [0.75, 0.25, 0.0], [0.2, 0.8, 0.0], [0.4, 0.0, 0.6]]
    )  # lp[i, a_i] == P[i]
    d = SNIPS().estimate(**kwargs, logging_probs=lp).diagnostics
    assert d["unsupported_target_mass"] == pytest.approx((0.3 + 0.0 + 0.6 + 0.1) / 4, rel=1e-12)


def test_snips_without_support_is_zero_with_infinite_interval() -> None:
    pi = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # never the logged action
    e = SNIPS(interval="analytic").estimate(**{**data(), "target_probs": pi})
    assert e.value == 0.0
    assert (e.stderr, e.ci_low, e.ci_high) == (math.inf, -math.inf, math.inf)
    assert e.diagnostics["ess"] == 0.0
    # bounded (default): the value is somewhere in the reward range, and the log cannot say
    e = SNIPS().estimate(**{**data(), "target_probs": pi})
    assert (e.ci_low, e.ci_high) == (0.0, 2.0)
    assert e.evidence == "insufficient" and not e.identified


def test_single_round_gives_infinite_interval() -> None:
    one = {
        "reward": np.array([1.0]),
        "action": np.array([0]),
        "propensity": np.array([0.5]),
        "target_probs": np.array([[1.0, 0.0]]),
    }
    for est in (IPS(interval="analytic"), SNIPS(interval="analytic")):
        e = est.estimate(**one)
        assert math.isfinite(e.value)
        assert (e.stderr, e.ci_low, e.ci_high) == (math.inf, -math.inf, math.inf)
    for est in (IPS(), IPS(interval="bootstrap", seed=0), SNIPS()):  # the reward range
        e = est.estimate(**one)
        assert e.stderr == math.inf and (e.ci_low, e.ci_high) == (0.0, 1.0)


def test_constant_terms_give_zero_width_interval_only_when_analytic() -> None:
    constant = {
        "reward": np.ones(5),
        "action": np.zeros(5, dtype=int),
        "propensity": np.ones(5),
        "target_probs": np.tile([1.0, 0.0], (5, 1)),
    }
    e = IPS(interval="analytic").estimate(**constant)
    assert (e.value, e.stderr, e.ci_low, e.ci_high) == (1.0, 0.0, 1.0, 1.0)
    # five successes out of five say the value is high, not that it is exactly 1
    e = IPS().estimate(**constant)
    assert e.value == 1.0 and e.ci_high == 1.0 and 0.4 < e.ci_low < 0.9
