"""Beta Thompson sampling (``beta_ts``, ``segment_ts``): online-loop throughput and how much
support the logged probabilities keep.

``python -m experiments.benchmarks.thompson`` (``--quick``: a smoke test; ``--rounds``,
``--seed``) prints one table. Each policy plays ``--rounds`` rounds on the default synthetic
audience (2,000 impressions a day, 12 variants, exact per-round updates; days are drawn
before timing starts, so the time is the policy's own ``play``), best of three runs; then
``action_probs`` is timed on one day's contexts with the final state. Support: over every
decision's probability row ``(rounds, K)``, the share of entries that are exactly 0, below
1e-6 and at least 1e-3 (an action with probability 0 in a log can never be evaluated
off-policy), and the smallest probability.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence

import numpy as np

from bandits.policies import Policy, ProblemSpec, make_policy
from bandits.simulate import AudienceSettings, Environment, problem_spec
from experiments.benchmarks.common import Row, best_time, git_commit, table

POLICIES: tuple[str, ...] = ("beta_ts", "segment_ts")


def _days(rounds: int, seed: int, per_day: int = 2_000):
    env = Environment(AudienceSettings(impressions_per_day=per_day), seed)
    spec = problem_spec(env)
    days = []
    done = 0
    while done < rounds:
        day = env.next_day(min(per_day, rounds - done))
        days.append((spec.contexts(day.frame), day.potential_reward))
        done += len(day.frame)
    return spec, days


def _fresh(name: str, spec: ProblemSpec, seed: int) -> Policy:
    return make_policy(name).bind(spec, seed)


def bench_thompson(quick: bool, rounds: int | None = None, seed: int = 3) -> list[Row]:
    """Rows: ``<policy> simulation (play)`` and ``<policy> action_probs`` for each policy in
    :data:`POLICIES`; the play rows carry the support shares in ``extra``."""
    rounds = rounds or (4_000 if quick else 40_000)
    spec, days = _days(rounds, seed)
    n = sum(len(c) for c, _ in days)
    rows: list[Row] = []
    for name in POLICIES:
        make_policy(name).reset(spec, 0).play(*days[0])  # compile / load the kernels

        def run(policy):
            probs = [policy.play(c, pot).probs for c, pot in days]
            return policy, np.concatenate(probs)

        secs, (policy, probs) = best_time(
            run, 1 if quick else 3, setup=functools.partial(_fresh, name, spec, seed)
        )
        support = {
            "share_zero": float((probs == 0.0).mean()),
            "share_below_1e-6": float((probs < 1e-6).mean()),
            "share_at_least_1e-3": float((probs >= 1e-3).mean()),
            "min_prob": float(probs.min()),
        }
        rows.append(
            Row(
                f"{name} simulation (play)",
                n,
                secs,
                notes=(
                    f"probabilities of the {n:,} decisions: {support['share_zero']:.1%} exactly 0, "
                    f"{support['share_below_1e-6']:.1%} below 1e-6, "
                    f"{support['share_at_least_1e-3']:.1%} at least 1e-3 "
                    f"(smallest {support['min_prob']:.2g})"
                ),
                extra=support,
            )
        )
        ctx = days[-1][0]
        reps = 3 if quick else 20
        policy.action_probs(ctx.slice(0, 1))  # compile / load
        t0 = time.perf_counter()
        for _ in range(reps):
            policy.action_probs(ctx)
        secs = time.perf_counter() - t0
        rows.append(Row(f"{name} action_probs", reps * len(ctx), secs, unit="rows"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.thompson", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per policy")
    parser.add_argument("--seed", type=int, default=3, help="audience and policy seed")
    args = parser.parse_args(argv)
    rows = bench_thompson(args.quick, args.rounds, args.seed)
    cmd = "python -m experiments.benchmarks.thompson" + " ".join(["", *(argv or sys.argv[1:])])
    print(f"Command: `{cmd.strip()}` (commit {git_commit()})\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
