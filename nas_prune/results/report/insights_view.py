"""Draw the insights panels (budget winners, importances, reuse commands): HTML sections
for the page and plain-text lines for the terminal."""

from __future__ import annotations

import html
import math

from nas_prune.results.report.cells import as_float, as_text, fmt
from nas_prune.results.report.insights import Importances, Insights

__all__ = ["WIN_HEADERS", "insights_html", "insights_lines", "win_cells"]

WIN_HEADERS = ("budget", "max params", "best return", "params (nonzero)", "method",
               "schedule", "finetune mode", "widths (pruned)", "trial")
_TOP = 5  # importances listed per objective
_NUMERIC = {1, 2, 3, 8}  # right-aligned columns of WIN_HEADERS


def win_cells(row: dict[str, object]) -> list[str]:
    """One budget row's cells, in ``WIN_HEADERS`` order; "no trial" when none fits."""
    head = [f"≤ {fmt(row['budget'], '.0f', scale=100.0)}%", fmt(row["max_params"], ",.0f")]
    if not math.isfinite(as_float(row.get("number"))):
        return head + ["no trial"] + [""] * (len(WIN_HEADERS) - 3)
    return head + [fmt(row.get("return")), fmt(row.get("params_nonzero"), ",.0f"),
                   as_text(row.get("method")), as_text(row.get("schedule")),
                   as_text(row.get("finetune_mode")), as_text(row.get("hidden_pruned")),
                   fmt(row.get("number"), ".0f")]


def _win_caption(ins: Insights) -> str:
    which = "re-evaluated mean" if ins.return_col == "reeval_mean" else "mean"
    return (f"Best return ({which}) within each budget (a fraction of the reference "
            f"network's parameters), and what it used")


def _importance_text(imp: Importances) -> str:
    if not imp.values:
        return f"{imp.objective}: {imp.note}"
    top = sorted(imp.values.items(), key=lambda kv: -kv[1])[:_TOP]
    return f"{imp.objective}: " + ", ".join(f"{k} {v:.2f}" for k, v in top)


def insights_lines(ins: Insights) -> list[str]:
    """Plain-text lines for the terminal: budget winners, importances, reuse commands."""
    lines = [_win_caption(ins) + ":"]
    for row in ins.wins.to_dict("records"):
        c = win_cells(row)
        detail = "" if c[2] == "no trial" else (
            f" with {c[3]} params: {c[4]}, {c[5]}, {c[6]}, widths {c[7]} (trial #{c[8]})")
        lines.append(f"  {c[0]} ({c[1]} params): {c[2]}{detail}")
    if ins.importances:
        lines.append(f"parameter importances ({ins.importances[0].evaluator}):")
        lines += [f"  {_importance_text(imp)}" for imp in ins.importances]
    if ins.reuse:
        lines.append("reuse the knee point:")
        lines += [f"  {command}" for command in ins.reuse]
    return lines


def insights_html(ins: Insights) -> str:
    """HTML sections: the budget-winner table, importance bars, the reuse commands."""
    return "\n".join(part for part in (_wins_html(ins), _importances_html(ins.importances),
                                       _reuse_html(ins.reuse)) if part)


def _wins_html(ins: Insights) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in WIN_HEADERS)
    body = "".join("<tr>" + "".join(
        f'<td{" class=num" if i in _NUMERIC else ""}>{html.escape(c)}</td>'
        for i, c in enumerate(win_cells(row))) + "</tr>\n" for row in ins.wins.to_dict("records"))
    return (f"<h2>Winner per parameter budget</h2>\n<p>{html.escape(_win_caption(ins))}.</p>\n"
            f'<table id="budgets">\n<tr>{head}</tr>\n{body}</table>')


def _importances_html(importances: list[Importances]) -> str:
    if not importances:
        return ""
    blocks = []
    for imp in importances:
        if not imp.values:
            blocks.append(f"<p><b>{html.escape(imp.objective)}</b>: "
                          f"{html.escape(imp.note)}</p>")
            continue
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td class=num>{v:.3f}</td><td>"
            f'<span class="bar" style="width:{max(0.0, min(v, 1.0)) * 12:.2f}em"></span>'
            f"</td></tr>\n" for k, v in sorted(imp.values.items(), key=lambda kv: -kv[1]))
        blocks.append(f"<h3>{html.escape(imp.objective)}</h3>\n"
                      f'<table class="importances">\n{rows}</table>')
    evaluator = html.escape(importances[0].evaluator)
    return (f"<h2>Parameter importances</h2>\n<p>Optuna's {evaluator} evaluator over the "
            f"complete trials, one objective at a time (importances sum to 1).</p>\n"
            + "\n".join(blocks))


def _reuse_html(commands: list[str]) -> str:
    if not commands:
        return ""
    text = html.escape("\n".join(commands))
    return ("<h2>Reuse the knee point</h2>\n<p>Write its standalone config, re-run it, "
            f'and export its policy:</p>\n<pre id="reuse">{text}</pre>')
