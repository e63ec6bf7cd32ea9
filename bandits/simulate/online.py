"""The online loop: a policy acts on the synthetic audience day by day and learns.

Per round we know the exact expected reward of every variant, so the policy's true value and
its (myopic) regret against the oracle — the variant with the highest expected reward given
the user's state at the start of the day — are exact, not estimated.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.features import FeatureSchema
from bandits.policies.base import (
    Contexts,
    Decisions,
    Policy,
    ProblemSpec,
    one_hot_argmax,
    sample_from,
)
from bandits.simulate.environment import Day, Environment, default_feature_schema

Z95 = 1.959963984540054


class Oracle:
    """Chooses the variant with the highest true expected reward (ties split). Only the
    simulator can run it; its myopic regret is zero by definition."""

    name = "oracle"
    needs_truth = True

    def __init__(self) -> None:
        self.rng_: np.random.Generator | None = None

    def reset(self, spec: ProblemSpec, seed: int | np.random.SeedSequence | None = None) -> Oracle:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.rng_ = np.random.default_rng(ss)
        return self

    def get_params(self) -> dict[str, Any]:
        return {}

    def play_with_truth(self, expected: np.ndarray) -> Decisions:
        assert self.rng_ is not None
        probs = one_hot_argmax(expected)
        actions, props = sample_from(probs, np.asarray(self.rng_.random(expected.shape[0])))
        return Decisions(actions, props, probs)


@dataclass
class OnlineResult:
    """Outcome of one online run.

    Per-round arrays have shape ``(rounds,)`` over *all* impression opportunities (rounds
    lost to unsubscribes count as sent=False with zero reward and zero regret):
    ``sent``, ``reward`` (realised), ``expected`` (true expected reward of the chosen
    variant), ``oracle`` (best expected reward), ``unsubscribed`` (realised) and
    ``expected_unsubscribe`` (the true probability that the chosen variant makes the user
    unsubscribe; 0 for lost rounds).
    ``log`` is the decision log (one row per message sent, see :func:`decision_log_schema`).
    """

    policy: str
    rounds: int
    sent: np.ndarray
    reward: np.ndarray
    expected: np.ndarray
    oracle: np.ndarray
    unsubscribed: np.ndarray
    log: pl.DataFrame
    final_policy_value: float
    final_oracle_value: float
    params: dict[str, Any] = field(default_factory=dict)
    expected_unsubscribe: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        """Final metrics; realised means carry a 95% CLT interval."""
        n = self.rounds
        sent = int(self.sent.sum())
        mean_r = float(self.reward.mean())
        se = float(self.reward.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        regret = float((self.oracle - self.expected).sum())
        unsubs = int(self.unsubscribed.sum())
        rate = unsubs / sent if sent else 0.0
        rate_se = float(np.sqrt(max(rate * (1 - rate), 0.0) / sent)) if sent else float("inf")
        return {
            "rounds": float(n),
            "messages_sent": float(sent),
            "lost_rounds": float(n - sent),
            "mean_reward": mean_r,
            "mean_reward_ci_low": mean_r - Z95 * se,
            "mean_reward_ci_high": mean_r + Z95 * se,
            "true_value": float(self.expected.mean()),
            "oracle_value": float(self.oracle.mean()),
            "regret": regret,
            "regret_per_round": regret / n,
            "unsubscribes": float(unsubs),
            "unsubscribe_rate": rate,
            "unsubscribe_rate_ci_low": max(rate - Z95 * rate_se, 0.0),
            "unsubscribe_rate_ci_high": rate + Z95 * rate_se,
            "final_policy_value": self.final_policy_value,
            "final_oracle_value": self.final_oracle_value,
        }

    def curves(self, every: int) -> pl.DataFrame:
        """Cumulative curves sampled every ``every`` rounds (and at the last round): columns
        ``step``, ``cumulative_reward``, ``mean_reward``, ``true_value``,
        ``cumulative_regret``, ``cumulative_unsubscribes``; one row per step."""
        return curve_frame(
            curve_steps(self.rounds, every),
            self.reward,
            self.expected,
            self.oracle,
            self.unsubscribed,
        )


def curve_steps(rounds: int, every: int) -> np.ndarray:
    """Steps (1-based round counts) at which curves are sampled: every ``every`` rounds and
    the last round."""
    if int(every) <= 0:
        raise ConfigError(f"curve step must be > 0, got {every}")
    return np.unique(np.append(np.arange(every, rounds + 1, every), rounds)).astype(np.int64)


def curve_frame(
    steps: np.ndarray,
    reward: np.ndarray,
    expected: np.ndarray,
    oracle: np.ndarray,
    unsubscribed: np.ndarray,
) -> pl.DataFrame:
    """Curve values at ``steps`` from per-round arrays covering at least rounds
    ``[0, steps.max())``: a prefix of the run gives bit-for-bit the values of the full run
    (cumulative sums are sequential), which is what lets curves stream while it runs."""
    return CurveSums().frame(steps, reward, expected, oracle, unsubscribed)


class CurveSums:
    """Running cumulative sums behind :func:`curve_frame`, for curves reported piece by piece
    while a run goes on: each call sums only the rounds added since the previous one.

    Each sum continues from its last value (``np.cumsum`` of ``[last, x_a, x_a+1, ...]``) and
    ``np.cumsum`` adds sequentially, so the values are bit-for-bit those of one
    :func:`curve_frame` call over the whole prefix, at O(new rounds) per call instead of
    O(rounds so far).
    """

    def __init__(self) -> None:
        self.upto = 0  # rounds [0, upto) are summed
        self.last = (0.0, 0.0, 0.0, 0)  # reward, expected, regret, unsubscribes at upto - 1

    def frame(
        self,
        steps: np.ndarray,
        reward: np.ndarray,
        expected: np.ndarray,
        oracle: np.ndarray,
        unsubscribed: np.ndarray,
    ) -> pl.DataFrame:
        """Curve rows at ``steps`` (increasing, each > the previous call's last step); the
        per-round arrays must cover rounds ``[0, steps.max())``."""
        n = int(steps.max()) if steps.size else self.upto
        a = self.upto
        if steps.size and int(steps.min()) <= a:
            raise ValueError(f"curve steps must be > {a} (already summed), got {steps.min()}")

        def run_on(last: float | int, x: np.ndarray) -> np.ndarray:
            return np.cumsum(np.concatenate(([last], x)))[1:]

        cum_reward = run_on(self.last[0], reward[a:n])
        cum_expected = run_on(self.last[1], expected[a:n])
        cum_regret = run_on(self.last[2], oracle[a:n] - expected[a:n])
        cum_unsub = run_on(self.last[3], unsubscribed[a:n].astype(np.int64))
        if n > a:
            self.last = (
                cum_reward[-1],
                cum_expected[-1],
                cum_regret[-1],
                int(cum_unsub[-1]),
            )
        self.upto = n
        idx = steps - 1 - a
        cum_reward, cum_expected = cum_reward[idx], cum_expected[idx]
        cum_regret, cum_unsub = cum_regret[idx], cum_unsub[idx]
        return pl.DataFrame(
            {
                "step": steps,
                "cumulative_reward": cum_reward,
                "mean_reward": cum_reward / steps,
                "true_value": cum_expected / steps,
                "cumulative_regret": cum_regret,
                "cumulative_unsubscribes": cum_unsub.astype(np.float64),
            }
        )


def problem_spec(env: Environment, features: FeatureSchema | None = None) -> ProblemSpec:
    """The :class:`ProblemSpec` of a synthetic audience."""
    return ProblemSpec(
        action_ids=env.catalog.variant_ids,
        catalog=env.catalog.to_frame(),
        features=features or default_feature_schema(),
    )


def run_online(
    env: Environment,
    policy: Policy | Oracle,
    rounds: int,
    seed: int | np.random.SeedSequence,
    *,
    features: FeatureSchema | None = None,
    eval_rounds: int = 5000,
    on_day: Callable[[int], None] | None = None,
    on_log: Callable[[pl.DataFrame], None] | None = None,
    on_curves: tuple[int, Callable[[pl.DataFrame], None]] | None = None,
    keep_log: bool = True,
) -> OnlineResult:
    """Run ``policy`` for ``rounds`` impression opportunities on ``env``.

    Args:
        env: a fresh environment (its seed fixes users, contexts and potential outcomes).
        policy: an unbound policy; it is reset here with ``seed``.
        rounds: number of impression opportunities (> 0).
        seed: the policy's seed (and the held-out evaluation stream's).
        eval_rounds: held-out impressions on which the final policy's true value is measured.
        on_day: progress callback, called with the number of rounds done after each day.
        on_log: called with each day's decision-log rows as soon as the day is done (e.g. to
            stream them to a file while the simulation goes on); ``result.log`` still holds
            every row unless ``keep_log`` is false.
        on_curves: ``(every, callback)``: after each day, ``callback`` gets the curve points
            (rows of ``result.curves(every)``, identical values) whose step that day reached.
        keep_log: hold the decision log in memory as ``result.log`` (false: ``result.log`` is
            an empty frame, e.g. when ``on_log`` already streams it; without ``on_log`` the
            rows are then not built at all). A long run's log is large: 200k rounds with
            12 variants take ~150 MB.
    """
    if int(rounds) <= 0:
        raise ConfigError(f"rounds must be > 0, got {rounds}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    policy_ss, eval_ss = ss.spawn(2)
    spec = problem_spec(env, features)
    policy.reset(spec, policy_ss)
    delay = env.settings.feedback_delay_days
    pending: deque[tuple[Contexts, Decisions, np.ndarray]] = deque()

    sent = np.zeros(rounds, bool)
    reward = np.zeros(rounds)
    expected = np.zeros(rounds)
    oracle = np.zeros(rounds)
    unsub = np.zeros(rounds, bool)
    p_unsub = np.zeros(rounds)
    logs: list[pl.DataFrame] = []
    per_day = env.settings.impressions_per_day
    if on_curves is not None:
        steps = curve_steps(rounds, on_curves[0])
        curve_sums = CurveSums()
        next_step = 0  # index into steps of the first point not yet reported
    done = 0
    while done < rounds:
        day = env.next_day(min(per_day, rounds - done))
        ctx = spec.contexts(day.frame)
        dec = _decide(policy, ctx, day, delay, pending)
        rows = np.arange(len(ctx))
        r = day.potential_reward[rows, dec.actions]
        idx = done + day.slot
        sent[idx] = True
        reward[idx] = r
        expected[idx] = day.truth.expected_reward[rows, dec.actions]
        oracle[idx] = day.truth.expected_reward.max(axis=1)
        p_unsub[idx] = day.truth.p_unsubscribe[rows, dec.actions]
        unsub[idx] = env.commit(day, dec.actions)
        if delay > 0 and isinstance(policy, Policy):
            pending.append((ctx, dec, r))
            if len(pending) > delay:
                c, d, rr = pending.popleft()
                policy.update(c, d.actions, rr, d.propensities)
        if keep_log or on_log is not None:
            day_log = _log_frame(day, dec, r, unsub[idx], idx, spec)
            if keep_log:
                logs.append(day_log)
            if on_log is not None:
                on_log(day_log)
        done += day.n_opportunities
        if on_curves is not None:
            reached = int(np.searchsorted(steps, done, side="right"))
            if reached > next_step:
                on_curves[1](
                    curve_sums.frame(steps[next_step:reached], reward, expected, oracle, unsub)
                )
                next_step = reached
        if on_day is not None:
            on_day(done)

    eval_day = env.evaluation_day(eval_rounds, eval_ss) if eval_rounds > 0 else None
    final_value = final_oracle = float("nan")
    if eval_day is not None and eval_day.frame.height:
        q = eval_day.truth.expected_reward
        if isinstance(policy, Oracle):
            probs = one_hot_argmax(q)
        else:
            probs = policy.action_probs(spec.contexts(eval_day.frame))
        scale = eval_day.frame.height / eval_day.n_opportunities  # lost slots count as zero
        final_value = float((probs * q).sum(axis=1).mean() * scale)
        final_oracle = float(q.max(axis=1).mean() * scale)
    return OnlineResult(
        policy=policy.name,
        rounds=rounds,
        sent=sent,
        reward=reward,
        expected=expected,
        oracle=oracle,
        unsubscribed=unsub,
        log=pl.concat(logs, how="vertical") if logs else pl.DataFrame(),
        final_policy_value=final_value,
        final_oracle_value=final_oracle,
        params=policy.get_params(),
        expected_unsubscribe=p_unsub,
    )


def _decide(
    policy: Policy | Oracle, ctx: Contexts, day: Day, delay: int, pending: deque
) -> Decisions:
    if isinstance(policy, Oracle):
        return policy.play_with_truth(day.truth.expected_reward)
    if len(ctx) == 0:
        k = policy.spec_.n_actions
        return Decisions(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, k)))
    if delay > 0:
        return policy.sample(ctx)  # learning waits for the delayed feedback
    return policy.play(ctx, day.potential_reward)


def decision_log_schema() -> dict[str, str]:
    """Columns of the decision log the simulator writes (besides the context columns).

    ``round`` (int64, global opportunity index), ``day`` (int64), ``action`` (variant id),
    ``reward`` (float64), ``propensity`` (float64, the exact probability of ``action``),
    ``action_probs`` (array of K float64: the logging policy's full distribution, catalog
    order), ``unsubscribed`` (bool, a cost), and simulation-only truth:
    ``expected_reward`` (float64, of the chosen action) and ``true_expected_reward``
    (array of K float64, every variant's expected reward in this round).
    """
    return {
        "round": "int64",
        "day": "int64",
        "action": "string",
        "reward": "float64",
        "propensity": "float64",
        "action_probs": "array[float64, K]",
        "unsubscribed": "bool",
        "expected_reward": "float64",
        "true_expected_reward": "array[float64, K]",
    }


def _log_frame(
    day: Day,
    dec: Decisions,
    reward: np.ndarray,
    unsub: np.ndarray,
    rounds: np.ndarray,
    spec: ProblemSpec,
) -> pl.DataFrame:
    """The day's decision-log rows: ``round``, ``day``, the context columns, then the
    decision columns (:func:`decision_log_schema`). Built as one frame from its columns
    (no select/concat/drop: each of those is a query of its own, ~0.2 ms per day)."""
    n, k = len(dec.actions), spec.n_actions
    rows = np.arange(n)
    return pl.DataFrame(
        [
            pl.Series("round", rounds.astype(np.int64)),
            pl.Series("day", np.full(n, day.index, np.int64)),
            *day.frame.get_columns(),
            pl.Series("action", _action_ids(tuple(spec.action_ids)).gather(dec.actions)),
            pl.Series("reward", reward.astype(np.float64)),
            pl.Series("propensity", dec.propensities.astype(np.float64)),
            pl.Series("action_probs", dec.probs.reshape(n, k), dtype=pl.Array(pl.Float64, k)),
            pl.Series("unsubscribed", unsub.astype(bool)),
            pl.Series("expected_reward", day.truth.expected_reward[rows, dec.actions]),
            pl.Series(
                "true_expected_reward",
                day.truth.expected_reward.reshape(n, k),
                dtype=pl.Array(pl.Float64, k),
            ),
        ]
    )


@functools.lru_cache(maxsize=8)
def _action_ids(ids: tuple[str, ...]) -> pl.Series:
    return pl.Series("action", ids, dtype=pl.String)
