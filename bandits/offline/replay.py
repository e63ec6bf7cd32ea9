"""Replay of a *learning* policy through a decision log (Li et al. 2011, generalised).

Events are visited in log order. Event ``t`` (context ``x_t``, logged action ``a_t`` with
propensity ``mu_t``, reward ``r_t``) is accepted with probability

    pi_t(a_t | x_t) * c / mu_t,        c = min_t mu_t   (so the ratio never exceeds 1),

where ``pi_t`` is the policy's current distribution. Accepted events are distributed as if
the policy had chosen the action itself, so the policy learns from them (``update`` with the
logged reward and propensity ``pi_t(a_t|x_t)``) and their mean reward estimates its online
value over that many rounds. Under uniform logging (``mu = c = 1/K``) the acceptance
probability is ``pi_t(a_t|x_t)``: for a deterministic policy, exactly Li et al.'s rejection
sampling ("keep the event if the policy picks the logged action").

Replay needs a log whose contexts are i.i.d. and whose logger gave every action some
probability; with skewed logging ``c`` is small and few events are accepted — the result
then says it cannot support a verdict (``supported=False``) instead of giving one.

Speed: the policy's probabilities are computed for a window of upcoming events at a time
with its current state, up to the first acceptance (the state only changes on acceptance),
so the result does not depend on the window size and Python runs once per accepted event,
not per logged event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits.data.contract import LoggedData
from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Policy

Z95 = 1.959963984540054


@dataclass
class ReplayResult:
    """Outcome of a replay: the accepted events' mean reward with a CLT interval.

    ``accepted (n_accepted,)`` are row indices of the log; ``rewards`` their rewards in
    order (the replayed learning curve). The interval treats the accepted rewards as an
    i.i.d. sample around the average online value (a martingale approximation).
    """

    policy: str
    n_logged: int
    n_accepted: int
    expected_accepted: float
    c: float
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    supported: bool
    message: str
    accepted: np.ndarray
    rewards: np.ndarray

    def metrics(self) -> dict[str, float]:
        return {
            "replay.value": self.value,
            "replay.stderr": self.stderr,
            "replay.ci_low": self.ci_low,
            "replay.ci_high": self.ci_high,
            "replay.n_accepted": float(self.n_accepted),
            "replay.acceptance_rate": self.n_accepted / max(self.n_logged, 1),
            "replay.supported": float(self.supported),
        }


def replay(
    data: LoggedData,
    policy: Policy,
    *,
    seed: int | np.random.SeedSequence = 0,
    min_accepted: int = 500,
    window: int = 4096,
    ctx: Contexts | None = None,
    compiled: bool = True,
) -> ReplayResult:
    """Replay ``policy`` (already bound to ``data.problem_spec()``) through ``data``.

    Args:
        min_accepted: fewer accepted events than this → ``supported=False``.
        window: the most events scored per policy call (speed only: the look-ahead adapts
            to the gaps between acceptances, and results do not depend on it).
        compiled: use the policy's compiled ``replay_log`` when it has one (same
            acceptances and final state; ``False`` runs the reference loop below). It is
            called as ``replay_log(ctx, actions, rewards, propensities, uniforms, c,
            need_pi=False)``: only the acceptances are used, so a policy may decide an event
            without computing its probability exactly (LinTS does, from bounds).
    """
    if min_accepted < 1 or window < 1:
        raise ConfigError("replay.min_accepted and replay.window must be ≥ 1")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    u = np.random.default_rng(ss).random(data.n)
    ctx = ctx if ctx is not None else data.problem_spec().contexts(data.frame)
    mu = data.propensity
    c = float(mu.min()) if data.n else 1.0
    if compiled and hasattr(policy, "replay_log"):
        hit_mask, _ = policy.replay_log(ctx, data.action, data.reward, mu, u, c, need_pi=False)
        idx = np.flatnonzero(hit_mask)
        policy.n_updates_ += int(idx.size)
        return _result(policy, data, idx, c, min_accepted)
    accepted: list[int] = []
    t = 0
    w = min(window, 16)
    while t < data.n:
        stop = min(t + w, data.n)
        part = ctx.slice(t, stop)
        probs = policy.action_probs(part)
        rows = np.arange(stop - t)
        pi_a = probs[rows, data.action[t:stop]]
        hit = np.flatnonzero(u[t:stop] < pi_a * c / mu[t:stop])
        if hit.size == 0:
            t = stop
            w = min(2 * w, window)  # acceptances are rare: look further ahead
            continue
        w = int(min(max(8, 2 * (hit[0] + 1)), window))  # about twice the last gap
        j = t + int(hit[0])
        policy.update(
            ctx.slice(j, j + 1),
            data.action[j : j + 1],
            data.reward[j : j + 1],
            pi_a[hit[0] : hit[0] + 1],
        )
        accepted.append(j)
        t = j + 1
    return _result(policy, data, np.asarray(accepted, dtype=np.int64), c, min_accepted)


def _result(
    policy: Policy, data: LoggedData, idx: np.ndarray, c: float, min_accepted: int
) -> ReplayResult:
    rewards = data.reward[idx]
    n_acc = int(idx.size)
    value = float(rewards.mean()) if n_acc else float("nan")
    stderr = float(rewards.std(ddof=1) / np.sqrt(n_acc)) if n_acc > 1 else float("inf")
    expected = float(c * data.n)  # E[#accepted] = Σ_t Σ_a μ_t(a) π_t(a) c / μ_t(a) = c·n
    supported = n_acc >= min_accepted
    if supported:
        message = f"{n_acc} of {data.n} events accepted (rate {n_acc / data.n:.3f})"
    else:
        message = (
            f"cannot support a verdict: only {n_acc} of {data.n} events accepted "
            f"(need ≥ {min_accepted}; the smallest logged propensity is {c:.2g}, so about "
            f"{expected:.0f} acceptances are expected) — log more, or log with more exploration"
        )
    return ReplayResult(
        policy=policy.name,
        n_logged=data.n,
        n_accepted=n_acc,
        expected_accepted=expected,
        c=c,
        value=value,
        stderr=stderr,
        ci_low=value - Z95 * stderr,
        ci_high=value + Z95 * stderr,
        supported=supported,
        message=message,
        accepted=idx,
        rewards=rewards,
    )
