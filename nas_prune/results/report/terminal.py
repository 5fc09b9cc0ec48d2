"""The front as a plain-text rich table, for the terminal."""

from __future__ import annotations

import io
from typing import Literal

from nas_prune.results.report.cells import (
    RIGHT_ALIGNED,
    TERMINAL_COLUMNS,
    cell,
    noise_lines,
    summary_lines,
    visible_columns,
)
from nas_prune.results.report.data import ReportData, sorted_front
from nas_prune.results.report.insights_view import insights_lines

__all__ = ["terminal_table"]

_OBJECTIVE_KEYS = {"macs_nonzero", "bytes", "latency", "return_noise"}


def terminal_table(data: ReportData) -> str:
    """Return the front as a plain-text rich table, then hypervolume and state-count lines."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    front = sorted_front(data.front)
    columns = visible_columns(TERMINAL_COLUMNS, front, data.objectives)
    # Text(...) everywhere: values such as "[0.1, 0.2]" must not be parsed as rich markup.
    table = Table(title=Text(data.title), title_justify="left")
    for header, key in columns:
        justify: Literal["left", "right"] = "right" if key in RIGHT_ALIGNED else "left"
        no_wrap = key in RIGHT_ALIGNED or key == "reeval_iqm_ci"  # numbers never wrap; text folds
        table.add_column(Text(header), justify=justify, no_wrap=no_wrap, overflow="fold")
    for row in front.to_dict("records"):
        table.add_row(*(Text(cell(row, key)) for _, key in columns))
    # wider for the further objectives' columns, so the text columns are not squeezed out
    width = 160 + 14 * sum(key in _OBJECTIVE_KEYS for _, key in columns)
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    lines = summary_lines(data) + (insights_lines(data.insights) if data.insights else [])
    for line in lines:
        console.print(Text(line))
    for line in noise_lines(data):
        console.print(Text(line))
    return console.export_text()
