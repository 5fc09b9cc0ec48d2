"""The self-contained HTML report: header, interactive plotly scatter, front table."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from nas_prune.config.objectives import RETURN_LIKE
from nas_prune.results.report.cells import (
    HTML_COLUMNS,
    NOISE_HEADER,
    RIGHT_ALIGNED,
    as_float,
    as_text,
    cell,
    fmt,
    interval,
    noise_rows,
    summary_lines,
    visible_columns,
)
from nas_prune.results.report.data import (
    COLORS,
    X_LABEL,
    Y_LABEL,
    ReportData,
    Row,
    complete_rows,
    knee_row,
    numbers,
    plottable,
    reeval_points,
    sorted_front,
)
from nas_prune.results.report.insights_view import insights_html

__all__ = ["html_report"]

if TYPE_CHECKING:
    from plotly.graph_objects import Figure as PlotlyFigure

def html_report(data: ReportData) -> str:
    """Return one self-contained HTML page: header, interactive scatter, front table.

    plotly.js is inlined (``include_plotlyjs=True``, no CDN), so the file works offline.
    """
    plot = _figure(data).to_html(full_html=False, include_plotlyjs=True,
                                 config={"displaylogo": False})
    title = html.escape(data.title)
    return "\n".join([
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
        f"<h1>{title}</h1>", _header_html(data), plot, _projections_html(data),
        f"<h2>Pareto front ({len(data.front)} trials)</h2>",
        _table_html(data.front, data.objectives), _noise_html(data),
        insights_html(data.insights) if data.insights is not None else "", _cost_html(data),
        "</body>\n</html>\n",
    ])


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em}th{background:#f3f3f3}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".bar{display:inline-block;height:0.8em;background:#1f77b4}"
    "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}"
)


def _header_html(data: ReportData) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in data.notes)
    summary = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(data))
    return (f'<ul class="notes">{notes}</ul>' if notes else "") + summary


def _table_html(front: pd.DataFrame, objectives: Sequence[str] = ()) -> str:
    front = sorted_front(front)
    columns = visible_columns(HTML_COLUMNS, front, objectives)
    head = "".join(f"<th>{html.escape(header)}</th>" for header, _ in columns)
    rows = [
        "".join(f'<td{" class=num" if key in RIGHT_ALIGNED else ""}>'
                f"{html.escape(cell(row, key))}</td>" for _, key in columns)
        for row in front.to_dict("records")
    ]
    body = "".join(f"<tr>{cells}</tr>\n" for cells in rows)
    return f'<table id="front">\n<tr>{head}</tr>\n{body}</table>'


# hover text: plotly pseudo-HTML, so values are escaped and lines joined by <br>


def _hover(lines: Sequence[str]) -> str:
    return "<br>".join(html.escape(line) for line in lines)


def _trial_hover(row: Row) -> str:
    lines = [
        f"trial #{fmt(row.get('number'), '.0f')}",
        f"method {as_text(row.get('method'))}, schedule {as_text(row.get('schedule'))}",
        f"finetune mode {as_text(row.get('finetune_mode'))}, hidden {as_text(row.get('hidden'))}",
        f"layer sparsity {as_text(row.get('layer_sparsity'))}",
        f"params nonzero {fmt(row.get('params_nonzero'), ',.0f')} "
        f"(of {fmt(row.get('params'), ',.0f')})",
        f"return mean {fmt(row.get('return_mean'))}, IQM {fmt(row.get('return_iqm'))}",
    ]
    if any(math.isfinite(as_float(row.get(k))) for k in ("reeval_mean", "reeval_iqm")):
        lines.append(f"re-eval mean {fmt(row.get('reeval_mean'))}, "
                     f"IQM {fmt(row.get('reeval_iqm'))}, 95% CI {interval(row)}")
    return _hover(lines)


def _dense_hover(row: Row) -> str:
    return _hover([f"dense reference, hidden {as_text(row.get('hidden'))}, "
                   f"seed {fmt(row.get('seed'), '.0f')}",
                   f"params nonzero {fmt(row.get('params_nonzero'), ',.0f')}",
                   f"return mean {fmt(row.get('return_mean'))}"])


def _baseline_hover(row: Row) -> str:
    return _hover([f"uniform pruning, sparsity {fmt(row.get('sparsity'), scale=100.0)}%",
                   f"params nonzero {fmt(row.get('params_nonzero'), ',.0f')}",
                   f"return mean {fmt(row.get('return_mean'))}"])


def _series(df: pd.DataFrame, name: str, hover: Callable[[Row], str], **style: Any) -> Any:
    import plotly.graph_objects as go

    return go.Scatter(x=numbers(df, "params_nonzero").tolist(),
                      y=numbers(df, "return_mean").tolist(), name=name,
                      text=[hover(row) for row in df.to_dict("records")],
                      hovertemplate="%{text}<extra></extra>", **style)


def _figure(data: ReportData) -> PlotlyFigure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(_series(plottable(complete_rows(data.trials)), "trials (complete)", _trial_hover,
                          mode="markers",
                          marker={"color": COLORS["trials"], "size": 7, "opacity": 0.6}))
    baseline, dense, front = (plottable(df) for df in (data.baseline, data.dense, data.front))
    if len(baseline):
        fig.add_trace(_series(baseline, "uniform pruning baseline", _baseline_hover,
                              mode="lines+markers", marker={"color": COLORS["baseline"]},
                              line={"color": COLORS["baseline"], "dash": "dash"}))
    if len(dense):
        fig.add_trace(_series(dense, "dense reference", _dense_hover, mode="markers",
                              marker={"symbol": "star", "size": 15, "color": COLORS["dense"]}))
    if len(front):
        # "hv" = horizontal then vertical: the staircase bounding the dominated region.
        fig.add_trace(_series(front, "Pareto front", _trial_hover, mode="lines+markers",
                              line={"shape": "hv", "color": COLORS["front"]},
                              marker={"size": 10, "color": COLORS["front"]}))
    _add_reeval_trace(fig, data.front)
    knee = knee_row(data.front, data.objectives, data.hypervolume)
    if knee is not None:  # annotations on a log axis take x as log10
        fig.add_annotation(x=math.log10(as_float(knee["params_nonzero"])),
                           y=as_float(knee["knee_y"]), text="knee", arrowhead=2, ax=-30, ay=30)
    fig.update_layout(template="plotly_white", height=560, margin={"t": 40},
                      xaxis={"type": "log", "title": {"text": X_LABEL}},
                      yaxis={"title": {"text": Y_LABEL}},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


def _add_reeval_trace(fig: PlotlyFigure, front: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    found = reeval_points(front)
    if found is None:
        return
    points, label = found
    fig.add_trace(go.Scatter(
        x=points["x"].tolist(), y=points["y"].tolist(), name=label, mode="markers",
        marker={"symbol": "diamond", "size": 8, "color": COLORS["reeval"]},
        error_y={"type": "data", "symmetric": False, "array": points["plus"].tolist(),
                 "arrayminus": points["minus"].tolist(), "color": COLORS["reeval"]},
        hoverinfo="skip",  # the front markers' hover already shows the re-evaluated figures
    ))


def _noise_html(data: ReportData) -> str:
    rows = noise_rows(data)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in NOISE_HEADER)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i else ''}>{html.escape(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>\n" for r in rows)
    return ("<h2>Robustness under observation noise</h2>\n"
            f'<table id="noise">\n<tr>{head}</tr>\n{body}</table>')


_AXIS = {"return_mean": "return (mean)", "params_nonzero": "params (nonzero)",
         "macs_nonzero": "MACs (nonzero)", "bytes": "bytes", "latency_us": "latency µs",
         "return_noise": "return with noise"}


def _projections_html(data: ReportData) -> str:
    """Three or more objectives: one scatter per pair of objectives, trials in grey and the
    (n-D) front in red; sizes on log axes. Nothing for two objectives."""
    objectives = list(data.objectives)
    if len(objectives) < 3:
        return ""
    from itertools import combinations

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from nas_prune.results.costs import objective_columns

    pairs = list(combinations(objectives, 2))
    ncols = min(3, len(pairs))  # 3 pairs for 3 objectives, 6 in two rows for 4, ...
    nrows = -(-len(pairs) // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, horizontal_spacing=0.08,
                        vertical_spacing=0.12)
    trials = complete_rows(data.trials)
    front_cols = objective_columns(objectives, data.front)
    for k, (a, b) in enumerate(pairs, start=1):
        at = {"row": (k - 1) // ncols + 1, "col": (k - 1) % ncols + 1}
        for name, df, cols, color, size in (
                ("trials (complete)", trials, {}, COLORS["trials"], 6),
                ("Pareto front (all objectives)", data.front, front_cols, COLORS["front"], 9)):
            x, y = (numbers(df, cols.get(n, n)) for n in (b, a))
            fig.add_trace(go.Scatter(x=x.tolist(), y=y.tolist(), mode="markers", name=name,
                                     legendgroup=name, showlegend=k == 1,
                                     marker={"color": color, "size": size, "opacity": 0.7},
                                     text=[f"trial #{fmt(n, '.0f')}" for n in
                                           _col_or_nan(df, "number")],
                                     hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>"),
                          **at)
        fig.update_xaxes(title_text=_AXIS.get(b, b), **at,
                         type="log" if b not in RETURN_LIKE else "linear")
        fig.update_yaxes(title_text=_AXIS.get(a, a), **at,
                         type="log" if a not in RETURN_LIKE else "linear")
    fig.update_layout(template="plotly_white", height=400 * nrows, margin={"t": 40},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.05, "x": 0})
    plot = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return (f"<h2>Pairwise projections of the {len(objectives)}-objective front</h2>\n"
            "<p>A front point can look dominated in one projection: it is better in an "
            "objective the projection leaves out.</p>\n" + plot)


def _cost_html(data: ReportData) -> str:
    """Return against what each trial cost in total env steps (its dense training included,
    or its whole training for a schedule that trains from scratch), one series per
    schedule, with the baseline: where pruning during training and pruning after it meet
    at honest cost."""
    trials = complete_rows(data.trials)
    if trials.empty or "env_steps" not in trials or "schedule" not in trials:
        return ""
    import plotly.graph_objects as go

    fig = go.Figure()
    groups = [(str(name), df) for name, df in trials.groupby("schedule", sort=True)]
    if not data.baseline.empty and "env_steps" in data.baseline:
        groups.append(("uniform pruning baseline", data.baseline))
    for name, df in groups:
        fig.add_trace(go.Scatter(
            x=numbers(df, "env_steps").tolist(), y=numbers(df, "return_mean").tolist(),
            mode="markers", name=name, marker={"size": 8, "opacity": 0.75},
            text=[f"trial #{fmt(n, '.0f')}" for n in _col_or_nan(df, "number")],
            hovertemplate="%{text}<br>env steps %{x:,.0f}<br>return %{y:.1f}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=420, margin={"t": 40}, showlegend=True,
                      xaxis={"type": "log", "title": {"text": "env steps the trial cost (total)"}},
                      yaxis={"title": {"text": "return (mean, trial's evaluation)"}},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    plot = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return ("<h2>Return against cost</h2>\n<p>Total env steps per trial: a post-training "
            "trial counts the dense training it shares, a trial of schedule <code>during</code> "
            "or <code>sparse</code> its whole training.</p>\n" + plot)


def _col_or_nan(df: pd.DataFrame, name: str) -> list[Any]:
    return df[name].tolist() if name in df.columns else [math.nan] * len(df)
