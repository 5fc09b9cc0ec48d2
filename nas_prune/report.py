"""Render a sweep's results: CSV, self-contained HTML (plotly), PNG (matplotlib), terminal table.

Pure rendering: the caller loads the trials, chooses the front and computes hypervolumes;
nothing here reads storage or runs anything. plotly, matplotlib and rich are imported inside
the functions that use them, so ``import nas_prune`` stays fast.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from nas_prune.pareto import knee_index

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from plotly.graph_objects import Figure as PlotlyFigure

__all__ = ["ReportData", "html_report", "png_report", "render", "state_counts", "terminal_table"]

Row = Mapping[str, Any]
MISSING = "-"
X_LABEL = "parameters (nonzero, deployed policy)"
Y_LABEL = "return (mean)"
_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
_COLORS = {"trials": "#9e9e9e", "front": "#d62728", "dense": "#1f1f1f",
           "baseline": "#ff7f0e", "reeval": "#2ca02c"}

# Table columns as (header, cell key); _cell renders each key.
_HTML_COLUMNS = (
    ("params (nonzero)", "params_nonzero"), ("params", "params"), ("sparsity %", "sparsity"),
    ("return mean ± std", "return"), ("return IQM", "return_iqm"),
    ("re-eval mean", "reeval_mean"), ("re-eval IQM", "reeval_iqm"),
    ("re-eval 95% CI", "reeval_ci"), ("method", "method"), ("schedule", "schedule"),
    ("finetune mode", "finetune_mode"), ("hidden", "hidden"),
    ("layer sparsity", "layer_sparsity"), ("trial", "number"),
)
_TERMINAL_COLUMNS = (
    ("#trial", "number"), ("params_nonzero", "params_nonzero"), ("sparsity %", "sparsity"),
    ("return mean±std", "return"), ("IQM", "return_iqm"),
    ("re-eval IQM [CI]", "reeval_iqm_ci"), ("method", "method"), ("schedule", "schedule"),
    ("ft mode", "finetune_mode"), ("hidden", "hidden"),
)
# Optional cell keys -> source columns; such a column is shown only if one has a value.
_OPTIONAL = {
    "params": ("params",), "reeval_mean": ("reeval_mean",), "reeval_iqm": ("reeval_iqm",),
    "reeval_ci": ("reeval_ci_lo", "reeval_ci_hi"), "reeval_iqm_ci": ("reeval_iqm", "reeval_mean"),
}
# Numeric cell keys -> format spec (params get thousands separators).
_SPECS = {"number": ".0f", "params_nonzero": ",.0f", "params": ",.0f", "return_iqm": ".1f",
          "reeval_mean": ".1f", "reeval_iqm": ".1f"}
_RIGHT = {*_SPECS, "sparsity", "return"}


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows, built by the caller.

    Attributes:
        title: e.g. "cartpole_quick: dqn on CartPole-v1".
        trials: one row per trial in any state; needs ``number``, ``state``,
            ``params_nonzero`` and ``return_mean`` (other columns are optional).
        front: the Pareto front rows chosen by the caller (same columns, plus optional
            ``reeval_*`` columns); shown sorted by ``params_nonzero``.
        dense: dense reference points (``params_nonzero``, ``return_mean``, ``hidden``,
            ``seed``); may be empty.
        baseline: uniform-pruning baseline points (``params_nonzero``, ``return_mean``,
            ``sparsity``); may be empty.
        hypervolume: keys such as ``searched``, ``baseline``, ``ratio``, ``ref_params``,
            ``ref_return``; may be empty.
        notes: free text lines shown at the top of the HTML page.

    Raises:
        ValueError: if a non-empty ``trials`` or ``front`` lacks a required column.
    """

    title: str
    trials: pd.DataFrame
    front: pd.DataFrame
    dense: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline: pd.DataFrame = field(default_factory=pd.DataFrame)
    hypervolume: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _require(self.trials, "trials", ("number", "state", "params_nonzero", "return_mean"))
        _require(self.front, "front", ("params_nonzero", "return_mean"))


def render(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """Write trials.csv, pareto.csv, report.html and pareto.png into ``out_dir`` (created).

    Returns:
        The paths, keyed "trials_csv", "pareto_csv", "html", "png".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"trials_csv": out_dir / "trials.csv", "pareto_csv": out_dir / "pareto.csv",
             "html": out_dir / "report.html", "png": out_dir / "pareto.png"}
    data.trials.to_csv(paths["trials_csv"], index=False)
    _sorted_front(data.front).to_csv(paths["pareto_csv"], index=False)
    paths["html"].write_text(html_report(data), encoding="utf-8")
    png_report(data, paths["png"])
    return paths


def state_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Return the number of trials per state: COMPLETE, PRUNED, FAIL, RUNNING, then others."""
    found = _col(trials, "state").dropna().astype(str).value_counts()
    counts = {state: int(found.get(state, 0)) for state in _STATES}
    counts.update({str(s): int(n) for s, n in sorted(found.items()) if s not in counts})
    return counts


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
        f"<h1>{title}</h1>", _header_html(data), plot,
        f"<h2>Pareto front ({len(data.front)} trials)</h2>", _table_html(data.front),
        "</body>\n</html>\n",
    ])


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


def terminal_table(data: ReportData) -> str:
    """Return the front as a plain-text rich table, then hypervolume and state-count lines."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    front = _sorted_front(data.front)
    columns = _visible(_TERMINAL_COLUMNS, front)
    # Text(...) everywhere: values such as "[0.1, 0.2]" must not be parsed as rich markup.
    table = Table(title=Text(data.title), title_justify="left")
    for header, key in columns:
        justify: Literal["left", "right"] = "right" if key in _RIGHT else "left"
        no_wrap = key in _RIGHT or key == "reeval_iqm_ci"  # numbers never wrap; text folds
        table.add_column(Text(header), justify=justify, no_wrap=no_wrap, overflow="fold")
    for row in front.to_dict("records"):
        table.add_row(*(Text(_cell(row, key)) for _, key in columns))
    console = Console(record=True, width=140, file=io.StringIO(), color_system=None)
    console.print(table)
    for line in _summary_lines(data):
        console.print(Text(line))
    return console.export_text()


# --- data helpers -----------------------------------------------------------------------


def _require(df: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if len(df) and missing:
        have = sorted(map(str, df.columns))
        raise ValueError(f"ReportData.{name} lacks columns {missing}; it has {have}")


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name``, or an all-NaN column when it is absent."""
    if name in df.columns:
        return df[name]
    return pd.Series(math.nan, index=df.index, dtype="float64")


def _numbers(df: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_col(df, name), errors="coerce").astype("float64")


def _sorted_front(front: pd.DataFrame) -> pd.DataFrame:
    if "params_nonzero" not in front.columns:
        return front.reset_index(drop=True)
    return front.sort_values("params_nonzero", kind="stable").reset_index(drop=True)


def _plottable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite return and params > 0 (the params axis is logarithmic), sorted."""
    x, y = _numbers(df, "params_nonzero"), _numbers(df, "return_mean")
    ok = (x > 0) & x.map(math.isfinite) & y.map(math.isfinite)
    return df[ok].sort_values("params_nonzero", kind="stable") if ok.any() else df.iloc[0:0]


def _complete(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[_col(trials, "state").astype(str) == "COMPLETE"]


def _has_values(df: pd.DataFrame, columns: Sequence[str]) -> bool:
    return any(_col(df, c).notna().any() for c in columns)


def _visible(columns: Sequence[tuple[str, str]], front: pd.DataFrame) -> list[tuple[str, str]]:
    return [(header, key) for header, key in columns
            if key not in _OPTIONAL or _has_values(front, _OPTIONAL[key])]


def _front_y(front: pd.DataFrame) -> str:
    """The return column the front was chosen on: re-evaluated means when present (the
    same choice as ``nas-prune best``), else the trials' own means."""
    return "reeval_mean" if _has_values(front, ["reeval_mean"]) else "return_mean"


def _knee(front: pd.DataFrame) -> Row | None:
    """The front's knee row (pareto.knee_index), or None without plottable points."""
    points = _plottable(front)
    if points.empty:
        return None
    y = _front_y(front)
    i = knee_index(_numbers(points, "params_nonzero"), _numbers(points, y))
    row = dict(points.iloc[i])
    row["knee_y"] = row[y]
    return row


def _reeval_points(front: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Re-evaluated centre (IQM, else mean) with error-bar lengths to the 95% CI, and a label."""
    stat = "reeval_iqm" if _has_values(front, ["reeval_iqm"]) else "reeval_mean"
    points = _plottable(front)
    points = points[_numbers(points, stat).map(math.isfinite)]
    if points.empty:
        return None
    y = _numbers(points, stat)
    lo = _numbers(points, "reeval_ci_lo").fillna(y)
    hi = _numbers(points, "reeval_ci_hi").fillna(y)
    # Clipped at 0: a CI of the mean need not contain the IQM.
    out = pd.DataFrame({"x": _numbers(points, "params_nonzero"), "y": y,
                        "minus": (y - lo).clip(lower=0.0), "plus": (hi - y).clip(lower=0.0)})
    return out, f"re-evaluated {'IQM' if stat == 'reeval_iqm' else 'mean'} (95% CI)"


# --- text formatting --------------------------------------------------------------------


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: Any, spec: str = ".1f", *, scale: float = 1.0) -> str:
    """``format(value * scale, spec)``, or "-" for a missing or non-numeric value."""
    v = _num(value) * scale
    return format(v, spec) if math.isfinite(v) else MISSING


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def _interval(row: Row) -> str:
    lo, hi = _num(row.get("reeval_ci_lo")), _num(row.get("reeval_ci_hi"))
    return f"[{lo:.1f}, {hi:.1f}]" if math.isfinite(lo) and math.isfinite(hi) else MISSING


def _cell(row: Row, key: str) -> str:
    """One table cell (unescaped text) for a cell key of the column lists."""
    if key in _SPECS:
        return _fmt(row.get(key), _SPECS[key])
    if key == "sparsity":
        return _fmt(row.get(key), scale=100.0)  # sparsity is a fraction in [0, 1]
    if key == "return":
        return f"{_fmt(row.get('return_mean'))} ± {_fmt(row.get('return_std'))}"
    if key == "reeval_ci":
        return _interval(row)
    if key == "reeval_iqm_ci":
        iqm = _num(row.get("reeval_iqm"))
        centre = _fmt(iqm if math.isfinite(iqm) else row.get("reeval_mean"))
        ci = _interval(row)
        return centre if ci == MISSING else f"{centre} {ci}"
    return _text(row.get(key))


def _hypervolume_line(hv: Mapping[str, float]) -> str | None:
    if not hv:
        return None
    parts = [f"{key} {_fmt(hv[key], '.4g')}" for key in ("searched", "baseline") if key in hv]
    if "ratio" in hv:
        parts.append(f"ratio {_fmt(hv['ratio'], '.3f')}")
    if "ref_params" in hv or "ref_return" in hv:
        parts.append(f"reference point (params {_fmt(hv.get('ref_params'), ',.0f')}, "
                     f"return {_fmt(hv.get('ref_return'), '.4g')})")
    known = {"searched", "baseline", "ratio", "ref_params", "ref_return"}
    parts += [f"{key} {_fmt(hv[key], '.4g')}" for key in sorted(set(hv) - known)]
    return "hypervolume: " + "; ".join(parts)


def _summary_lines(data: ReportData) -> list[str]:
    """Hypervolume (if given), trial counts by state, and the front's knee (if any)."""
    hv = _hypervolume_line(data.hypervolume)
    counts = ", ".join(f"{n} {state}" for state, n in state_counts(data.trials).items())
    lines = ([hv] if hv else []) + [f"{len(data.trials)} trials: {counts}"]
    knee = _knee(data.front)
    if knee is not None:
        lines.append(f"knee of the front: trial #{_fmt(knee.get('number'), '.0f')}, "
                     f"{_fmt(knee.get('params_nonzero'), ',.0f')} nonzero params, "
                     f"return {_fmt(knee.get('return_mean'))}")
    return lines


# --- HTML -------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em}th{background:#f3f3f3}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
)


def _header_html(data: ReportData) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in data.notes)
    summary = "".join(f"<p>{html.escape(line)}</p>" for line in _summary_lines(data))
    return (f'<ul class="notes">{notes}</ul>' if notes else "") + summary


def _table_html(front: pd.DataFrame) -> str:
    front = _sorted_front(front)
    columns = _visible(_HTML_COLUMNS, front)
    head = "".join(f"<th>{html.escape(header)}</th>" for header, _ in columns)
    rows = [
        "".join(f'<td{" class=num" if key in _RIGHT else ""}>{html.escape(_cell(row, key))}</td>'
                for _, key in columns)
        for row in front.to_dict("records")
    ]
    body = "".join(f"<tr>{cells}</tr>\n" for cells in rows)
    return f'<table id="front">\n<tr>{head}</tr>\n{body}</table>'


# --- hover text: plotly pseudo-HTML, so values are escaped and lines joined by <br> -------


def _hover(lines: Sequence[str]) -> str:
    return "<br>".join(html.escape(line) for line in lines)


def _trial_hover(row: Row) -> str:
    lines = [
        f"trial #{_fmt(row.get('number'), '.0f')}",
        f"method {_text(row.get('method'))}, schedule {_text(row.get('schedule'))}",
        f"finetune mode {_text(row.get('finetune_mode'))}, hidden {_text(row.get('hidden'))}",
        f"layer sparsity {_text(row.get('layer_sparsity'))}",
        f"params nonzero {_fmt(row.get('params_nonzero'), ',.0f')} "
        f"(of {_fmt(row.get('params'), ',.0f')})",
        f"return mean {_fmt(row.get('return_mean'))}, IQM {_fmt(row.get('return_iqm'))}",
    ]
    if math.isfinite(_num(row.get("reeval_mean"))) or math.isfinite(_num(row.get("reeval_iqm"))):
        lines.append(f"re-eval mean {_fmt(row.get('reeval_mean'))}, "
                     f"IQM {_fmt(row.get('reeval_iqm'))}, 95% CI {_interval(row)}")
    return _hover(lines)


def _dense_hover(row: Row) -> str:
    return _hover([f"dense reference, hidden {_text(row.get('hidden'))}, "
                   f"seed {_fmt(row.get('seed'), '.0f')}",
                   f"params nonzero {_fmt(row.get('params_nonzero'), ',.0f')}",
                   f"return mean {_fmt(row.get('return_mean'))}"])


def _baseline_hover(row: Row) -> str:
    return _hover([f"uniform pruning, sparsity {_fmt(row.get('sparsity'), scale=100.0)}%",
                   f"params nonzero {_fmt(row.get('params_nonzero'), ',.0f')}",
                   f"return mean {_fmt(row.get('return_mean'))}"])


# --- plotly -----------------------------------------------------------------------------


def _series(df: pd.DataFrame, name: str, hover: Callable[[Row], str], **style: Any) -> Any:
    import plotly.graph_objects as go

    return go.Scatter(x=_numbers(df, "params_nonzero").tolist(),
                      y=_numbers(df, "return_mean").tolist(), name=name,
                      text=[hover(row) for row in df.to_dict("records")],
                      hovertemplate="%{text}<extra></extra>", **style)


def _figure(data: ReportData) -> PlotlyFigure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(_series(_plottable(_complete(data.trials)), "trials (complete)", _trial_hover,
                          mode="markers",
                          marker={"color": _COLORS["trials"], "size": 7, "opacity": 0.6}))
    baseline, dense, front = (_plottable(df) for df in (data.baseline, data.dense, data.front))
    if len(baseline):
        fig.add_trace(_series(baseline, "uniform pruning baseline", _baseline_hover,
                              mode="lines+markers", marker={"color": _COLORS["baseline"]},
                              line={"color": _COLORS["baseline"], "dash": "dash"}))
    if len(dense):
        fig.add_trace(_series(dense, "dense reference", _dense_hover, mode="markers",
                              marker={"symbol": "star", "size": 15, "color": _COLORS["dense"]}))
    if len(front):
        # "hv" = horizontal then vertical: the staircase bounding the dominated region.
        fig.add_trace(_series(front, "Pareto front", _trial_hover, mode="lines+markers",
                              line={"shape": "hv", "color": _COLORS["front"]},
                              marker={"size": 10, "color": _COLORS["front"]}))
    _add_reeval_trace(fig, data.front)
    knee = _knee(data.front)
    if knee is not None:  # annotations on a log axis take x as log10
        fig.add_annotation(x=math.log10(_num(knee["params_nonzero"])),
                           y=_num(knee["knee_y"]), text="knee", arrowhead=2, ax=-30, ay=30)
    fig.update_layout(template="plotly_white", height=560, margin={"t": 40},
                      xaxis={"type": "log", "title": {"text": X_LABEL}},
                      yaxis={"title": {"text": Y_LABEL}},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


def _add_reeval_trace(fig: PlotlyFigure, front: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    found = _reeval_points(front)
    if found is None:
        return
    points, label = found
    fig.add_trace(go.Scatter(
        x=points["x"].tolist(), y=points["y"].tolist(), name=label, mode="markers",
        marker={"symbol": "diamond", "size": 8, "color": _COLORS["reeval"]},
        error_y={"type": "data", "symmetric": False, "array": points["plus"].tolist(),
                 "arrayminus": points["minus"].tolist(), "color": _COLORS["reeval"]},
        hoverinfo="skip",  # the front markers' hover already shows the re-evaluated figures
    ))


# --- matplotlib -------------------------------------------------------------------------


def _draw(ax: Axes, data: ReportData) -> None:
    trials = _plottable(_complete(data.trials))
    ax.scatter(_numbers(trials, "params_nonzero"), _numbers(trials, "return_mean"), s=16,
               color=_COLORS["trials"], alpha=0.6, label="trials (complete)")
    baseline, dense, front = (_plottable(df) for df in (data.baseline, data.dense, data.front))
    if len(baseline):
        ax.plot(_numbers(baseline, "params_nonzero"), _numbers(baseline, "return_mean"), "o--",
                color=_COLORS["baseline"], ms=4, label="uniform pruning baseline")
    if len(dense):
        ax.scatter(_numbers(dense, "params_nonzero"), _numbers(dense, "return_mean"),
                   marker="*", s=180, color=_COLORS["dense"], zorder=4, label="dense reference")
    if len(front):
        x, y = _numbers(front, "params_nonzero"), _numbers(front, _front_y(front))
        ax.step(x, y, where="post", color=_COLORS["front"], lw=1.5)
        ax.scatter(x, y, s=40, color=_COLORS["front"], zorder=3, label="Pareto front")
    found = _reeval_points(data.front)
    if found is not None:
        points, label = found
        ax.errorbar(points["x"], points["y"], yerr=[points["minus"], points["plus"]], fmt="D",
                    ms=4, mfc="white", color=_COLORS["reeval"], capsize=3, zorder=5, label=label)
    knee = _knee(data.front)
    if knee is not None:
        ax.annotate("knee", (_num(knee["params_nonzero"]), _num(knee["knee_y"])),
                    xytext=(-30, 18), textcoords="offset points", fontsize=8,
                    arrowprops={"arrowstyle": "->", "color": "#444"})
    ax.set(xscale="log", xlabel=X_LABEL, ylabel=Y_LABEL)
    ax.set_title(data.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
