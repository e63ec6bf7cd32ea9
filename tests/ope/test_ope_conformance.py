"""Contract every registered estimator must satisfy (discovered through the registry)."""

from __future__ import annotations

import itertools
import math
from typing import Any, cast

import numpy as np
import pytest

import bandits.ope as ope
from bandits.ope import ESTIMATORS, Estimate, OffPolicyEstimator, Stats
from bandits.ope.registry import make_estimator, register_estimator

NAMES = sorted(ESTIMATORS)


def make(name: str, **params: Any) -> OffPolicyEstimator:
    return ESTIMATORS[name](**params)


def test_registry_has_the_public_estimators() -> None:
    assert {"dm", "ips", "snips", "dr", "sndr", "switch_dr", "dros"} <= set(ESTIMATORS)
    for cls in ESTIMATORS.values():
        assert getattr(ope, cls.__name__) is cls


def test_registry_rejects_a_second_class_under_a_used_name() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_estimator("ips")
        class Impostor(ope.IPS):
            pass

    assert ESTIMATORS["ips"] is ope.IPS


def test_make_estimator() -> None:
    est = make_estimator("switch_dr", lambda_=3.0)
    assert isinstance(est, ope.SwitchDR) and est.lambda_ == 3.0
    with pytest.raises(ValueError, match="unknown estimator"):
        make_estimator("nope")


@pytest.mark.parametrize("name", NAMES)
def test_estimate_is_finite_and_interval_contains_value(name: str, small_log: dict) -> None:
    for interval in ("analytic", "bootstrap"):
        est = make(name, interval=interval, n_bootstrap=300, seed=3)
        e = est.estimate(**small_log)
        assert isinstance(e, Estimate)
        assert e.estimator == name == est.name
        assert e.interval == interval
        assert e.n == small_log["reward"].shape[0]
        assert e.level == 0.95
        for val in (e.value, e.stderr, e.ci_low, e.ci_high, *e.diagnostics.values()):
            assert math.isfinite(val)
        assert e.stderr > 0
        assert e.ci_low <= e.value <= e.ci_high
        for key in ("ess", "max_weight", "mean_weight", "unsupported_target_mass"):
            assert key in e.diagnostics
        flat = e.to_dict()
        assert flat["value"] == e.value and flat["ess"] == e.diagnostics["ess"]
        metrics = e.to_metrics()
        assert metrics[f"{name}/value"] == e.value
        assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("name", NAMES)
def test_estimate_equals_finalize_of_partial(name: str, small_log: dict) -> None:
    est = make(name)
    whole = est.estimate(**small_log)
    assert est.finalize(est.partial(**small_log)) == whole


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("action_2_in_whole_log", [True, False])
def test_merged_partitions_equal_whole(
    name: str, action_2_in_whole_log: bool, small_log: dict
) -> None:
    est = make(name)
    n = small_log["reward"].shape[0]
    # uneven parts; the first lacks action 2 to exercise the unsupported-mass bookkeeping
    order = np.argsort(small_log["action"] == 2, kind="stable")
    log = {key: val[order] for key, val in small_log.items()}
    log["target_probs"] = np.tile([0.35, 0.35, 0.3], (n, 1))
    cut = n // 2 if action_2_in_whole_log else n
    log["action"] = np.where(np.arange(n) < cut, np.minimum(log["action"], 1), log["action"])
    cuts = [0, 7, n // 2, n - 1, n]
    parts = [
        est.partial(**{key: val[a:b] for key, val in log.items()})
        for a, b in itertools.pairwise(cuts)
    ]
    assert parts[0].action_counts[2] == 0
    whole = est.estimate(**log)
    expected_unsupported = 0.0 if action_2_in_whole_log else 0.3
    assert whole.diagnostics["unsupported_target_mass"] == pytest.approx(expected_unsupported)
    summed = cast(Stats, sum(parts))  # Stats + Stats, started from 0 (Stats.__radd__)
    for merged in (summed, Stats.merge_all(parts), parts[3] + parts[1] + parts[0] + parts[2]):
        got = est.finalize(merged)
        assert got.n == whole.n
        for attr in ("value", "stderr", "ci_low", "ci_high"):
            assert getattr(got, attr) == pytest.approx(getattr(whole, attr), rel=1e-12, abs=1e-12)
        assert got.diagnostics.keys() == whole.diagnostics.keys()
        for key, val in whole.diagnostics.items():
            assert got.diagnostics[key] == pytest.approx(val, rel=1e-12, abs=1e-12)
    # merge-then-finalize also matches on the raw-sum view
    merged = summed
    full = est.partial(**log)
    np.testing.assert_allclose(merged.sums, full.sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.sums_of_products, full.sums_of_products, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_bootstrap_is_reproducible(name: str, small_log: dict) -> None:
    a = make(name, interval="bootstrap", n_bootstrap=200, seed=11).estimate(**small_log)
    b = make(name, interval="bootstrap", n_bootstrap=200, seed=11).estimate(**small_log)
    c = make(name, interval="bootstrap", n_bootstrap=200, seed=12).estimate(**small_log)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.value == c.value


@pytest.mark.parametrize("name", NAMES)
def test_get_params_round_trip(name: str) -> None:
    est = make(name, level=0.9, interval="bootstrap", n_bootstrap=50, seed=5)
    params = est.get_params()
    assert {"level", "interval", "n_bootstrap", "seed"} <= params.keys()
    assert params["level"] == 0.9 and params["seed"] == 5
    clone = type(est)(**params)
    assert clone.get_params() == params
    assert repr(clone) == repr(est)
    assert est.set_params(level=0.8) is est and est.level == 0.8
    with pytest.raises(ValueError, match="no setting"):
        est.set_params(bogus=1)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_only_stores_settings(name: str) -> None:
    est = make(name, level=2.0, interval="nope", n_bootstrap=1)  # stored, not checked yet
    assert est.level == 2.0
    with pytest.raises(ValueError, match="level"):
        est.estimate(reward=[1.0], action=[0], propensity=[1.0], target_probs=[[1.0]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("setting", "value"),
    [("level", 1.0), ("interval", "jackknife"), ("n_bootstrap", 1), ("seed", "abc")],
)
def test_bad_settings_raise(name: str, setting: str, value: object, small_log: dict) -> None:
    est = make(name).set_params(**{setting: value})
    with pytest.raises(ValueError, match=setting):
        est.estimate(**small_log)


@pytest.mark.parametrize("name", NAMES)
def test_requires_flags_are_honoured(name: str, small_log: dict) -> None:
    cls = ESTIMATORS[name]
    assert isinstance(cls.requires_reward_hat, bool)
    without_q = {k: v for k, v in small_log.items() if k != "reward_hat"}
    if cls.requires_reward_hat:
        with pytest.raises(ValueError, match="reward_hat"):
            cls().estimate(**without_q)
    else:
        assert math.isfinite(cls().estimate(**without_q).value)
    without_p = {k: v for k, v in small_log.items() if k != "propensity"}
    if cls.requires_propensity:
        with pytest.raises(ValueError, match="propensity"):
            cls().estimate(**without_p)
    else:
        assert math.isfinite(cls().estimate(**without_p).value)


@pytest.mark.parametrize("name", NAMES)
def test_finalize_rejects_stats_of_another_configuration(name: str, small_log: dict) -> None:
    stats = make(name).partial(**small_log)
    other = "ips" if name != "ips" else "snips"
    with pytest.raises(ValueError, match="Stats come from"):
        make(other).finalize(stats)
    with pytest.raises(ValueError, match="cannot merge"):
        stats.merge(make(other).partial(**small_log))


def _corruptions(n: int, k: int) -> list[tuple[str, str, object, str]]:
    """(id, argument, corrupting function, expected message fragment)."""

    def setrow(arr, idx, val):
        arr = np.array(arr, dtype=float)
        arr[idx] = val
        return arr

    return [
        ("reward-nan", "reward", lambda d: setrow(d["reward"], 5, np.nan), "rows [5]"),
        ("reward-2d", "reward", lambda d: d["reward"][:, None], "shape"),
        ("reward-short", "reward", lambda d: d["reward"][:-1], "rows"),
        ("prop-zero", "propensity", lambda d: setrow(d["propensity"], 3, 0.0), "rows [3]"),
        ("prop-big", "propensity", lambda d: setrow(d["propensity"], 17, 1.2), "rows [17]"),
        ("prop-inf", "propensity", lambda d: setrow(d["propensity"], 2, np.inf), "rows [2]"),
        ("prop-len", "propensity", lambda d: d["propensity"][:-2], "rows"),
        ("action-high", "action", lambda d: np.where(np.arange(n) == 4, k, d["action"]), "[4]"),
        ("action-neg", "action", lambda d: np.where(np.arange(n) == 9, -1, d["action"]), "[9]"),
        ("action-frac", "action", lambda d: setrow(d["action"], 1, 0.5), "rows [1]"),
        ("action-str", "action", lambda d: d["action"].astype(str), "integer"),
        ("pi-sum", "target_probs", lambda d: setrow(d["target_probs"], (6, 0), 0.0), "[6]"),
        ("pi-neg", "target_probs", lambda d: setrow(d["target_probs"], (8, 1), -0.1), "[8]"),
        ("pi-nan", "target_probs", lambda d: setrow(d["target_probs"], (2, 2), np.nan), "[2]"),
        ("pi-1d", "target_probs", lambda d: d["target_probs"][:, 0], "shape"),
        ("q-nan", "reward_hat", lambda d: setrow(d["reward_hat"], (12, 1), np.nan), "[12]"),
        ("q-shape", "reward_hat", lambda d: d["reward_hat"][:, :-1], "shape"),
    ]


CORRUPTIONS = _corruptions(300, 3)


# (estimator, corruption) pairs; reward_hat corruptions only for estimators that use it
_BAD_CASES = [
    pytest.param(name, *c[1:], id=f"{name}-{c[0]}")
    for name in NAMES
    for c in CORRUPTIONS
    if c[1] != "reward_hat" or ESTIMATORS[name].requires_reward_hat
]


@pytest.mark.parametrize(("name", "argument", "corrupt", "fragment"), _BAD_CASES)
def test_bad_inputs_raise_one_line_value_error(
    name: str, argument: str, corrupt, fragment: str, small_log: dict
) -> None:
    cls = ESTIMATORS[name]
    bad = {**small_log, argument: corrupt(small_log)}
    with pytest.raises(ValueError) as info:
        cls().estimate(**bad)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(argument) or f" {argument} " in f" {message} "
    assert fragment in message
    with pytest.raises(ValueError):
        cls().partial(**bad)


@pytest.mark.parametrize("name", NAMES)
def test_empty_log_raises(name: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        make(name).estimate(
            reward=np.zeros(0),
            action=np.zeros(0, dtype=int),
            propensity=np.zeros(0),
            target_probs=np.zeros((0, 2)),
            reward_hat=np.zeros((0, 2)),
        )


# -- one settings mechanism (bandits.settings.Settings) -------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_settings_are_explicit_and_clone_is_a_fresh_copy(name: str, small_log: dict) -> None:
    """Settings are the constructor's explicit keyword arguments (no ``**kwargs``), and
    ``clone`` gives an equal, independent copy whose seed can be replaced."""
    import inspect

    from bandits.settings import Settings

    cls = ESTIMATORS[name]
    assert issubclass(cls, Settings)
    kinds = {p.kind for p in inspect.signature(cls.__init__).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    est = make(name, interval="bootstrap", n_bootstrap=200, seed=11)
    twin = est.clone()
    assert twin is not est and twin.get_settings() == est.get_settings()
    assert twin.estimate(**small_log) == est.estimate(**small_log)
    other = est.clone(seed=12)
    assert other.seed == 12 and est.seed == 11
    assert other.get_settings() == {**est.get_settings(), "seed": 12}
    with pytest.raises(ValueError, match="no setting"):
        est.clone(bogus=1)
    with pytest.raises(ValueError, match=f"estimator '{name}' has no setting"):
        make_estimator(name, bogus=1)


def test_settings_refuse_kwargs_collected_through_the_hierarchy() -> None:
    with pytest.raises(TypeError, match="explicit keyword arguments"):

        class Loose(ope.IPS):
            def __init__(self, extra: float = 1.0, **kw: object) -> None:
                super().__init__(**kw)  # type: ignore[arg-type]
                self.extra = extra


@pytest.mark.parametrize(
    "cls", [ope.RidgeRewardModel, ope.LogisticRewardModel, ope.PooledLogisticRewardModel]
)
def test_reward_models_share_the_settings_mechanism(cls: type) -> None:
    """``clone`` is an unfitted copy with the same settings; a fitted attribute read before
    ``fit`` is one line naming the model and the missing call (``NotFittedError``, which is
    also an ``AttributeError``: ``hasattr`` stays False)."""
    from bandits.errors import NotFittedError

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    a = rng.integers(0, 3, 200)
    r = (rng.random(200) < 0.3).astype(float)
    model = cls()
    assert not hasattr(model, "coef_")
    with pytest.raises(NotFittedError, match=rf"^{cls.__name__} is not fitted: call fit\("):
        model.coef_  # noqa: B018
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(x)
    model.fit(x, a, r, 3)
    copy = model.clone()
    assert copy.get_settings().keys() == model.get_settings().keys()
    assert repr(copy) == repr(model) and not hasattr(copy, "coef_")
    np.testing.assert_array_equal(copy.fit(x, a, r, 3).predict(x), model.predict(x))
