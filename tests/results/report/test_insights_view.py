"""The insights panels as HTML and terminal text; the front table's widths column."""
from __future__ import annotations

import dataclasses
import html
import re

import pandas as pd

from nas_prune.results.report import html_report, terminal_table
from nas_prune.results.report.insights import BUDGETS, Importances, Insights, budget_wins
from nas_prune.results.report.insights_view import (
    WIN_HEADERS,
    insights_html,
    insights_lines,
    win_cells,
)
from tests.results.test_report import EVIL, _full_data

REF = 1000
FRONT = pd.DataFrame({"number": [4, 9], "params_nonzero": [30, 240],
                      "return_mean": [120.0, 250.5], "method": [EVIL, "importance"],
                      "schedule": ["oneshot", "gradual"], "finetune_mode": ["rl", "distill"],
                      "hidden": ["64,64", "64,64"], "hidden_pruned": ["2,1", "12,9"]})
REUSE = ["nas-prune best --storage 'runs/a b/study.journal' --study s --knee --out best.yaml",
         "nas-prune trial best.yaml", "nas-prune export runs/x/trials/00009 --format onnx"]


def _insights(importances: list[Importances] | None = None) -> Insights:
    imps = importances if importances is not None else [
        Importances("return_mean", "PED-ANOVA", {"sparsity_0": 0.75, "method": 0.25}),
        Importances("params_nonzero", "PED-ANOVA", note="too few complete trials (3; ...)")]
    return Insights(wins=budget_wins(FRONT, REF), return_col="return_mean",
                    importances=imps, reuse=REUSE)


def test_budget_rows_say_what_won_or_that_nothing_fits() -> None:
    rows = budget_wins(FRONT, REF).to_dict("records")
    cells = [win_cells(row) for row in rows]
    assert all(len(c) == len(WIN_HEADERS) for c in cells)
    assert cells[0][:3] == ["≤ 1%", "10", "no trial"]  # 30 params > 1% of 1000
    assert cells[1] == ["≤ 5%", "50", "120.0", "30", EVIL, "oneshot", "rl", "2,1", "4"]
    assert cells[3][:4] == ["≤ 25%", "250", "250.5", "240"]
    assert cells[3][-2:] == ["12,9", "9"]


def test_html_panels_are_escaped_and_complete() -> None:
    text = insights_html(_insights())
    table = re.search(r'<table id="budgets">(.*?)</table>', text, re.S)
    assert table is not None
    assert table.group(1).count("<tr>") == 1 + len(BUDGETS)
    assert EVIL not in text and html.escape(EVIL) in text
    assert "no trial" in text
    assert text.count('class="bar"') == 2  # one bar per computed importance
    assert "too few complete trials (3" in text
    reuse = re.search(r'<pre id="reuse">(.*?)</pre>', text, re.S)
    assert reuse is not None and html.unescape(reuse.group(1)).splitlines() == REUSE


def test_html_without_importances_or_knee_leaves_those_panels_out() -> None:
    text = insights_html(dataclasses.replace(_insights([]), reuse=[]))
    assert 'id="budgets"' in text
    assert "Parameter importances" not in text and 'id="reuse"' not in text


def test_terminal_lines_name_winners_importances_and_commands() -> None:
    lines = insights_lines(_insights())
    assert lines[1] == "  ≤ 1% (10 params): no trial"
    assert lines[4] == ("  ≤ 25% (250 params): 250.5 with 240 params: importance, gradual, "
                        "distill, widths 12,9 (trial #9)")
    assert "  return_mean: sparsity_0 0.75, method 0.25" in lines
    assert lines[-3:] == [f"  {c}" for c in REUSE]


def test_page_and_terminal_show_the_panels_and_the_front_widths() -> None:
    data = _full_data()
    data = dataclasses.replace(data, front=data.front.assign(hidden_pruned="9,5"),
                               insights=_insights())
    page = html_report(data)
    assert "<th>widths (pruned)</th>" in page and "<td>9,5</td>" in page
    assert 'id="budgets"' in page and 'id="reuse"' in page
    text = terminal_table(data)
    assert "64,64 → 9,5" in text
    assert "reuse the knee point:" in text and REUSE[1] in text
    # without the insights (an old caller), the page and table are as before
    plain = dataclasses.replace(data, insights=None)
    assert 'id="budgets"' not in html_report(plain)
    assert "reuse the knee point:" not in terminal_table(plain)


def test_widths_cell_shows_a_cnns_channels_apart() -> None:
    from nas_prune.results.report.cells import cell

    mlp = {"hidden": "64,64", "hidden_pruned": "9,5"}
    cnn = {"channels": "16", "hidden": "128", "channels_pruned": "1", "hidden_pruned": "3"}
    assert cell(mlp, "widths") == "64,64 → 9,5"
    assert cell(cnn, "widths") == "16 | 128 → 1 | 3"
