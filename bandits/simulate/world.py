"""The hidden parameters of the synthetic world and its population of users.

Effect tables start from a structured base (rain favours home goods, bargain hunters like
discounts, ...) plus seeded noise of scale ``world_noise``, so stories are readable and each
seed is a different but similar world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.vocab import (
    CATEGORIES,
    CHANNELS,
    DAYPARTS,
    DEVICES,
    REGIONS,
    SEGMENTS,
    TONES,
    WEATHER,
    WEEKDAYS,
)

C, S, T = len(CATEGORIES), len(SEGMENTS), len(TONES)

# rows: sunny, cloudy, rain, snow; columns: CATEGORIES
_WEATHER_CAT = np.array(
    [
        [0.5, -0.2, -0.3, 0.2, 0.7, -0.1],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [-0.4, 0.4, 0.5, 0.0, -0.6, 0.3],
        [0.3, 0.3, 0.4, -0.2, -0.4, 0.5],
    ]
)
# rows: morning, afternoon, evening, night
_DAYPART_CAT = np.array(
    [
        [0.0, -0.2, 0.0, 0.0, 0.2, 0.4],
        [0.2, 0.0, 0.0, 0.1, 0.0, 0.0],
        [0.0, 0.3, 0.3, 0.2, 0.0, 0.0],
        [0.0, 0.2, 0.0, 0.0, -0.2, -0.4],
    ]
)
# rows: email, push, sms, web; columns: TONES
_CHANNEL_TONE = np.array([[0.2, -0.2, 0.3], [0.0, 0.3, -0.3], [-0.1, 0.4, -0.5], [0.0, 0.0, 0.2]])
# rows: DAYPARTS; columns: CHANNELS (base rate, the same for every variant)
_DAYPART_CHANNEL = np.array(
    [[0.2, 0.0, 0.0, 0.0], [0.0, 0.0, 0.1, 0.1], [0.0, 0.3, 0.0, 0.2], [-0.3, -0.3, -0.4, 0.0]]
)
_WEEKDAY = np.array([-0.1, 0.0, 0.0, 0.0, 0.1, 0.2, 0.2])
# rows: SEGMENTS
_SEG_CAT = np.array(
    [
        [0.2, -0.1, 0.0, 0.0, -0.1, 0.4],
        [0.0, 0.4, 0.3, 0.0, 0.1, 0.0],
        [0.3, 0.0, -0.1, 0.4, 0.0, 0.0],
        [-0.3, -0.3, -0.3, -0.3, -0.3, -0.3],
    ]
)
_SEG_TONE = np.array([[0.0, 0.3, -0.2], [0.0, -0.1, 0.3], [0.3, -0.1, 0.0], [0.2, -0.2, 0.0]])
_SEG_DISC = np.array([0.35, 0.05, 0.15, 0.2])  # logit per 10 % of discount
_SEG_ACTIVITY = np.array([2.0, 3.0, 1.5, 0.5])
_SEG_SETTLED_BETA = np.array([[2.0, 3.0], [6.0, 2.0], [1.5, 4.0], [3.0, 3.0]])
_SEG_MOBILE = np.array([0.7, 0.5, 0.8, 0.5])
_SEG_UNSUB = np.array([0.0, -0.5, 0.4, 0.3])  # unsubscribe logit offset per segment
_WEATHER_P = np.array(
    [[0.45, 0.3, 0.2, 0.05], [0.6, 0.25, 0.12, 0.03], [0.35, 0.3, 0.3, 0.05], [0.3, 0.3, 0.2, 0.2]]
)  # rows: REGIONS
_CHANNEL_P = np.array([[0.25, 0.45, 0.1, 0.2], [0.5, 0.05, 0.05, 0.4]])  # rows: DEVICES
_HOUR_P = np.array(
    [
        0.2,
        0.1,
        0.1,
        0.1,
        0.1,
        0.3,
        1.0,
        2.5,
        3.0,
        2.5,
        2.0,
        2.0,
        3.0,
        2.5,
        2.0,
        2.0,
        2.5,
        3.0,
        4.0,
        4.5,
        4.5,
        3.5,
        2.0,
        0.8,
    ]
)


@dataclass(frozen=True)
class WorldParams:
    """Hidden effect tables (logit units) and context distributions.

    Shapes: ``seg_cat (S, C)``, ``seg_tone (S, T)``, ``seg_disc (S,)``, ``weather_cat (W, C)``,
    ``daypart_cat (D, C)``, ``channel_tone (Ch, T)``, ``daypart_channel (D, Ch)``,
    ``weekday (7,)``, ``seg_unsub (S,)``, ``weather_p (regions, W)``, ``channel_p (devices, Ch)``,
    ``hour_p (24,)``.
    """

    seg_cat: np.ndarray
    seg_tone: np.ndarray
    seg_disc: np.ndarray
    weather_cat: np.ndarray
    daypart_cat: np.ndarray
    channel_tone: np.ndarray
    daypart_channel: np.ndarray
    weekday: np.ndarray
    seg_unsub: np.ndarray
    weather_p: np.ndarray
    channel_p: np.ndarray
    hour_p: np.ndarray


def draw_world(settings: AudienceSettings, rng: np.random.Generator) -> WorldParams:
    """Structured base tables plus Gaussian noise of scale ``response.world_noise``."""
    sd = settings.response.world_noise

    def noisy(base: np.ndarray) -> np.ndarray:
        return base + sd * rng.standard_normal(base.shape)

    return WorldParams(
        seg_cat=noisy(_SEG_CAT),
        seg_tone=noisy(_SEG_TONE),
        seg_disc=_SEG_DISC + 0.3 * sd * rng.standard_normal(S),
        weather_cat=noisy(_WEATHER_CAT),
        daypart_cat=noisy(_DAYPART_CAT),
        channel_tone=noisy(_CHANNEL_TONE),
        daypart_channel=_DAYPART_CHANNEL.copy(),
        weekday=_WEEKDAY.copy(),
        seg_unsub=_SEG_UNSUB.copy(),
        weather_p=_WEATHER_P / _WEATHER_P.sum(axis=1, keepdims=True),
        channel_p=_CHANNEL_P / _CHANNEL_P.sum(axis=1, keepdims=True),
        hour_p=_HOUR_P / _HOUR_P.sum(),
    )


@dataclass(frozen=True)
class Population:
    """The users, as arrays of shape ``(n_users,)`` unless stated.

    Observable: ``segment``, ``tenure_days``, ``recency_days``, ``frequency`` (purchases per
    month), ``preferred_category`` (a noisy read of the latent taste), ``device``, ``region``.
    Latent: ``taste (n_users, C)`` standard normal, ``disc_taste`` (individual discount
    sensitivity, logit per 10 %), ``settled`` in (0, 1) (how settled preferences are),
    ``activity`` (relative chance of an impression), ``browse_rate`` (daily chance of browsing),
    ``basket`` (order value for revenue rewards).
    """

    segment: np.ndarray
    tenure_days: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    preferred_category: np.ndarray
    device: np.ndarray
    region: np.ndarray
    taste: np.ndarray
    disc_taste: np.ndarray
    settled: np.ndarray
    activity: np.ndarray
    browse_rate: np.ndarray
    basket: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.segment.shape[0])


def draw_population(settings: AudienceSettings, rng: np.random.Generator) -> Population:
    """Draw ``settings.n_users`` users; the observable ``preferred_category`` is
    ``argmax(rho * taste + sqrt(1 - rho**2) * noise)`` with ``rho = taste_observability``."""
    n = settings.n_users
    shares = np.asarray(settings.segment_shares, dtype=float)
    segment = rng.choice(S, size=n, p=shares / shares.sum())
    tenure_mu = np.array([5.5, 6.8, 3.0, 6.5])[segment]
    tenure = np.exp(tenure_mu + 0.5 * rng.standard_normal(n))
    recency_mu = np.array([3.0, 2.0, 2.2, 5.0])[segment]
    recency = np.minimum(np.exp(recency_mu + 0.6 * rng.standard_normal(n)), tenure)
    frequency = rng.gamma(2.0, np.array([1.5, 2.5, 0.7, 0.3])[segment])
    taste = rng.standard_normal((n, C))
    rho = settings.response.taste_observability
    read = rho * taste + np.sqrt(1.0 - rho**2) * rng.standard_normal((n, C))
    preferred = read.argmax(axis=1)
    device = (rng.random(n) >= _SEG_MOBILE[segment]).astype(np.int64)  # 0 mobile, 1 desktop
    region = rng.integers(0, len(REGIONS), size=n)
    ab = _SEG_SETTLED_BETA[segment]
    settled = rng.beta(ab[:, 0], ab[:, 1])
    activity = _SEG_ACTIVITY[segment] * rng.lognormal(0.0, 0.5, n)
    browse_rate = np.clip(0.08 * activity, 0.01, 0.9)
    basket = rng.lognormal(np.log(60.0), 0.5, n)
    disc_taste = 0.15 * rng.standard_normal(n)
    return Population(
        segment=segment.astype(np.int64),
        tenure_days=np.round(tenure).astype(np.int64),
        recency_days=np.round(recency).astype(np.int64),
        frequency=np.round(frequency, 2),
        preferred_category=preferred.astype(np.int64),
        device=device,
        region=region.astype(np.int64),
        taste=taste,
        disc_taste=disc_taste,
        settled=settled,
        activity=activity,
        browse_rate=browse_rate,
        basket=basket,
    )


__all__ = [
    "CHANNELS",
    "DAYPARTS",
    "DEVICES",
    "WEATHER",
    "WEEKDAYS",
    "Population",
    "WorldParams",
    "draw_population",
    "draw_world",
]
