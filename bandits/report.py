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
