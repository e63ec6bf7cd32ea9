"""Plots for runs and comparisons (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure


def plot_online_curves(curves: Mapping[str, pl.DataFrame], title: str = "") -> Figure:
    """Cumulative reward, cumulative (myopic) regret and cumulative unsubscribes over rounds.

    ``curves`` maps a label (policy name) to the frame of
    :meth:`bandits.simulate.OnlineResult.curves` (columns ``step``, ``cumulative_reward``,
    ``cumulative_regret``, ``cumulative_unsubscribes``).
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
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
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * n + 1.4), constrained_layout=True)
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
    ax.set_xlabel("estimated policy value (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig
