"""Off-policy value estimators for contextual bandits.

Notation (all arrays indexed by logged round ``i = 0..n-1`` and action ``k = 0..K-1``):

* ``r`` (n,) observed rewards, ``a`` (n,) logged actions, ``p`` (n,) logging propensity of the
  logged action, ``pi`` (n, K) target-policy probabilities, ``q`` (n, K) reward-model
  predictions;
* ``w_i = pi[i, a_i] / p_i`` (n,) importance weights, ``q_a[i] = q[i, a_i]`` (n,),
  ``dm_i = sum_k pi[i, k] q[i, k]`` (n,).

Each estimator maps the data to per-round ``(D, C, B)`` with value
``V = mean(D) + mean(C) / mean(B)``; intervals, merging and diagnostics are shared
(:mod:`bandits.ope.base`, :mod:`bandits.ope.estimate`).

References
----------
* Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning", ICML.
* Swaminathan & Joachims (2015), "The Self-Normalized Estimator for Counterfactual
  Learning", NeurIPS.
* Wang, Agarwal & Dudík (2017), "Optimal and Adaptive Off-policy Evaluation in Contextual
  Bandits", ICML.
* Su, Dimakopoulou, Krishnamurthy & Dudík (2020), "Doubly Robust Off-policy Evaluation with
  Shrinkage", ICML.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from bandits.errors import ConfigError
from bandits.ope.base import Columns, OffPolicyEstimator
from bandits.ope.registry import register_estimator
from bandits.ope.validation import LoggedData

__all__ = ["DM", "DR", "IPS", "SNDR", "SNIPS", "DRos", "SwitchDR"]


def _check_threshold(value: object, name: str, *, allow_none: bool, positive: bool) -> None:
    """``value`` must be a real number > 0 (``positive``) or >= 0, ``inf`` allowed."""
    if value is None and allow_none:
        return
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not math.isnan(float(value))
        and (float(value) > 0.0 if positive else float(value) >= 0.0)
    )
    if not ok:
        bound = "> 0" if positive else ">= 0"
        extra = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be a number {bound} (inf allowed){extra}, got {value!r}")


def _residual(data: LoggedData) -> NDArray[np.float64]:
    """``r_i - q[i, a_i]``, shape (n,)."""
    return data.residuals


@register_estimator("dm")
class DM(OffPolicyEstimator):
    """Direct method: plug-in of a reward model.

    ``V_DM = (1/n) sum_i sum_k pi[i, k] q[i, k]``  with ``pi, q`` of shape (n, K).

    Per-round term ``D_i = dm_i``; stderr = ``std(D, ddof=1) / sqrt(n)``. The interval only
    reflects sampling noise of the contexts, *not* the reward model's bias (DM is biased when
    ``q`` is misspecified). ``propensity`` is optional here and only feeds the weight
    diagnostics; ``reward`` and ``action`` are validated but not used in the value.
    """

    requires_reward_hat: ClassVar[bool] = True
    requires_propensity: ClassVar[bool] = False
    model_dependent: ClassVar[bool] = True

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        return (data.direct_method_terms, None, None), 0


@register_estimator("ips")
class IPS(OffPolicyEstimator):
    """Inverse propensity scoring (importance sampling), optionally with weight clipping.

    ``V_IPS = (1/n) sum_i min(w_i, clip) r_i``,  ``w_i = pi[i, a_i] / p_i``  (all (n,)).

    Unbiased when ``clip is None`` (no clipping) and the propensities are correct and positive
    wherever ``pi`` is; clipping trades bias (downwards for non-negative rewards) for variance.
    Per-round term ``D_i = min(w_i, clip) r_i``; stderr = ``std(D, ddof=1) / sqrt(n)``.
    Diagnostic ``clipped_fraction`` = share of rounds with ``w_i > clip``.

    Parameters
    ----------
    clip : float > 0 or None, default None
        Upper bound on the importance weight; ``None`` (or ``inf``) = no clipping.
    """

    flag_name: ClassVar[str | None] = "clipped_fraction"

    def __init__(
        self,
        clip: float | None = None,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)
        self.clip = clip

    def _check_params(self) -> None:
        super()._check_params()
        _check_threshold(self.clip, "clip", allow_none=True, positive=True)

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        w = data.importance_weights
        if self.clip is None or math.isinf(self.clip):
            return w
        return np.minimum(w, self.clip)

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        w = data.importance_weights
        if self.clip is None or math.isinf(self.clip):
            return (data.weighted_rewards, None, None), 0
        clipped = w > self.clip
        return (np.minimum(w, self.clip) * data.reward, None, None), int(np.count_nonzero(clipped))


@register_estimator("snips")
class SNIPS(OffPolicyEstimator):
    """Self-normalised IPS (Swaminathan & Joachims 2015).

    ``V_SNIPS = sum_i w_i r_i / sum_i w_i``,  ``w_i = pi[i, a_i] / p_i``  (all (n,)).

    Ratio form ``C_i = w_i r_i``, ``B_i = w_i``. Consistent, bias ``O(1/n)``, usually much lower
    variance than IPS and always inside the reward range. stderr by the delta method for a ratio
    of means: ``Var(V) ≈ (1/n) Var(C - V B) / mean(B)^2`` (sample variance, ddof = 1). If every
    ``w_i`` is 0 the value is 0 and the interval is ``(-inf, inf)``.
    """

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)

    self_normalised: ClassVar[bool] = True

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        return data.importance_weights

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        w = data.importance_weights
        return (None, data.weighted_rewards, w), 0


@register_estimator("dr")
class DR(OffPolicyEstimator):
    """Doubly robust estimator (Dudík, Langford & Li 2011).

    ``V_DR = (1/n) sum_i [ sum_k pi[i, k] q[i, k] + w_i (r_i - q[i, a_i]) ]``
    with ``pi, q`` (n, K), ``w, r`` (n,).

    Unbiased if either the propensities are correct (any ``q`` that does not depend on the
    logged outcome of the same round, e.g. cross-fitted) or ``q`` is the true expected reward.
    Per-round term ``D_i`` = the bracket; stderr = ``std(D, ddof=1) / sqrt(n)``.
    """

    requires_reward_hat: ClassVar[bool] = True

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        return data.importance_weights

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        return (data.doubly_robust_terms, None, None), 0


@register_estimator("sndr")
class SNDR(OffPolicyEstimator):
    """Self-normalised doubly robust estimator.

    ``V_SNDR = (1/n) sum_i sum_k pi[i, k] q[i, k]
    + sum_i w_i (r_i - q[i, a_i]) / sum_i w_i``  with ``pi, q`` (n, K), ``w, r`` (n,).

    The correction term of DR is self-normalised as in SNIPS (Swaminathan & Joachims 2015).
    Form ``D_i = dm_i``, ``C_i = w_i (r_i - q_a[i])``, ``B_i = w_i``; delta-method stderr with
    influence function ``psi_i = D_i + (C_i - R B_i) / mean(B)``, ``R = mean(C)/mean(B)``:
    ``Var(V) ≈ Var(psi) / n``. If every ``w_i`` is 0 the value is the DM part and the interval
    is ``(-inf, inf)``.
    """

    requires_reward_hat: ClassVar[bool] = True

    def __init__(
        self,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)

    self_normalised: ClassVar[bool] = True

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        return data.importance_weights

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        w = data.importance_weights
        return (data.direct_method_terms, data.weighted_residuals, w), 0


@register_estimator("switch_dr")
class SwitchDR(OffPolicyEstimator):
    """Switch doubly robust estimator (Wang, Agarwal & Dudík 2017, SWITCH-DR).

    Wang et al. use the (doubly robust) importance-sampling term for actions whose weight
    ``pi[i, k] / mu[i, k]`` is at most ``lambda_`` and the reward model alone for actions with a
    larger weight::

        V_i = sum_{k: w_ik <= lam} [pi_ik q_ik + 1[k = a_i] w_ik (r_i - q_ik)]
              + sum_{k: w_ik > lam} pi_ik q_ik

    The model terms of both groups add up to ``dm_i``, and only the logged action carries an
    importance term, so the estimator needs just the logged weight ``w_i = pi[i, a_i] / p_i``::

        V_SwitchDR = (1/n) sum_i [ sum_k pi[i, k] q[i, k]
                                   + 1[w_i <= lambda_] w_i (r_i - q[i, a_i]) ]

    (``pi, q`` (n, K); ``w, r`` (n,)). This is exactly SWITCH-DR; no full logging distribution
    is required. (The IPS-flavoured SWITCH of the same paper, which uses ``w_i r_i`` instead of
    the DR term and the model only for high-weight actions, does need ``mu[i, k]`` for every k
    and is not implemented.) ``lambda_ = inf`` gives DR, ``lambda_ = 0`` gives DM.
    Diagnostic ``switched_fraction`` = share of rounds with ``w_i > lambda_``.

    Parameters
    ----------
    lambda_ : float >= 0, default 10.0
        Weight threshold. There is no universal default; Wang et al. tune it by minimising an
        estimate of bias^2 + variance. 10 switches off rounds where the target policy is >10x
        more likely than the logger to take the logged action.
    """

    requires_reward_hat: ClassVar[bool] = True
    flag_name: ClassVar[str | None] = "switched_fraction"
    model_dependent: ClassVar[bool] = True

    def __init__(
        self,
        lambda_: float = 10.0,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)
        self.lambda_ = lambda_

    def _check_params(self) -> None:
        super()._check_params()
        _check_threshold(self.lambda_, "lambda_", allow_none=False, positive=False)

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        w = data.importance_weights
        return np.where(w <= self.lambda_, w, 0.0)

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        w = data.importance_weights
        keep = w <= self.lambda_
        correction = np.where(keep, data.weighted_residuals, 0.0)
        n_switched = data.n - int(np.count_nonzero(keep))
        return (data.direct_method_terms + correction, None, None), n_switched


@register_estimator("dros")
class DRos(OffPolicyEstimator):
    """Doubly robust with optimistic shrinkage (Su, Dimakopoulou, Krishnamurthy & Dudík 2020).

    Importance weights are shrunk to ``w~_i = lambda_ w_i / (w_i^2 + lambda_)`` and used in DR::

        V_DRos = (1/n) sum_i [ sum_k pi[i, k] q[i, k] + w~_i (r_i - q[i, a_i]) ]

    (``pi, q`` (n, K); ``w, w~, r`` (n,)). Su et al. derive ``w~`` by minimising a bound on the
    MSE under an optimistic assumption on the reward-model error; ``w~ <= w`` and
    ``w~ <= sqrt(lambda_) / 2`` (attained at ``w = sqrt(lambda_)``), so large weights are shrunk
    towards 0 (towards DM) rather than clipped. ``lambda_ = inf`` gives DR, ``lambda_ = 0``
    gives DM.

    Parameters
    ----------
    lambda_ : float >= 0, default 100.0
        Shrinkage strength (larger = less shrinkage). No universal default; Su et al. tune it
        by model selection. With 100: w = 1 -> 0.99, w = 3 -> 2.75, w = 10 -> 5 (the cap),
        w = 50 -> 1.92.
    """

    requires_reward_hat: ClassVar[bool] = True
    model_dependent: ClassVar[bool] = True

    def __init__(
        self,
        lambda_: float = 100.0,
        *,
        level: float = 0.95,
        interval: str = "bounded",
        n_bootstrap: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(level=level, interval=interval, n_bootstrap=n_bootstrap, seed=seed)
        self.lambda_ = lambda_

    def _check_params(self) -> None:
        super()._check_params()
        _check_threshold(self.lambda_, "lambda_", allow_none=False, positive=False)

    def shrunk_weights(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        """``lambda_ w / (w^2 + lambda_)`` elementwise, with the limits ``lambda_ = 0 -> 0`` and
        ``lambda_ = inf -> w``."""
        lam = float(self.lambda_)
        if lam == 0.0:
            return np.zeros_like(w)
        if math.isinf(lam):
            return w
        return lam * w / (w * w + lam)

    def _reward_weights(self, data: LoggedData) -> NDArray[np.float64]:
        return self.shrunk_weights(data.importance_weights)

    def _columns(self, data: LoggedData) -> tuple[Columns, int]:
        shrunk = self.shrunk_weights(data.importance_weights)
        return (data.direct_method_terms + shrunk * _residual(data), None, None), 0
