"""Write an example of a team's own decision log — other column names, a CSV export with
its quirks — to try the "Your own logs" walk-through of the README on.

    python -m experiments.example_log example_log          # example_log/clicks.csv, items.csv
    python -m experiments.example_log example_log --rows 20000 --seed 3

The log is the ``epsilon_greedy`` scenario (:mod:`bandits.simulate.scenarios`: the
retargeting rule with 30% uniform exploration) exported the way shops export: item ids in
``item_id``, 0/1 ``clicked``, the logger's probability in ``p_shown``, send times as text
in ``sent_at`` (rows not in time order), a pandas index column, a customer id and first name,
a ``slot`` position, CRM segment and browsing columns under other names, and no ground
truth. ``configs/columns/example_shop.yaml`` is the mapping that reads it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

from bandits.data.contract import is_ground_truth
from bandits.simulate.scenarios import make_scenario

FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jon")


def example_log(rows: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(log, items)``: the exported log (``rows`` rows) and its item table."""
    scenario = make_scenario("epsilon_greedy", rows, seed)
    frame = scenario.data.frame
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    truth = [c for c in frame.columns if is_ground_truth(c)]
    log = (
        frame.drop(["round", "day", "action_probs", *truth])
        .with_columns(
            pl.Series("item_id", [scenario.data.action_ids[a] for a in scenario.data.action]),
            pl.col("reward").cast(pl.Int8).alias("clicked"),
            pl.col("propensity").round(6).alias("p_shown"),
            pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S").alias("sent_at"),
            pl.format("C{}", pl.col("user_key") * 7919 % 1_000_003).alias("customer_id"),
            pl.Series("first_name", rng.choice(FIRST_NAMES, frame.height)),
            pl.Series("slot", rng.integers(1, 4, frame.height)),
        )
        .rename(
            {
                "segment": "crm_segment",
                "last_viewed_category": "last_cat",
                "days_since_view": "days_since_last_view",
            }
        )
        .drop(["action", "reward", "propensity", "timestamp", "user_key"])
    )
    # an export in 20 batches, each in time order, the batches in no particular order
    block = np.arange(frame.height) * 20 // frame.height
    order = np.argsort(rng.permutation(20)[block], kind="stable")
    log = log[pl.Series(order)].with_row_index("").with_columns(pl.col("").cast(pl.Int64))
    items = scenario.catalog.rename(
        {
            "variant_id": "item_id",
            "category": "item_category",
            "mentions_last_viewed": "is_retarget",
        }
    )
    items = items.select([c for c, t in items.schema.items() if not isinstance(t, pl.List)])
    return log, items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write clicks.csv and items.csv")
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    if args.rows < 100:
        print("error: --rows must be at least 100", file=sys.stderr)
        return 2
    log, items = example_log(args.rows, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for frame, name in ((log, "clicks.csv"), (items, "items.csv")):
        tmp = args.out / f".{name}.partial"
        frame.write_csv(tmp)
        tmp.replace(args.out / name)  # never a half-written file under the final name
    print(f"wrote {args.out / 'clicks.csv'} ({log.height:,} rows) and {args.out / 'items.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
