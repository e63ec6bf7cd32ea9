"""Named decision-log scenarios: simulated logs shaped like the ones teams really have.

Each scenario is a function ``(n_rows, seed) -> ScenarioLog``. The log is simulated on the
synthetic audience, loaded with :func:`bandits.data.load_log` (with its catalog and
:func:`~bandits.simulate.default_feature_schema`) and returned as ``LoggedData`` together with
the catalog frame: the caller needs to know nothing about the simulator. The log keeps the
simulator's ground truth (``true_expected_reward``), so a target policy's exact value on it
is ``mean_i sum_k pi[i, k] q*[i, k]`` (:func:`bandits.offline.evaluate.true_q`).

Scenarios (:data:`SCENARIOS`):

* ``uniform`` -- the 12 default variants, uniform logging (propensity 1/12): a clean A/B/n
  test.
* ``epsilon_greedy`` -- the ``retargeting`` rule with 30 % uniform exploration.
* ``deterministic`` -- the ``retargeting`` rule with no exploration: a rule engine, propensity
  1.0 on every row (most targets are not identifiable from such a log).
* ``rare_clicks`` -- the shape of a public e-commerce log: 80 variants (6 categories x 3 tones
  x 4 discounts, plus 8 retargeting variants), a click rate of about 0.45 % and a logger whose
  propensities run from ~1e-4 to ~0.95+ (:class:`SkewedSoftmaxLogger`).

Everything is derived from ``seed`` through ``numpy.random.SeedSequence`` (no global random
state): the same ``(n_rows, seed)`` gives the same frame, bit for bit. Different seeds are
independent worlds (effect tables, users) and days; scenarios sharing a seed share the world.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bandits.data import load_log
from bandits.data.contract import LoggedData
from bandits.errors import ConfigError
from bandits.policies import make_policy
from bandits.policies.base import Contexts, Policy, ProblemSpec
from bandits.simulate.catalog import DYNAMIC_CATEGORY, catalog_from_records
from bandits.simulate.environment import Environment, default_feature_schema
from bandits.simulate.knobs import AudienceSettings, CatalogKnobs
from bandits.simulate.online import run_online
from bandits.simulate.vocab import CATEGORIES, TONES

__all__ = [
    "RARE_CLICK_RATE",
    "SCENARIOS",
    "ScenarioLog",
    "SkewedSoftmaxLogger",
    "deterministic",
    "epsilon_greedy",
    "make_scenario",
    "rare_click_catalog",
    "rare_clicks",
    "uniform",
]

#: Expected click rate of the ``rare_clicks`` logger (the audience is calibrated to it).
RARE_CLICK_RATE = 0.0045
#: Base click logit the ``rare_clicks`` calibration starts from.
_RARE_BASE_LOGIT = -7.0
#: Entropy of the ``rare_clicks`` logger's scoring weights: the logger is one fixed ranker
#: (the same on every seed, as a team's production model is), the world and days vary.
_RANKER_ENTROPY = 0x5EED_10C6


@dataclass(frozen=True)
class ScenarioLog:
    """One simulated log of a scenario.

    Attributes:
        name: the scenario's name (a key of :data:`SCENARIOS`).
        seed: the seed it was drawn with.
        data: the loaded log (``LoggedData``: ``n_rows`` rows, ``logging_probs`` included,
            ground truth in ``data.frame["true_expected_reward"]``).
        catalog: the catalog frame (one row per variant, ``variant_id`` first).
        logger: a one-line description of the logging policy.
        settings: scenario-specific numbers (e.g. the calibrated base click logit).
    """

    name: str
    seed: int
    data: LoggedData
    catalog: pl.DataFrame
    logger: str
    settings: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of logged rows."""
        return self.data.n

    @property
    def click_rate(self) -> float:
        """Realised click rate (mean logged reward)."""
        return float(self.data.reward.mean())

    @property
    def expected_click_rate(self) -> float:
        """The logger's exact expected click rate on these rows (mean ``expected_reward``)."""
        return float(self.data.frame["expected_reward"].to_numpy().mean())

    @property
    def propensity_range(self) -> tuple[float, float]:
        """``(min, max)`` of the logged propensities."""
        p = self.data.propensity
        return float(p.min()), float(p.max())

    @property
    def logging_share(self) -> np.ndarray:
        """``(K,)`` mean logging probability of each variant over the rows (catalog order)."""
        if self.data.logging_probs is None:  # the simulator always logs action_probs
            return np.bincount(self.data.action, minlength=self.data.n_actions) / self.data.n
        return self.data.logging_probs.mean(axis=0)

    def describe(self) -> dict[str, Any]:
        """Summary: size, click rates (realised and expected) and the propensity range."""
        p_min, p_max = self.propensity_range
        share = self.logging_share
        return {
            "scenario": self.name,
            "seed": self.seed,
            "rows": self.n_rows,
            "variants": self.data.n_actions,
            "logger": self.logger,
            "click_rate": self.click_rate,
            "expected_click_rate": self.expected_click_rate,
            "clicks": int(self.data.reward.sum()),
            "propensity_min": p_min,
            "propensity_median": float(np.median(self.data.propensity)),
            "propensity_max": p_max,
            "logging_share_min": float(share.min()),
            "logging_share_max": float(share.max()),
            **{k: float(v) for k, v in self.settings.items()},
        }


# --------------------------------------------------------------------------- simulation
def _simulate(
    name: str,
    n_rows: int,
    seed: int,
    settings: AudienceSettings,
    logger: Policy,
    description: str,
    extra: Mapping[str, float] | None = None,
) -> ScenarioLog:
    """Run ``logger`` on a fresh audience until ``n_rows`` messages are logged; load the log.

    Rounds lost to unsubscribed users log no row, so a few more opportunities than rows are
    simulated and the log is cut at ``n_rows`` (the number of rounds depends only on
    ``n_rows``, so the cut log is a deterministic function of ``(n_rows, seed)``).
    """
    if int(n_rows) < 1:
        raise ConfigError(f"n_rows must be ≥ 1, got {n_rows}")
    n_rows = int(n_rows)
    rounds = n_rows + max(100, n_rows // 50)
    while True:
        env_ss, run_ss = _seeds(seed)
        env = Environment(settings, env_ss)
        res = run_online(env, logger, rounds, run_ss, eval_rounds=0)
        if res.log.height >= n_rows:
            break
        rounds = int(rounds * 1.5) + 100
    catalog = env.catalog.to_frame()
    data = load_log(
        res.log.head(n_rows),
        catalog=catalog,
        features=default_feature_schema(),
    )
    return ScenarioLog(name, int(seed), data, catalog, description, dict(extra or {}))


def _seeds(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """Fresh (environment, run) seed sequences for ``seed`` (fresh objects: spawning from a
    SeedSequence changes it, so every call starts from the same state)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence([int(seed), 0]), np.random.SeedSequence([int(seed), 1])


# --------------------------------------------------------------------------- scenarios
def uniform(n_rows: int, seed: int) -> ScenarioLog:
    """The 12 default variants logged uniformly at random (propensity 1/12 on every row)."""
    return _simulate(
        "uniform",
        n_rows,
        seed,
        AudienceSettings(),
        make_policy("uniform"),
        "uniform random over the 12 default variants",
    )


def epsilon_greedy(n_rows: int, seed: int) -> ScenarioLog:
    """The ``retargeting`` rule with ``epsilon = 0.3`` over the 12 default variants:
    propensity ``0.7 + 0.3/12`` for the rule's choice, ``0.3/12`` for every other variant."""
    return _simulate(
        "epsilon_greedy",
        n_rows,
        seed,
        AudienceSettings(),
        make_policy("retargeting", {"epsilon": 0.3}),
        "retargeting rule, 30% uniform exploration",
    )


def deterministic(n_rows: int, seed: int) -> ScenarioLog:
    """The ``retargeting`` rule with no exploration (a rule engine): propensity 1.0 on
    every row; only targets that agree with the rule are supported by the log."""
    return _simulate(
        "deterministic",
        n_rows,
        seed,
        AudienceSettings(),
        make_policy("retargeting", {"epsilon": 0.0}),
        "retargeting rule, no exploration",
    )


def rare_click_catalog() -> pl.DataFrame:
    """80 variants: 8 retargeting variants (friendly / urgent x 0/10/20/30 % off, showing
    the last-viewed item) and 72 generic ones (every category x tone x 0/10/20/30 % off).
    Channel suitability follows the default tone rule (SMS only for "urgent" copy, no
    "premium" copy by SMS or push)."""
    return catalog_from_records(_rare_click_records()).to_frame()


def _rare_click_records() -> list[dict[str, Any]]:
    discounts = (0, 10, 20, 30)

    def vid(stem: str, disc: int) -> str:
        return stem + (f"_{disc}off" if disc else "")

    records: list[dict[str, Any]] = [
        {
            "variant_id": vid(f"retarget_{tone}", disc),
            "category": DYNAMIC_CATEGORY,
            "tone": tone,
            "discount": disc,
            "mentions_last_viewed": True,
            "personal_dims": 2,
        }
        for tone in ("friendly", "urgent")
        for disc in discounts
    ]
    records += [
        {
            "variant_id": vid(f"{cat}_{tone}", disc),
            "category": cat,
            "tone": tone,
            "discount": disc,
            "mentions_last_viewed": False,
            "personal_dims": 0,
        }
        for cat in CATEGORIES
        for tone in TONES
        for disc in discounts
    ]
    return records


class SkewedSoftmaxLogger(Policy):
    """Scenario-private logger of ``rare_clicks`` (not in the policy registry): a softmax over
    a fixed random linear score of the context features, mixed with a small uniform floor.

    ``probs = (1 - epsilon) * softmax((X W + b) / temperature) + epsilon / K`` with
    ``X (n, d)`` the context features, ``W (d, K)`` standard normal and ``b (K,)`` normal with
    standard deviation ``bias_scale``, both drawn once from ``weight_seed`` (the same ranker
    on every log). ``epsilon`` is the floor: every variant has probability at least
    ``epsilon / K`` (1e-4 for the defaults and 80 variants). It does not learn, so the
    simulator samples every decision from exactly :meth:`action_probs`.
    """

    name: ClassVar[str] = "skewed_softmax"
    learns: ClassVar[bool] = False

    def __init__(
        self,
        temperature: float = 1.5,
        bias_scale: float = 1.5,
        weight_seed: int = _RANKER_ENTROPY,
        *,
        epsilon: float = 0.008,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.temperature = temperature
        self.bias_scale = bias_scale
        self.weight_seed = weight_seed

    def _check_settings(self) -> None:
        super()._check_settings()
        if not float(self.temperature) > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")

    def _reset(self, spec: ProblemSpec) -> None:
        rng = np.random.default_rng(np.random.SeedSequence(int(self.weight_seed)))
        self.weights_ = rng.standard_normal((spec.features.dim, spec.n_actions))
        self.bias_ = float(self.bias_scale) * rng.standard_normal(spec.n_actions)

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        z = (ctx.X @ self.weights_ + self.bias_) / float(self.temperature)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


def rare_clicks(n_rows: int, seed: int) -> ScenarioLog:
    """80 variants, ~0.45 % clicks, skewed propensities (~1e-4 to ~0.95+).

    The audience's base click logit is calibrated per seed so that the logger's exact
    expected click rate on the logged rows is :data:`RARE_CLICK_RATE`: a pilot run at a base
    logit of -7 gives every row's expected reward; the shift ``delta`` solving
    ``mean_i sigmoid(logit(q_i) + delta) = RARE_CLICK_RATE`` is added to the base logit and
    the log is simulated again. The click logit is linear in the base logit, and contexts,
    decisions and unsubscribes do not depend on it, so the second run has the same rows and
    decisions with the shifted click probabilities (unsubscribes make the calibration
    approximate to well under 1 %).
    """
    records = tuple(_rare_click_records())

    def settings(base_logit: float) -> AudienceSettings:
        base = AudienceSettings()
        return dataclasses.replace(
            base,
            catalog=CatalogKnobs(variants=records),
            response=dataclasses.replace(base.response, base_logit=base_logit),
        )

    logger = SkewedSoftmaxLogger()
    description = (
        f"softmax of a fixed random linear score (temperature {logger.temperature}) "
        f"+ {logger.epsilon:g} uniform floor"
    )
    pilot = _simulate("rare_clicks", n_rows, seed, settings(_RARE_BASE_LOGIT), logger, description)
    q = np.clip(pilot.data.frame["expected_reward"].to_numpy(), 1e-12, 1 - 1e-12)
    base_logit = _RARE_BASE_LOGIT + _logit_shift(q, RARE_CLICK_RATE)
    return _simulate(
        "rare_clicks",
        n_rows,
        seed,
        settings(base_logit),
        logger,
        description,
        {"base_logit": base_logit},
    )


def _logit_shift(q: np.ndarray, target: float) -> float:
    """``delta`` with ``mean(sigmoid(logit(q) + delta)) = target`` (bisection; the mean is
    increasing in ``delta``)."""
    eta = np.log(q) - np.log1p(-q)
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        mean = float(np.mean(0.5 * (1.0 + np.tanh(0.5 * (eta + mid)))))
        lo, hi = (mid, hi) if mean < target else (lo, mid)
    return 0.5 * (lo + hi)


#: Scenario name -> ``(n_rows, seed) -> ScenarioLog``.
SCENARIOS: dict[str, Callable[[int, int], ScenarioLog]] = {
    "uniform": uniform,
    "epsilon_greedy": epsilon_greedy,
    "deterministic": deterministic,
    "rare_clicks": rare_clicks,
}


def make_scenario(name: str, n_rows: int, seed: int) -> ScenarioLog:
    """The log of scenario ``name`` (a key of :data:`SCENARIOS`) with ``n_rows`` rows."""
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})")
    return SCENARIOS[name](n_rows, seed)
