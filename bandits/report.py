"""Plots for runs and comparisons.

Figures are built with matplotlib's object API (:class:`~matplotlib.figure.Figure`), not
pyplot, so importing this module never changes the user's plotting backend (notebooks keep
inline plots) and nothing is registered in pyplot's global figure list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from bandits.experiment.results import ComparisonResult


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, constrained_layout: bool = True):
    """``pyplot.subplots`` without pyplot: a standalone Figure and its axes."""
    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols)


def _thousands(value: float, _pos: int | None = None) -> str:
    """Compact round counts for axis ticks: 25000 → 25k, 1500000 → 1.5M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def plot_online_curves(curves: Mapping[str, pl.DataFrame], title: str = "") -> Figure:
    """Cumulative reward, cumulative (myopic) regret and cumulative unsubscribes over rounds.

    ``curves`` maps a label (policy name) to the frame of
    :meth:`bandits.simulate.OnlineResult.curves` (columns ``step``, ``cumulative_reward``,
    ``cumulative_regret``, ``cumulative_unsubscribes``).
    """
    # fixed margins: constrained layout would double the rendering time of this plot, which
    # every simulate run draws
    fig, axes = _subplots(1, 3, figsize=(15, 4.2), constrained_layout=False)
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.13, top=0.84 if title else 0.9, wspace=0.2)
    panels = (
        ("cumulative_reward", "Cumulative reward"),
        ("cumulative_regret", "Cumulative regret vs oracle (exact)"),
        ("cumulative_unsubscribes", "Cumulative unsubscribes"),
    )
    for ax, (col, label) in zip(axes, panels, strict=True):
        for name, frame in curves.items():
            ax.plot(frame["step"].to_numpy(), frame[col].to_numpy(), label=name, lw=1.6)
        ax.set_title(label)
        ax.set_xlabel("round")
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_forest(table: pl.DataFrame, title: str = "", truth: float | None = None) -> Figure:
    """Forest plot: one row per estimate with its interval.

    ``table`` needs columns ``label``, ``value``, ``ci_low``, ``ci_high``; ``truth`` (if the
    log carries the simulator's ground truth) is drawn as a vertical line.
    """
    n = table.height
    fig, ax = _subplots(figsize=(7.5, 0.45 * n + 1.4), constrained_layout=True)
    y = list(range(n))[::-1]
    values = table["value"].to_numpy()
    low, high = table["ci_low"].to_numpy(), table["ci_high"].to_numpy()
    ax.errorbar(
        values,
        y,
        xerr=[values - low, high - values],
        fmt="o",
        color="#1f4e79",
        ecolor="#1f4e79",
        capsize=3,
    )
    ax.set_yticks(y, table["label"].to_list())
    if truth is not None:
        ax.axvline(truth, color="#c0392b", ls="--", lw=1.2, label=f"true value {truth:.4f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("estimated policy value (interval; widened to the support bound if unsupported)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def plot_lifts(comparisons: pl.DataFrame, title: str = "") -> Figure:
    """Difference from the baseline with the interval that decided its verdict (the
    Holm-consistent one, at the level in ``ci_level``), one row per policy; the exact
    (simulation) difference as a red cross where known. Columns: ``policy``, ``diff``,
    ``ci_low``, ``ci_high``, ``verdict``, optional ``true_diff``."""
    colors = {
        "better": "#1e8449",
        "worse": "#c0392b",
        "inconclusive": "#7f8c8d",
        "unsupported": "#b9770e",
    }
    n = comparisons.height
    fig, ax = _subplots(figsize=(7.5, 0.55 * n + 1.5), constrained_layout=True)
    for i, row in enumerate(comparisons.iter_rows(named=True)):
        y = n - 1 - i
        c = colors.get(row["verdict"], "#1f4e79")
        ax.errorbar(
            row["diff"],
            y,
            xerr=[[row["diff"] - row["ci_low"]], [row["ci_high"] - row["diff"]]],
            fmt="o",
            color=c,
            ecolor=c,
            capsize=3,
        )
        if row.get("true_diff") is not None:
            ax.plot(row["true_diff"], y, "x", color="#c0392b", ms=7)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(
        list(range(n))[::-1],
        [f"{p} ({v})" for p, v in zip(comparisons["policy"], comparisons["verdict"], strict=True)],
    )
    ax.set_xlabel("reward per impression vs baseline (Holm-consistent CI; x = exact truth)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "Lift over the baseline")
    return fig


def plot_group_heatmap(
    groups: pl.DataFrame, value: str = "relative_lift", family: str = "Holm within each dimension"
) -> Figure:
    """Heatmap of lift by policy (rows) and group (columns, grouped by dimension); cells
    with a better/worse verdict are marked ``+``/``−``; ``family`` says how the claims are
    adjusted (in the title)."""
    import numpy as np

    policies = list(dict.fromkeys(groups["policy"].to_list()))
    cols = list(dict.fromkeys(zip(groups["dimension"], groups["group"], strict=True)))
    grid = np.full((len(policies), len(cols)), np.nan)
    marks = [["" for _ in cols] for _ in policies]
    index = {c: j for j, c in enumerate(cols)}
    for row in groups.iter_rows(named=True):
        i, j = policies.index(row["policy"]), index[(row["dimension"], row["group"])]
        grid[i, j] = row[value]
        marks[i][j] = {"better": "+", "worse": "−"}.get(row["verdict"], "")
    lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    fig, ax = _subplots(
        figsize=(max(6.0, 0.55 * len(cols) + 2), 0.6 * len(policies) + 2.2), constrained_layout=True
    )
    im = ax.imshow(grid, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(len(policies)), policies)
    ax.set_xticks(
        range(len(cols)), [f"{d}={g}" for d, g in cols], rotation=60, ha="right", fontsize=8
    )
    for i in range(len(policies)):
        for j in range(len(cols)):
            if marks[i][j]:
                ax.text(j, i, marks[i][j], ha="center", va="center", fontsize=11, weight="bold")
    fig.colorbar(im, ax=ax, label="relative lift vs baseline")
    ax.set_title(f"Who gains, who loses (+/− = significant, {family})")
    return fig


def plot_tradeoff(values: pl.DataFrame) -> Figure:
    """Reward per impression against unsubscribe rate, one point per policy. Columns:
    ``policy``, ``value``, ``cost``."""
    fig, ax = _subplots(figsize=(6.5, 4.5), constrained_layout=True)
    for row in values.iter_rows(named=True):
        ax.scatter(row["cost"], row["value"], s=60)
        ax.annotate(
            row["policy"],
            (row["cost"], row["value"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=9,
        )
    ax.set_xlabel("unsubscribes per impression (cost)")
    ax.set_ylabel("reward per impression")
    ax.grid(alpha=0.3)
    ax.set_title("Reward gained vs customers lost")
    return fig


def comparison_figures(result: ComparisonResult) -> dict[str, Figure]:
    """The figures of a comparison's report, by title: the learning curves (simulation:
    averaged over the replications), the lifts over the baseline, the who-gains heatmap
    (cells with too few rounds left out) and reward against unsubscribes."""
    figures = {}
    if result.curves:
        runs = f" (mean over {result.n_replications} runs)" if result.replications else ""
        figures["Cumulative reward, regret and unsubscribes"] = plot_online_curves(
            result.curves, title=f"{result.scenario}: the ladder on the same audience{runs}"
        )
    figures["Lift over the baseline"] = plot_lifts(result.table(), title=f"vs {result.baseline}")
    if result.groups.height:
        shown = result.groups.filter(~pl.col("verdict").is_in(["too few rounds"]))
        if shown.height:
            figures["Lift by segment, channel, weather and daypart"] = plot_group_heatmap(
                shown, family=result.group_family
            )
    comps = result.comparisons
    if comps and comps[0].cost is not None:
        points = pl.DataFrame(
            [{"policy": c.policy, "value": c.value, "cost": c.cost} for c in comps]
            + [
                {
                    "policy": result.baseline,
                    "value": comps[0].baseline_value,
                    "cost": comps[0].baseline_cost,
                }
            ]
        )
        figures["Reward against unsubscribes"] = plot_tradeoff(points)
    return figures
