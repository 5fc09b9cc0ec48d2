"""Render a sweep's results: CSV, self-contained HTML (plotly), PNG (matplotlib), terminal table.

Pure rendering: the caller loads the trials, chooses the front and computes hypervolumes;
nothing here reads storage or runs anything. plotly, matplotlib and rich are imported inside
the functions that use them, so ``import nas_prune`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from nas_prune.results.report.data import ReportData, sorted_front, state_counts
from nas_prune.results.report.html_page import html_report
from nas_prune.results.report.png import png_report
from nas_prune.results.report.terminal import terminal_table
from nas_prune.util.files import atomic_path, write_text

__all__ = ["ReportData", "html_report", "png_report", "render", "state_counts", "terminal_table"]


def render(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """Write trials.csv, pareto.csv, report.html and pareto.png into ``out_dir`` (created).

    Returns:
        The paths, keyed "trials_csv", "pareto_csv", "html", "png".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"trials_csv": out_dir / "trials.csv", "pareto_csv": out_dir / "pareto.csv",
             "html": out_dir / "report.html", "png": out_dir / "pareto.png"}
    # atomic: sweep processes sharing one out folder each render it when they finish
    write_text(paths["trials_csv"], data.trials.to_csv(index=False))
    write_text(paths["pareto_csv"], sorted_front(data.front).to_csv(index=False))
    write_text(paths["html"], html_report(data))
    with atomic_path(paths["png"]) as tmp:
        png_report(data, tmp)
    return paths
