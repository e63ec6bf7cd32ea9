"""The synthetic audience as a day-by-day environment with a known truth.

Time runs in days. Each day ``impressions_per_day`` impression opportunities are drawn
(who, channel, hour, weather, browsing history), in timestamp order. User state — decayed
exposure counts (fatigue) and unsubscribes — is read at the start of the day and updated at
its end, so the expected reward of every variant in every round is exact and known before
the policy acts. Unsubscribed users are still drawn (their opportunities are lost: no message,
reward 0), which keeps the random stream identical across policies: with the same seed, every
policy faces the same users, contexts and potential outcomes (common random numbers).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from bandits.features import CategoricalFeature, FeatureSchema, NumericFeature
from bandits.simulate.catalog import Catalog, catalog_from_records, default_catalog
from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.response import Impressions, Truth, truth
from bandits.simulate.vocab import (
    CATEGORIES,
    CHANNELS,
    DAYPARTS,
    DEVICES,
    HOUR_TO_DAYPART,
    REGIONS,
    SEGMENTS,
    WEATHER,
    WEEKDAYS,
)
from bandits.simulate.world import Population, WorldParams, draw_population, draw_world

START_DATE = dt.datetime(2026, 1, 5)  # a Monday

#: Observable context columns of the synthetic audience and their vocabularies.
CONTEXT_ENUMS: dict[str, tuple[str, ...]] = {
    "segment": SEGMENTS,
    "preferred_category": CATEGORIES,
    "device": DEVICES,
    "region": REGIONS,
    "weather": WEATHER,
    "daypart": DAYPARTS,
    "weekday": WEEKDAYS,
    "channel": CHANNELS,
    "last_viewed_category": CATEGORIES,
}
CONTEXT_NUMERIC: tuple[str, ...] = (
    "tenure_days",
    "recency_days",
    "frequency",
    "hour",
    "days_since_view",
)


def default_feature_schema() -> FeatureSchema:
    """Features of the synthetic audience's context: one-hot categoricals, log-scaled counts."""
    return FeatureSchema(
        categorical=tuple(CategoricalFeature(k, v) for k, v in CONTEXT_ENUMS.items()),
        numeric=(
            NumericFeature("tenure_days", center=5.5, scale=1.5, log=True),
            NumericFeature("recency_days", center=3.0, scale=1.5, log=True),
            NumericFeature("frequency", center=3.0, scale=3.0),
            NumericFeature("days_since_view", center=1.5, scale=1.2, log=True),
        ),
    )


@dataclass(frozen=True)
class Day:
    """One day of impression opportunities, restricted to reachable (subscribed) users.

    ``frame`` holds the observable context (``n`` rows, timestamp order); ``truth`` the exact
    response probabilities ``(n, K)``; ``potential_reward (n, K)`` and ``potential_unsub (n, K)``
    the outcome every variant *would* get, drawn with shared uniforms per round (so comparing
    policies on the same day is paired). ``n_unreachable`` opportunities were lost to earlier
    unsubscribes; ``slot (n,)`` is each reachable round's position among the day's
    ``n_opportunities`` (its global round index is ``first_round + slot``).
    """

    index: int
    first_round: int
    frame: pl.DataFrame
    user: np.ndarray
    truth: Truth
    potential_reward: np.ndarray
    potential_unsub: np.ndarray
    n_opportunities: int
    n_unreachable: int
    slot: np.ndarray


class Environment:
    """A synthetic audience with state. ``seed`` drives everything (world, users, days)."""

    def __init__(self, settings: AudienceSettings, seed: int | np.random.SeedSequence) -> None:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        world_ss, pop_ss, days_ss, key_ss = ss.spawn(4)
        self.settings = settings
        knobs = settings.catalog
        self.catalog: Catalog = (
            catalog_from_records(knobs.variants)
            if knobs.variants is not None
            else default_catalog(knobs.n_variants, knobs.n_retargeting)
        )
        self.world: WorldParams = draw_world(settings, np.random.default_rng(world_ss))
        self.population: Population = draw_population(settings, np.random.default_rng(pop_ss))
        self._rng = np.random.default_rng(days_ss)
        # pseudonymous user keys: a seeded permutation, so logs never carry raw ids
        self.user_keys = np.random.default_rng(key_ss).permutation(self.population.n_users)
        n, k = self.population.n_users, self.catalog.n_variants
        self.exposure = np.zeros((n, k))
        self.unsubscribed = np.zeros(n, dtype=bool)
        self.taste = self.population.taste.copy()
        self.weather_cat = self.world.weather_cat.copy()
        self.day = 0
        self.rounds_done = 0
        self._activity_p = self.population.activity / self.population.activity.sum()
        self._focus = 3.0 * self.population.settled
        self.last_view_cat = self._browse_choice()
        gap = self._rng.geometric(self.population.browse_rate)
        self.last_view_day = -np.minimum(gap, 60).astype(np.int64)

    @property
    def n_variants(self) -> int:
        return self.catalog.n_variants

    def _browse_choice(self) -> np.ndarray:
        """Category each user would browse now: Gumbel-max over ``focus * taste``.

        The Gumbel(0, 1) noise is ``-log(-log(1 - U))`` with ``U = rng.random()``: the numbers
        ``Generator.gumbel`` draws from the same stream (it loops per element; this runs as
        whole-array operations, ~30% faster). Only a draw of exactly ``U = 0`` (probability
        2⁻⁵³), which ``gumbel`` would redraw, is kept here as +inf."""
        g = self._rng.random(self.taste.shape)
        np.subtract(1.0, g, out=g)
        np.log(g, out=g)
        np.negative(g, out=g)
        np.log(g, out=g)
        np.negative(g, out=g)
        g += self._focus[:, None] * self.taste
        return g.argmax(axis=1)

    def _draw_impressions(self, n: int, rng: np.random.Generator) -> tuple[Impressions, np.ndarray]:
        """Draw ``n`` impressions in timestamp order; also returns seconds into the day."""
        pop = self.population
        user = rng.choice(pop.n_users, size=n, p=self._activity_p)
        channel_p = self.world.channel_p[pop.device[user]]
        channel = (rng.random(n)[:, None] > channel_p.cumsum(axis=1)).sum(axis=1)
        channel = np.minimum(channel, len(CHANNELS) - 1)
        seconds = rng.choice(24, size=n, p=self.world.hour_p) * 3600 + rng.integers(0, 3600, n)
        order = np.argsort(seconds, kind="stable")
        user, channel, seconds = user[order], channel[order], seconds[order]
        region_weather = (
            rng.random(len(REGIONS))[:, None] > self.world.weather_p.cumsum(axis=1)
        ).sum(axis=1)
        region_weather = np.minimum(region_weather, len(WEATHER) - 1)
        hour = seconds // 3600
        return Impressions(
            user=user,
            weather=region_weather[pop.region[user]],
            hour=hour,
            daypart=np.asarray(HOUR_TO_DAYPART)[hour],
            weekday=np.full(n, self.day % 7),
            channel=channel,
            last_viewed_category=self.last_view_cat[user],
            days_since_view=self.day - self.last_view_day[user],
        ), seconds

    def next_day(self, n: int) -> Day:
        """Draw the next day's ``n`` impression opportunities (user state is read, not
        changed: call :meth:`commit` with the day's decisions to advance)."""
        pop = self.population
        # browsing happens before the day's messages
        browsed = self._rng.random(pop.n_users) < pop.browse_rate
        choice = self._browse_choice()
        self.last_view_cat = np.where(browsed, choice, self.last_view_cat)
        self.last_view_day = np.where(browsed, self.day, self.last_view_day)
        return self._make_day(n, self._rng)

    def evaluation_day(self, n: int, seed: int | np.random.SeedSequence) -> Day:
        """``n`` fresh impressions drawn from an independent stream with today's state, for
        measuring a policy's true value without touching the simulation's random stream."""
        return self._make_day(n, np.random.default_rng(seed))

    def _make_day(self, n: int, rng: np.random.Generator) -> Day:
        pop = self.population
        imp, seconds = self._draw_impressions(n, rng)
        u_click, u_unsub, u_conv = rng.random(n), rng.random(n), rng.random(n)
        reachable = ~self.unsubscribed[imp.user]
        keep = np.flatnonzero(reachable)
        imp = Impressions(**{f: getattr(imp, f)[keep] for f in imp.__dataclass_fields__})
        t = truth(
            imp,
            pop,
            self.world_now(),
            self.catalog,
            self.settings.response,
            self.exposure[imp.user],
            self.taste,
        )
        unsub = u_unsub[keep, None] < t.p_unsubscribe
        outcome = (u_click[keep, None] < t.p_click) & ~unsub & (u_conv[keep, None] < t.p_convert)
        return Day(
            index=self.day,
            first_round=self.rounds_done,
            frame=self._frame(imp, seconds[keep]),
            user=imp.user,
            truth=t,
            potential_reward=outcome * t.amount,
            potential_unsub=unsub,
            n_opportunities=n,
            n_unreachable=n - keep.size,
            slot=keep,
        )

    def world_now(self) -> WorldParams:
        """World parameters as of today (context effects may drift)."""
        if self.settings.drift.context_sd_per_day == 0:
            return self.world
        from dataclasses import replace

        return replace(self.world, weather_cat=self.weather_cat)

    def commit(self, day: Day, actions: np.ndarray) -> np.ndarray:
        """Apply the day's decisions: exposures, unsubscribes, drift; advance to the next day.

        Args:
            actions: ``(n,)`` chosen variant per reachable round of ``day``.

        Returns:
            ``(n,)`` bool, whether each round's user unsubscribed.
        """
        rows = np.arange(actions.shape[0])
        unsub = day.potential_unsub[rows, actions]
        gamma = np.exp(-1.0 / self.settings.response.fatigue_memory_days)
        self.exposure *= gamma
        np.add.at(self.exposure, (day.user, actions), 1.0)
        self.unsubscribed[day.user[unsub]] = True
        drift = self.settings.drift
        if drift.taste_sd_per_day > 0:
            self.taste += drift.taste_sd_per_day * self._rng.standard_normal(self.taste.shape)
        if drift.context_sd_per_day > 0:
            self.weather_cat += drift.context_sd_per_day * self._rng.standard_normal(
                self.weather_cat.shape
            )
        self.day += 1
        self.rounds_done += day.n_opportunities
        return unsub

    def _frame(self, imp: Impressions, seconds: np.ndarray) -> pl.DataFrame:
        pop = self.population
        u = imp.user

        def enum(name: str, codes: np.ndarray) -> pl.Series:
            return enum_series(name, codes, CONTEXT_ENUMS[name])

        base = np.datetime64(START_DATE + dt.timedelta(days=self.day), "s")
        return pl.DataFrame(
            [
                pl.Series(
                    "timestamp", (base + seconds.astype("timedelta64[s]")).astype("datetime64[ms]")
                ),
                pl.Series("user_key", self.user_keys[u].astype(np.int64)),
                enum("segment", pop.segment[u]),
                pl.Series("tenure_days", pop.tenure_days[u] + self.day),
                pl.Series("recency_days", pop.recency_days[u]),
                pl.Series("frequency", pop.frequency[u]),
                enum("preferred_category", pop.preferred_category[u]),
                enum("device", pop.device[u]),
                enum("region", pop.region[u]),
                enum("weather", imp.weather),
                pl.Series("hour", imp.hour.astype(np.int64)),
                enum("daypart", imp.daypart),
                enum("weekday", imp.weekday),
                enum("channel", imp.channel),
                enum("last_viewed_category", imp.last_viewed_category),
                pl.Series("days_since_view", imp.days_since_view.astype(np.int64)),
            ]
        )


def enum_series(name: str, codes: np.ndarray, levels: tuple[str, ...]) -> pl.Series:
    """A polars Enum series from integer ``codes`` into ``levels`` (no per-row Python): a
    gather from the levels as an Enum series, so no string is built or cast per row."""
    return _enum_levels(levels).gather(codes).alias(name)


@functools.lru_cache(maxsize=64)
def _enum_levels(levels: tuple[str, ...]) -> pl.Series:
    return pl.Series("levels", levels, dtype=pl.Enum(list(levels)))
