"""Student-t quantiles and p-values: ``scipy.stats.t`` against the special functions it
calls (``scipy.special.stdtrit`` / ``stdtr``), per scalar call, as a comparison uses them
(:func:`bandits.compare.t_quantile`, :func:`bandits.compare.t_two_sided_p`).

    python -m experiments.benchmarks.student_t        # writes student_t_results.md
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from scipy import special, stats

from experiments.benchmarks.common import git_commit, machine_info

OUT = Path(__file__).with_name("student_t_results.md")


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """Best of 5 repeats of ``number`` calls, in µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main(argv: list[str]) -> int:
    df, q, t = 19.0, 0.99875, 2.3
    rows = [
        ("quantile", "scipy.stats.t.ppf", per_call_us(lambda: stats.t.ppf(q, df), 2000)),
        ("quantile", "scipy.special.stdtrit", per_call_us(lambda: special.stdtrit(df, q), 20000)),
        ("p-value", "2·scipy.stats.t.sf", per_call_us(lambda: 2 * stats.t.sf(t, df), 2000)),
        ("p-value", "2·scipy.special.stdtr", per_call_us(lambda: 2 * special.stdtr(df, -t), 20000)),
    ]
    lines = [
        "# Student t: scipy.stats against scipy.special, per scalar call",
        "",
        f"`python -m experiments.benchmarks.student_t` — commit {git_commit()}; "
        + ", ".join(f"{k} {v}" for k, v in machine_info().items())
        + ".",
        "",
        "| what | call | µs per call |",
        "|---|---|---|",
        *[f"| {what} | `{call}` | {us:.1f} |" for what, call, us in rows],
        "",
        "`bandits.compare` calls the special functions: the same numbers (`scipy.stats.t`'s "
        "`_ppf` / `_sf` are these functions) without the per-call argument handling, and a "
        "simulated comparison asks for a quantile and a p-value per pair of rungs and per "
        "who-gains cell (hundreds).",
        "",
        "Before (the hand-coded distribution this replaced, measured once on this machine at "
        "commit f92ff7f): p-value by a continued fraction of the incomplete beta function "
        "14 µs per call; quantile by 200 bisection steps on it 4.1 ms per new (q, df) pair "
        "(cached after); "
        "the bisection was capped at t = 1000, so for 2 replications (1 degree of freedom) a "
        "level above 99.94% — the first Holm steps of 79 or more who-gains cells — got a too "
        "narrow interval.",
    ]
    text = "\n".join(lines) + "\n"
    if "--print" in argv:
        print(text)
    else:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
