"""The response model: the exact expected reward of every variant for every impression.

All functions are vectorised over a batch of ``n`` impressions and ``K`` variants. The
formulas are documented on :class:`bandits.simulate.knobs.ResponseKnobs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits.simulate.catalog import Catalog
from bandits.simulate.knobs import ResponseKnobs
from bandits.simulate.world import Population, WorldParams


@dataclass(frozen=True)
class Impressions:
    """Who is addressed and in which context: integer code arrays of shape ``(n,)``."""

    user: np.ndarray
    weather: np.ndarray
    hour: np.ndarray
    daypart: np.ndarray
    weekday: np.ndarray
    channel: np.ndarray
    last_viewed_category: np.ndarray
    days_since_view: np.ndarray

    def __len__(self) -> int:
        return int(self.user.shape[0])


@dataclass(frozen=True)
class Truth:
    """Exact per-impression, per-variant probabilities, each of shape ``(n, K)``.

    The realised reward is ``1[click] * 1[not unsubscribed] * 1[convert] * amount`` with
    independent draws, so ``expected_reward = p_click * (1 - p_unsubscribe) * p_convert * amount``.
    For click rewards ``p_convert = amount = 1``; for conversions ``amount = 1``; for revenue
    ``amount = basket * (1 - discount/100)``. An unsubscribing user does not click.
    """

    p_click: np.ndarray
    p_unsubscribe: np.ndarray
    p_convert: np.ndarray
    amount: np.ndarray
    expected_reward: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def effective_category(catalog: Catalog, last_viewed_category: np.ndarray) -> np.ndarray:
    """Category of each variant for each impression, shape ``(n, K)``: the catalog category,
    or the impression's last-viewed category for dynamic (retargeting) variants."""
    cat = catalog.category_code[None, :]
    return np.where(cat < 0, last_viewed_category[:, None], cat)


def truth(
    imp: Impressions,
    pop: Population,
    world: WorldParams,
    catalog: Catalog,
    knobs: ResponseKnobs,
    exposure: np.ndarray,
    taste: np.ndarray | None = None,
) -> Truth:
    """Exact response probabilities for a batch.

    Args:
        imp: the batch of ``n`` impressions.
        exposure: ``(n, K)`` decayed count of earlier exposures of each user to each variant.
        taste: ``(n_users, C)`` current latent taste (after drift); defaults to ``pop.taste``.
    """
    taste = pop.taste if taste is None else taste
    u = imp.user
    seg = pop.segment[u]
    cat = effective_category(catalog, imp.last_viewed_category)
    tone = catalog.tone_code[None, :]
    disc10 = catalog.discount[None, :] / 10.0

    eta = np.full(cat.shape, knobs.base_logit)
    eta += knobs.segment_weight * (
        world.seg_cat[seg[:, None], cat]
        + world.seg_tone[seg[:, None], tone]
        + world.seg_disc[seg][:, None] * disc10
    )
    eta += knobs.taste_weight * (taste[u[:, None], cat] + pop.disc_taste[u][:, None] * disc10)
    ctx_base = world.daypart_channel[imp.daypart, imp.channel] + world.weekday[imp.weekday]
    eta += knobs.context_weight * (
        world.weather_cat[imp.weather[:, None], cat]
        + world.daypart_cat[imp.daypart[:, None], cat]
        + world.channel_tone[imp.channel[:, None], tone]
        + ctx_base[:, None]
    )
    eta -= knobs.channel_mismatch_penalty * (~catalog.suits[:, imp.channel].T)
    decay = np.exp2(-imp.days_since_view / knobs.retargeting_half_life_days)
    lift = knobs.retargeting_scale * (pop.settled[u] - knobs.retargeting_settled_threshold)
    eta += (knobs.retargeting_weight * decay * lift)[:, None] * catalog.mentions_last_viewed[
        None, :
    ]
    log_exposure = np.log1p(exposure)
    eta -= knobs.fatigue_weight * log_exposure
    p_click = _sigmoid(eta)

    unsub_logit = (
        knobs.unsubscribe_base_logit
        + world.seg_unsub[seg][:, None]
        + knobs.creepiness_weight
        * (
            knobs.creepiness_per_dim * catalog.personal_dims[None, :]
            + knobs.repetition_unsubscribe * log_exposure
        )
    )
    p_unsub = _sigmoid(unsub_logit)

    ones = np.ones_like(p_click)
    p_convert, amount = ones, ones
    if knobs.reward != "click":
        p_convert = _sigmoid(
            -1.0 + world.seg_disc[seg][:, None] * disc10 + 0.3 * taste[u[:, None], cat]
        )
    if knobs.reward == "revenue":
        amount = pop.basket[u][:, None] * (1.0 - catalog.discount[None, :] / 100.0)
    return Truth(
        p_click=p_click,
        p_unsubscribe=p_unsub,
        p_convert=p_convert,
        amount=amount,
        expected_reward=p_click * (1.0 - p_unsub) * p_convert * amount,
    )
