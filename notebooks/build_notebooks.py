"""Write the analyst notebooks (outputs cleared) from the cell sources below.

    .venv/bin/python notebooks/build_notebooks.py          # (re)write notebooks/*.ipynb
    .venv/bin/python notebooks/build_notebooks.py --check  # exit 1 if a notebook is stale

Edit the sources here, not the .ipynb files, so the notebooks stay reviewable and their
outputs stay out of git. ``tests/notebooks/test_notebooks.py`` executes both notebooks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
PARAMETERS_TAG = "parameters"  # papermill's convention: the cell a runner may replace

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(cell_id: str, text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(dedent(text).strip(), id=cell_id)


def code(cell_id: str, text: str, *, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = new_code_cell(dedent(text).strip(), id=cell_id)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# --------------------------------------------------------------------------------------------
# 01 — explore a decision log
# --------------------------------------------------------------------------------------------

EXPLORE = [
    md(
        "intro",
        """
        # Exploring a decision log

        **Question:** in a log of messages a bandit (or any logging policy) sent — *who was shown
        what, in which context did messages earn clicks, how did the logger randomise, what did
        personal data cost in unsubscribes, and would a simple alternative policy (plain
        retargeting) have earned more?*

        A decision log has one row per message sent: the context the policy saw (segment,
        weather, daypart, channel, last-viewed category, …), the `action` (variant id), the
        realised `reward`, the `propensity` of the chosen variant, the logger's whole
        distribution `action_probs`, and the cost `unsubscribed` (see the README, *The decision
        log*).

        **Data.** By default the notebook generates a small log itself: the built-in synthetic
        audience, a uniform-random logger (every variant with probability 1/K — ideal for
        off-policy evaluation), written in the simulate app's layout and read back with
        `bandits.data.load_log`, so it runs anywhere without network or MLflow. To explore a real
        log set `LOG_PATH` below to a file or directory, e.g. the `decision_log/` artifact
        directory of a `python -m experiments.simulate` run (with the default local store:
        `mlartifacts/<run id>/artifacts/decision_log`). Simulation-only columns
        (`true_expected_reward`) are used when present, to check the estimates against the
        truth.

        *Running it:* use a kernel on the project's `.venv` (see `notebooks/README.md`); headless:
        `.venv/bin/jupyter execute notebooks/01_explore_decision_log.ipynb`.
        """,
    ),
    code(
        "parameters",
        """
        LOG_PATH = None  # None: generate a log; else a decision log file or directory
        ROUNDS = 20000  # generated log: impression opportunities (2,000 per simulated day)
        SEED = 1  # generated log: the seed of the audience and the logger; the target's seed
        """,
        tags=(PARAMETERS_TAG,),
    ),
    code(
        "imports",
        """
        import tempfile
        from pathlib import Path

        import matplotlib.pyplot as plt
        import numpy as np
        import polars as pl
        from matplotlib.patches import Patch

        import bandits
        from bandits.ope import IPS, SNIPS

        pl.Config.set_tbl_rows(30)
        pl.Config.set_tbl_cols(16)
        pl.Config.set_tbl_width_chars(160)
        pl.Config.set_fmt_str_lengths(40)
        pl.Config.set_float_precision(4)
        Z95 = 1.959963984540054  # two-sided 95% normal quantile


        def mean_ci(column: str) -> list[pl.Expr]:
            \"\"\"n, mean and 95% normal interval of ``column`` (within each group).\"\"\"
            x = pl.col(column).cast(pl.Float64)
            se = x.std() / pl.len().cast(pl.Float64).sqrt()
            return [
                pl.len().alias("n"),
                x.mean().alias("mean"),
                (x.mean() - Z95 * se).alias("ci_low"),
                (x.mean() + Z95 * se).alias("ci_high"),
            ]


        def levels(s: pl.Series) -> list[str]:
            \"\"\"The values of a column in their natural order (enum order, else sorted).\"\"\"
            present = set(s.cast(pl.String).drop_nulls().unique().to_list())
            if isinstance(s.dtype, pl.Enum):
                return [c for c in s.dtype.categories.to_list() if c in present]
            return sorted(present)


        def crosstab(df: pl.DataFrame, row: str, col: str, agg: pl.Expr) -> pl.DataFrame:
            \"\"\"``agg`` per (row, col): rows: ``row`` levels, columns: ``col`` levels.\"\"\"
            table = (
                df.group_by(row, col)
                .agg(agg.alias("value"))
                .with_columns(pl.col(row).cast(pl.String), pl.col(col).cast(pl.String))
                .pivot(on=col, index=row, values="value")
            )
            order = pl.DataFrame({row: levels(df[row])})
            cols = [c for c in levels(df[col]) if c in table.columns]
            return order.join(table, on=row, how="left").select(row, *cols)


        def heatmap(ax, table: pl.DataFrame, title: str, fmt: str = "{:.2f}") -> None:
            \"\"\"A crosstab as an annotated heatmap (first column: the row labels).\"\"\"
            values = table.select(table.columns[1:]).to_numpy().astype(float)
            image = ax.imshow(values, cmap="viridis", aspect="auto")
            ax.set_xticks(range(values.shape[1]), table.columns[1:], rotation=40, ha="right")
            ax.set_yticks(range(values.shape[0]), table[:, 0].to_list())
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="w")
            ax.set_title(title)
            plt.colorbar(image, ax=ax, shrink=0.8)


        def bars(ax, table: pl.DataFrame, label: str, title: str) -> None:
            \"\"\"Means with 95% intervals (``mean_ci`` columns) as bars with error bars.\"\"\"
            mean = table["mean"].to_numpy()
            err = np.vstack([mean - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - mean])
            names = table[label].cast(pl.String).to_list()
            ax.bar(names, mean, yerr=np.clip(err, 0, None), capsize=3, color="tab:blue")
            ax.set_title(title)
            ax.tick_params(axis="x", rotation=40)
        """,
    ),
    md(
        "load-md",
        """
        ## 1. The log

        With `LOG_PATH = None` we simulate `ROUNDS` impression opportunities on the built-in
        audience with the `uniform` policy as logger (`bandits.run_simulation`, seeded exactly
        like `python -m experiments.simulate policy=uniform seed=SEED`) and write its log
        directory like the app does (`decision_log.parquet`, `catalog.parquet`,
        `metadata.json`; no user key) into a fresh temporary directory. `bandits.load_log`
        validates it (propensities in (0, 1], `action_probs` rows summing to 1 and matching the
        propensity, actions in the catalog).
        """,
    ),
    code(
        "load",
        """
        if LOG_PATH is None:
            simulation = bandits.run_simulation(
                bandits.make_policy("uniform"),
                bandits.AudienceSettings(),  # the built-in audience
                ROUNDS,
                seed=SEED,
                eval_rounds=0,
            )  # its decision log has no user identifier (like the app's)
            log_source = simulation.write_log_dir(Path(tempfile.mkdtemp(prefix="decision_log_")))
        else:
            log_source = Path(LOG_PATH)

        data = bandits.load_log(log_source)
        catalog = data.catalog
        print(f"log: {data.source}")
        print(f"{data.n:,} decisions over {data.n_actions} variants")
        print(f"context columns: {', '.join(data.context_columns)}")
        print(f"cost columns: {', '.join(data.cost_columns) or '(none)'}")
        print(f"logger's action_probs: {'yes' if data.logging_probs is not None else 'no'}")
        catalog
        """,
    ),
    md(
        "enrich-md",
        """
        Each row gets the chosen variant's catalog features and its kind (`retargeting` if it
        mentions the last-viewed item, else `generic`). A retargeting variant's category is
        `last_viewed` in the catalog — it shows whatever the user last browsed — so its
        *effective* category (`shown_category`) is the row's `last_viewed_category`.
        """,
    ),
    code(
        "enrich",
        """
        variant_features = [
            c
            for c in ("category", "tone", "discount", "mentions_last_viewed", "personal_dims")
            if c in catalog.columns
        ]
        chosen = np.asarray(data.action_ids)[data.action]
        log = data.frame.with_columns(pl.Series("variant", chosen)).join(
            catalog.select(pl.col("variant_id").alias("variant"), *variant_features),
            on="variant",
            how="left",
        )
        log = log.with_columns(
            pl.when(pl.col("mentions_last_viewed"))
            .then(pl.lit("retargeting"))
            .otherwise(pl.lit("generic"))
            .alias("message")
            if "mentions_last_viewed" in log.columns
            else pl.lit("all").alias("message")
        )
        if {"category", "last_viewed_category"} <= set(log.columns):
            log = log.with_columns(
                pl.when(pl.col("category") == "last_viewed")
                .then(pl.col("last_viewed_category").cast(pl.String))
                .otherwise(pl.col("category"))
                .alias("shown_category")
            )
        log.head(5)
        """,
    ),
    md(
        "who-md",
        """
        ## 2. Who saw what

        Share of each variant among the messages sent to each segment and on each channel
        (columns sum to 1). A uniform logger shows the same ~1/K everywhere; a learning policy's
        log shows what it learned to send to whom — and where it stopped exploring.
        """,
    ),
    code(
        "who",
        """
        by = [c for c in ("segment", "channel") if c in log.columns]
        fig, axes = plt.subplots(1, len(by), figsize=(6.5 * len(by), 5), squeeze=False)
        for ax, dim in zip(axes[0], by, strict=True):
            counts = crosstab(log, "variant", dim, pl.len())
            shares = counts.with_columns(
                (pl.col(c).fill_null(0) / pl.col(c).fill_null(0).sum()) for c in counts.columns[1:]
            )
            heatmap(ax, shares, f"share of messages by variant within each {dim}")
        fig.tight_layout()
        plt.show()
        crosstab(log, "variant", "segment", pl.len()) if "segment" in log.columns else None
        """,
    ),
    md(
        "reward-md",
        """
        ## 3. Reward by context

        Mean reward (click rate by default) with 95% intervals. Under a uniform logger these
        are unbiased looks at the truth model: the *weather × category* table is the weather
        effect on each product category, the *daypart* and *channel* panels the main context
        effects, and *days since the last view*, split by kind of message, the retargeting lift
        that fades as the view gets older. Under a learning logger these numbers mix the
        context effect with what the policy chose to send where.
        """,
    ),
    code(
        "reward-weather",
        """
        if {"weather", "shown_category"} <= set(log.columns):
            fig, axes = plt.subplots(1, 2, figsize=(13, 4))
            heatmap(
                axes[0],
                crosstab(log, "weather", "shown_category", pl.col("reward").mean()),
                "mean reward: weather × category of the chosen variant",
                "{:.3f}",
            )
            heatmap(
                axes[1],
                crosstab(log, "weather", "shown_category", pl.len()),
                "messages sent",
                "{:.0f}",
            )
            fig.tight_layout()
            plt.show()
        """,
    ),
    code(
        "reward-context",
        """
        if "days_since_view" in log.columns:
            recency = ["0", "1", "2-3", "4-7", "8-14", "15+"]
            d = pl.col("days_since_view")
            log = log.with_columns(
                pl.when(d <= 0)
                .then(pl.lit("0"))
                .when(d <= 1)
                .then(pl.lit("1"))
                .when(d <= 3)
                .then(pl.lit("2-3"))
                .when(d <= 7)
                .then(pl.lit("4-7"))
                .when(d <= 14)
                .then(pl.lit("8-14"))
                .otherwise(pl.lit("15+"))
                .cast(pl.Enum(recency))
                .alias("days_since_view_bucket")
            )
        dims = [c for c in ("daypart", "channel") if c in log.columns]
        reward_by = {d: log.group_by(d).agg(mean_ci("reward")).sort(d).drop_nulls(d) for d in dims}
        if "days_since_view_bucket" in log.columns:  # by kind of message: the retargeting lift
            for kind, part in log.group_by("message", maintain_order=True):
                key = f"days_since_view, {kind[0]} messages"
                reward_by[key] = (
                    part.group_by("days_since_view_bucket")
                    .agg(mean_ci("reward"))
                    .sort("days_since_view_bucket")
                    .rename({"days_since_view_bucket": key})
                )
        recency = sorted(k for k in reward_by if k.startswith("days_since_view"))
        panels = len(dims) + bool(recency)
        fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.8), squeeze=False)
        for ax, dim in zip(axes[0], dims, strict=False):
            bars(ax, reward_by[dim], dim, f"mean reward by {dim}")
        for key in recency:
            t = reward_by[key]
            mean, low, high = (t[c].to_numpy() for c in ("mean", "ci_low", "ci_high"))
            x = t[key].cast(pl.String).to_list()
            label = key.split(", ")[1]
            axes[0, -1].errorbar(x, mean, yerr=[mean - low, high - mean], capsize=3, label=label)
        if recency:
            axes[0, -1].set(title="mean reward by days since the last view", xlabel="days")
            axes[0, -1].legend()
        fig.tight_layout()
        plt.show()
        pl.concat(
            [
                t.rename({dim: "level"}).with_columns(
                    pl.col("level").cast(pl.String), pl.lit(dim).alias("dimension")
                )
                for dim, t in reward_by.items()
            ]
        ).select("dimension", "level", "n", "mean", "ci_low", "ci_high")
        """,
    ),
    md(
        "propensity-md",
        """
        ## 4. Propensities

        Off-policy evaluation reweights each row by `target probability / propensity`, so the
        smallest propensity bounds the largest weight, and a variant the logger never gives any
        probability in some context cannot be evaluated there at all. We check the distribution
        of the logged propensities, that each row's `action_probs` is a distribution matching
        its propensity, and the logger's average probability of each variant.
        """,
    ),
    code(
        "propensity",
        """
        p = data.propensity
        print(
            f"propensity: min {p.min():.4g}, median {np.median(p):.4g}, max {p.max():.4g}; "
            f"largest importance weight for a deterministic target: {1 / p.min():.1f}"
        )
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
        axes[0].hist(p, bins=np.linspace(0, 1, 41), color="tab:blue", log=True)
        axes[0].set(title="logged propensities", xlabel="propensity", ylabel="decisions (log)")
        probs = data.logging_probs
        if probs is not None:
            rows = np.arange(data.n)
            gap = np.abs(probs[rows, data.action] - p).max()
            print(
                f"action_probs: rows sum to 1 within {np.abs(probs.sum(axis=1) - 1).max():.1e}, "
                f"match the propensity within {gap:.1e}; smallest probability of any variant "
                f"{probs.min():.4g} ({(probs.min(axis=1) == 0).mean():.1%} of rows give some "
                "variant zero probability)"
            )
            axes[1].barh(list(data.action_ids), probs.mean(axis=0), color="tab:blue")
            axes[1].axvline(1 / data.n_actions, color="k", ls=":", label="1/K")
            axes[1].set(title="logger's mean probability of each variant", xlabel="probability")
            axes[1].legend(loc="lower right")
        else:
            axes[1].set_axis_off()
        fig.tight_layout()
        plt.show()
        pl.Series("propensity", p).describe()
        """,
    ),
    md(
        "cost-md",
        """
        ## 5. Unsubscribes by personal-data level

        The cost side: a message that visibly uses personal data (`personal_dims`: 0 = generic,
        1 = greets by first name, 2 = mentions the last-viewed item) makes more people
        unsubscribe — and an unsubscribed user receives nothing more. Rate per message sent,
        with 95% intervals.
        """,
    ),
    code(
        "cost",
        """
        if "unsubscribed" in log.columns and "personal_dims" in log.columns:
            cost_by_level = (
                log.group_by("personal_dims")
                .agg(pl.col("unsubscribed").sum().alias("unsubscribes"), *mean_ci("unsubscribed"))
                .with_columns(pl.col("ci_low").clip(lower_bound=0.0))  # a rate is ≥ 0
                .sort("personal_dims")
            )
            cost_by_variant = (
                log.group_by("variant", "personal_dims")
                .agg(pl.col("unsubscribed").sum().alias("unsubscribes"), *mean_ci("unsubscribed"))
                .sort("mean", descending=True)
            )
            fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
            bars(axes[0], cost_by_level, "personal_dims", "unsubscribe rate by personal_dims")
            axes[1].barh(
                cost_by_variant["variant"].to_list(),
                cost_by_variant["mean"].to_numpy(),
                color=[f"C{k}" for k in cost_by_variant["personal_dims"].to_list()],
            )
            axes[1].invert_yaxis()
            levels_used = cost_by_level["personal_dims"].to_list()
            handles = [Patch(color=f"C{k}", label=f"personal_dims = {k}") for k in levels_used]
            axes[1].legend(handles=handles, loc="lower right")
            axes[1].set(title="unsubscribe rate by variant", xlabel="unsubscribes per message")
            fig.tight_layout()
            plt.show()
            display(cost_by_level)
        else:
            print("no 'unsubscribed' column or no 'personal_dims' in the catalog: skipped")
        """,
    ),
    md(
        "ips-md",
        """
        ## 6. Would plain retargeting have done better? A quick IPS estimate

        The alternative: the `retargeting` policy (show people what they last looked at, else a
        generic message of that category). Inverse propensity scoring estimates its value per
        impression from this log alone: `mean(π(a_i | x_i) / p_i · r_i)`, with a 95% interval
        (`bandits.ope.IPS`), and the self-normalised variant (SNIPS) beside it. Compare with the
        logger's own mean reward. When the log comes from the simulator we also know the
        *truth*: the expected reward of retargeting's choice on the same logged impressions.

        Caveats: IPS is unbiased only if the propensities are right and the logger gave positive
        probability to everything the target does (`unsupported_target_mass` = 0); it values
        the decisions on *these* users and contexts, not the long-run effect of a different
        policy (fewer unsubscribes, less fatigue). For the full ladder with paired intervals use
        `bandits.compare_policies` (notebook 02).
        """,
    ),
    code(
        "ips",
        """
        spec = data.problem_spec()
        target = bandits.make_policy("retargeting").reset(spec, SEED)
        target_probs = target.action_probs(spec.contexts(data.frame))
        arrays = {
            "reward": data.reward,
            "action": data.action,
            "propensity": data.propensity,
            "target_probs": target_probs,
            "logging_probs": data.logging_probs,  # None if the log has no action_probs
        }
        ips = IPS().estimate(**arrays)
        snips = SNIPS().estimate(**arrays)
        se_logger = data.reward.std(ddof=1) / np.sqrt(data.n)
        rows = [
            {
                "estimate": "logger (on-policy mean)",
                "value": data.reward.mean(),
                "ci_low": data.reward.mean() - Z95 * se_logger,
                "ci_high": data.reward.mean() + Z95 * se_logger,
            },
            *(
                {
                    "estimate": f"retargeting, {e.estimator.upper()}",
                    "value": e.value,
                    "ci_low": e.ci_low,
                    "ci_high": e.ci_high,
                }
                for e in (ips, snips)
            ),
        ]
        truth = None
        if "true_expected_reward" in data.frame.columns:  # simulation only
            q = data.frame["true_expected_reward"].to_numpy()
            truth = float((target_probs * q).sum(axis=1).mean())
        estimates = pl.DataFrame(rows)

        print(
            f"IPS estimate of retargeting: {ips.value:.5f} "
            f"(95% CI {ips.ci_low:.5f} to {ips.ci_high:.5f}, n={ips.n})"
        )
        print(f"logger's mean reward:        {data.reward.mean():.5f}")
        if truth is not None:
            print(f"true value of retargeting on these impressions: {truth:.5f}")
        print(
            "diagnostics: "
            + ", ".join(f"{k} {v:.4g}" for k, v in ips.diagnostics.items() if np.isfinite(v))
        )
        unsupported = ips.diagnostics.get("unsupported_target_mass", 0.0)
        if unsupported > 0:
            print(
                f"WARNING: {unsupported:.1%} of retargeting's choices had probability 0 under the "
                "logger; IPS cannot see them and is biased. Evaluate on a log with exploration "
                "(a uniform logger, or the policy's epsilon > 0)."
            )

        fig, ax = plt.subplots(figsize=(8, 2.8))
        y = np.arange(estimates.height)[::-1]
        v = estimates["value"].to_numpy()
        err = np.vstack([v - estimates["ci_low"].to_numpy(), estimates["ci_high"].to_numpy() - v])
        ax.errorbar(v, y, xerr=err, fmt="o", capsize=4)
        ax.set_yticks(y, estimates["estimate"].to_list())
        if truth is not None:
            ax.axvline(truth, color="tab:green", ls="--", label="truth (retargeting)")
            ax.legend(loc="lower right")
        ax.set(title="value per impression, 95% intervals", xlabel="mean reward")
        fig.tight_layout()
        plt.show()
        estimates
        """,
    ),
]


# --------------------------------------------------------------------------------------------
# 02 — run a comparison from Python and read it back from MLflow
# --------------------------------------------------------------------------------------------

COMPARE = [
    md(
        "intro",
        """
        # Does hyper-personalization beat retargeting? — the comparison from Python

        **Question:** on a given audience, does an individual contextual bandit (LinUCB, Vowpal
        Wabbit) beat plain retargeting — by how much, how sure are we, and how fast does each
        rung of the personalization ladder learn?

        This notebook drives the library directly: `bandits.compare_policies` runs the
        personalization ladder on a `bandits.SimulatedSource` — `REPLICATIONS` independent
        runs of the campaign, each a fresh draw of the audience and fresh policy seeds, every
        rung on the same draw (common random numbers) — and returns a typed
        `ComparisonResult`: the verdicts with their Holm-consistent intervals, the interval
        level, the estimand, the method notes, who gains, the unsubscribe guardrail and the
        per-replication numbers. It is the same computation as `python -m experiments.compare`
        with the same settings. `bandits.tracking.results` then logs it to MLflow exactly as
        the app does (a parent run with the verdicts, tables, plots and the HTML report; one
        child run per rung and per replication).

        The ladder (as in `configs/compare.yaml`): `one_for_all` (A/B-test winner for
        everyone), `segments` (Thompson sampling per segment), `retargeting` (the baseline),
        `linucb` and `vw`.

        **Tracking.** With `TRACKING_URI = None` results go to a notebook-local SQLite store,
        `mlruns/mlflow.db` next to the notebook (git-ignored), never to your main store. With
        the defaults (20,000 rounds, five rungs, 20 replications on 2 workers) the comparison
        takes a minute or two.

        *Running it:* use a kernel on the project's `.venv` (see `notebooks/README.md`); headless:
        `.venv/bin/jupyter execute notebooks/02_compare_from_python.ipynb`.
        """,
    ),
    code(
        "parameters",
        """
        SCENARIO = None  # None: the default audience; or a preset from configs/experiment/
        ROUNDS = 20000  # impression opportunities per rung and replication (the campaign)
        REPLICATIONS = 20  # independent runs of the campaign behind the verdict
        LADDER_DROP = []  # rungs to skip, e.g. ['vw']
        SEED = 1  # the one seed: worlds, users, contexts, policies, evaluation
        ALPHA = 0.05  # family-wise error rate of the verdicts (Holm)
        EVAL_ROUNDS = 5000  # held-out impressions for each rung's final policy value
        N_JOBS = 2  # worker processes for the replications
        TRACKING_URI = None  # None: sqlite store in ./mlruns; or any MLflow tracking URI
        """,
        tags=(PARAMETERS_TAG,),
    ),
    code(
        "imports",
        """
        import warnings
        from pathlib import Path

        import matplotlib.pyplot as plt
        import numpy as np
        import polars as pl
        import yaml

        import bandits
        from bandits.experiment import ladder_from_settings
        from bandits.simulate import audience_settings_from_dict

        with warnings.catch_warnings():  # tqdm's "IProgress not found" (no ipywidgets): harmless
            warnings.simplefilter("ignore")
            from bandits import tracking
            from bandits.tracking import results

        pl.Config.set_tbl_rows(40)
        pl.Config.set_tbl_cols(16)
        pl.Config.set_tbl_width_chars(160)
        pl.Config.set_fmt_str_lengths(60)
        pl.Config.set_float_precision(4)

        PRESET_DIR = Path(bandits.__file__).resolve().parents[1] / "configs" / "experiment"
        PRESETS = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        if SCENARIO is not None and SCENARIO not in PRESETS:
            raise ValueError(f"unknown SCENARIO {SCENARIO!r} (presets: {', '.join(PRESETS)})")
        if TRACKING_URI is None:
            store = Path.cwd() / "mlruns"
            store.mkdir(exist_ok=True)
            tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
        else:
            tracking_uri = str(TRACKING_URI)
        print(f"tracking: {tracking_uri}\\npresets: {', '.join(PRESETS)}")
        """,
    ),
    md(
        "setup-md",
        """
        ## 1. The audience, the ladder, the baseline

        A scenario preset states its truth in its comments and sets the audience's response
        and the baseline; without one, the built-in audience against retargeting. The ladder
        is plain Python: rung label → `{"name": <policy>, <setting>: value}` (the same
        settings as `configs/policy/<name>.yaml`).
        """,
    ),
    code(
        "setup",
        """
        preset = yaml.safe_load((PRESET_DIR / f"{SCENARIO}.yaml").read_text()) if SCENARIO else {}
        audience = audience_settings_from_dict(preset.get("audience", {}))
        baseline = preset.get("baseline", "retargeting")
        rungs = {
            "one_for_all": {"name": "ab_winner", "test_rounds": 2000},
            "segments": {"name": "segment_ts"},
            "retargeting": {"name": "retargeting"},
            "linucb": {"name": "linucb"},
            "vw": {"name": "vw"},
        }
        ladder = ladder_from_settings({k: v for k, v in rungs.items() if k not in LADDER_DROP})
        focus = [r for r in ("linucb", "vw") if r in ladder]  # the rungs the headline is about
        source = bandits.SimulatedSource(
            audience,
            rounds=ROUNDS,
            seed=SEED,
            replications=REPLICATIONS,
            eval_rounds=EVAL_ROUNDS,
            n_jobs=N_JOBS,
        )
        print(f"audience: {audience.name}; baseline: {baseline}; focus: {focus}")
        print(f"ladder: {', '.join(f'{k} ({p.name})' for k, p in ladder.items())}")
        print(f"estimand: {source.estimand}")
        """,
    ),
    md(
        "run-md",
        """
        ## 2. Run the comparison, tracked

        The comparison runs inside an MLflow parent run: `with_replication_runs` makes every
        replication a child run as it finishes, `compare_policies` decides (one Holm family over
        every pair of rungs, who-gains cells over all cells, the unsubscribe budget), and
        `log_comparison` writes the verdicts, lifts, tables, plots, the report and one child run
        per rung. Without MLflow, `bandits.compare_policies(source, ladder, baseline=…)` alone
        returns the same result.
        """,
    ),
    code(
        "run",
        """
        tracking.configure(tracking_uri)
        EXPERIMENT = "compare"
        tags = {"run_kind": "compare", "source": "simulate", "scenario": source.scenario}
        tags |= {"baseline": baseline, "seed": str(SEED)}
        name = f"compare {source.scenario} seed={SEED} (notebook)"
        with tracking.run(EXPERIMENT, run_name=name, tags=tags) as run_id:
            # every replication a child run; resume=False: nothing is reused from earlier runs
            tracked = results.with_replication_runs(
                source, experiment=EXPERIMENT, parent_run_id=run_id, key=run_id, resume=False
            )
            result = bandits.compare_policies(
                tracked,
                ladder,
                baseline=baseline,
                alpha=ALPHA,
                focus=focus,
                versus=["retargeting", "segments"],
                guardrail=bandits.Guardrail(max_extra_per_1000=1.0),
            )
            results.log_comparison(result, experiment=EXPERIMENT, run_id=run_id)
        print(f"comparison run: {run_id}")
        print(result)
        %matplotlib inline
        """,
    ),
    code(
        "headline",
        """
        print(f"Scenario: {result.scenario} (baseline: {result.baseline})")
        print(f"Headline: {result.headline}")
        print(f"Estimand: {result.estimand}")
        print(f"alpha = {result.alpha:g}: intervals at >= {result.level:.0%} (Holm-consistent)")
        """,
    ),
    md(
        "lift-md",
        """
        ## 3. Lift over the baseline

        One row per rung compared with the baseline (`result.comparisons`, a `PolicyComparison`
        each): the verdict (`better` / `worse` only when the Holm-adjusted p-value is below
        alpha, otherwise `inconclusive`), the mean exact difference in reward per impression
        over the replications with the interval that decided it (Holm-consistent, at the level
        `ci_level`), and how many replications a 5% lift would need.
        """,
    ),
    code(
        "lift",
        """
        columns = ["policy", "verdict", "value", "diff", "ci_low", "ci_high", "ci_level"]
        columns += ["relative_lift", "p_adjusted", "mde", "rounds_needed", "cost_diff"]
        lift = result.table().select(columns).rename({"rounds_needed": "replications_needed"})

        colours = {"better": "tab:green", "worse": "tab:red", "inconclusive": "tab:grey"}
        fig, ax = plt.subplots(figsize=(8, 0.6 * lift.height + 1.6))
        y = np.arange(lift.height)[::-1]
        diff = lift["diff"].to_numpy()
        err = np.vstack([diff - lift["ci_low"].to_numpy(), lift["ci_high"].to_numpy() - diff])
        for i, verdict in enumerate(lift["verdict"].to_list()):
            ax.errorbar(
                diff[i], y[i], xerr=err[:, [i]], fmt="o", capsize=4, color=colours.get(verdict, "k")
            )
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [f"{r} ({v})" for r, v in lift.select("policy", "verdict").rows()])
        ax.set(
            title=f"difference in reward per impression vs {result.baseline} (Holm-consistent CI)",
            xlabel="Δ expected reward per impression (mean over replications)",
        )
        fig.tight_layout()
        plt.show()
        for c in result.comparisons:
            ci = f"{c.ci_level:.1%} CI {c.ci_low:+.4f} to {c.ci_high:+.4f}"
            print(f"{c.policy} vs {c.baseline}: {c.verdict}, Δ {c.diff:+.4f} ({ci})")
        lift
        """,
    ),
    md(
        "replications-md",
        """
        ## 4. The evidence: one exact Δ per replication

        `result.per_replication()` holds each replication's exact value per rung (the
        simulator's expected reward of the variants the rung chose, averaged over the
        campaign). Each replication contributes one Δ against the baseline; the interval above
        is Student t over these values — their spread is the uncertainty about the policy, not
        the noise within one run.
        """,
    ),
    code(
        "replications",
        """
        per_rep = result.per_replication().pivot(on="rung", index="replication", values="value")
        deltas = per_rep.select(
            "replication",
            *[(pl.col(r) - pl.col(result.baseline)).alias(r) for r in result.verdicts],
        )
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(result.verdicts) + 1.6))
        for i, rung in enumerate(result.verdicts):
            ax.plot(deltas[rung], np.full(deltas.height, i), "o", alpha=0.6, label=rung)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(result.verdicts)), list(result.verdicts))
        ax.set(title=f"exact Δ vs {result.baseline}, one point per replication", xlabel="Δ")
        fig.tight_layout()
        plt.show()
        deltas
        """,
    ),
    md(
        "curves-md",
        """
        ## 5. Learning curves

        Each rung's curves averaged over the replications (`result.curves`; the same numbers
        are each rung's child run's metric histories in MLflow): the exact cumulative regret
        against the (myopic) oracle, and the running true value (mean expected reward per
        round). A learner's regret curve bends as it learns; a flat slope means it has stopped
        losing ground.
        """,
    ),
    code(
        "curves",
        """
        fig, axes = plt.subplots(1, 2, figsize=(13, 4))
        for rung, frame in result.curves.items():
            style = {"lw": 2.5} if rung == result.baseline else {"lw": 1.3}
            for ax, key in zip(axes, ("cumulative_regret", "true_value"), strict=True):
                ax.plot(frame["step"], frame[key], label=rung, **style)
        axes[0].set(title="cumulative regret (exact)", xlabel="round", ylabel="regret")
        axes[1].set(title="running true value", xlabel="round", ylabel="mean expected reward")
        axes[0].legend()
        fig.tight_layout()
        plt.show()
        """,
    ),
    md(
        "groups-md",
        """
        ## 6. For whom?

        `result.groups`: the lift of each rung over the baseline within each segment, channel,
        weather and daypart — the difference in reward per impression, ▲ where the rung is
        better and ▼ where it is worse (Holm over every cell of the table at once), unmarked
        where we can't tell, `(few)` for groups too small to test.
        """,
    ),
    code(
        "groups",
        """
        groups = result.groups
        counts = dict(groups["verdict"].value_counts().rows())
        print(f"{groups.height} (rung, group) rows; verdicts: {counts}")
        print(result.group_note)
        marks = {"better": " ▲", "worse": " ▼", "too few rounds": " (few)"}
        cells = [f"{d:+.4f}{marks.get(v, '')}" for d, v in groups.select("diff", "verdict").rows()]
        shown = [r for r in ladder if r in set(groups["policy"])]
        groups.with_columns(pl.Series("lift", cells)).pivot(
            on="policy", index=["dimension", "group"], values="lift"
        ).select("dimension", "group", *shown)
        """,
    ),
    md(
        "next-md",
        """
        ## Where to look next

        `print("\\n".join(result.method_notes))` says how every number was computed; the parent
        run holds `report.html` (the whole comparison for a product team) and the plots — open
        the store in the MLflow UI with the command printed below. Try a scenario preset
        (`SCENARIO = "individualization_wins"`, `"retargeting_wins"`, …), another seed or more
        replications: a verdict should not flip between seeds unless the effect is near the
        minimum detectable one.
        """,
    ),
    code(
        "next",
        """
        print("\\n".join(results.report_lines(run_id, EXPERIMENT)).strip())
        """,
    ),
]


def build() -> dict[str, nbformat.NotebookNode]:
    """The notebooks by file name (outputs empty)."""
    return {
        "01_explore_decision_log.ipynb": notebook(EXPLORE),
        "02_compare_from_python.ipynb": notebook(COMPARE),
    }


def render(nb: nbformat.NotebookNode) -> str:
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, nb in build().items():
        path = HERE / name
        text = render(nb)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale (run notebooks/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
