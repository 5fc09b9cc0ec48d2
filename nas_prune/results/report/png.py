"""The static PNG of the scatter (matplotlib on an Agg canvas)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nas_prune.results.report.cells import as_float
from nas_prune.results.report.data import (
    COLORS,
    X_LABEL,
    Y_LABEL,
    ReportData,
    complete_rows,
    front_y,
    knee_row,
    numbers,
    plottable,
    reeval_points,
)

__all__ = ["png_report"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes

def png_report(data: ReportData, path: Path) -> Path:
    """Write a static PNG of the scatter (log params vs return, 840x540 px); return ``path``.

    Draws on an Agg canvas directly (no pyplot): works headless and leaves the global
    matplotlib backend alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    _draw(fig.add_subplot(), data)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def _draw(ax: Axes, data: ReportData) -> None:
    trials = plottable(complete_rows(data.trials))
    ax.scatter(numbers(trials, "params_nonzero"), numbers(trials, "return_mean"), s=16,
               color=COLORS["trials"], alpha=0.6, label="trials (complete)")
    baseline, dense, front = (plottable(df) for df in (data.baseline, data.dense, data.front))
    if len(baseline):
        ax.plot(numbers(baseline, "params_nonzero"), numbers(baseline, "return_mean"), "o--",
                color=COLORS["baseline"], ms=4, label="uniform pruning baseline")
    if len(dense):
        ax.scatter(numbers(dense, "params_nonzero"), numbers(dense, "return_mean"),
                   marker="*", s=180, color=COLORS["dense"], zorder=4, label="dense reference")
    if len(front):
        x, y = numbers(front, "params_nonzero"), numbers(front, front_y(front))
        ax.step(x, y, where="post", color=COLORS["front"], lw=1.5)
        ax.scatter(x, y, s=40, color=COLORS["front"], zorder=3, label="Pareto front")
    found = reeval_points(data.front)
    if found is not None:
        points, label = found
        ax.errorbar(points["x"], points["y"], yerr=[points["minus"], points["plus"]], fmt="D",
                    ms=4, mfc="white", color=COLORS["reeval"], capsize=3, zorder=5, label=label)
    knee = knee_row(data.front, data.objectives, data.hypervolume)
    if knee is not None:
        ax.annotate("knee", (as_float(knee["params_nonzero"]), as_float(knee["knee_y"])),
                    xytext=(-30, 18), textcoords="offset points", fontsize=8,
                    arrowprops={"arrowstyle": "->", "color": "#444"})
    ax.set(xscale="log", xlabel=X_LABEL, ylabel=Y_LABEL)
    ax.set_title(data.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
