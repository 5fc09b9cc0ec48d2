"""Table cells and summary lines as plain text: shared by the HTML page and the terminal."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from nas_prune.results.report.data import ReportData, Row, has_values, knee_row, state_counts

__all__ = ["HTML_COLUMNS", "MISSING", "RIGHT_ALIGNED", "TERMINAL_COLUMNS", "as_float", "as_text",
           "cell", "fmt", "interval", "summary_lines", "visible_columns"]

MISSING = "-"

# Table columns as (header, cell key); cell renders each key.
HTML_COLUMNS = (
    ("params (nonzero)", "params_nonzero"), ("params", "params"), ("sparsity %", "sparsity"),
    ("return mean ± std", "return"), ("return IQM", "return_iqm"),
    ("re-eval mean", "reeval_mean"), ("re-eval IQM", "reeval_iqm"),
    ("re-eval 95% CI", "reeval_ci"), ("method", "method"), ("schedule", "schedule"),
    ("finetune mode", "finetune_mode"), ("hidden", "hidden"),
    ("widths (pruned)", "hidden_pruned"), ("layer sparsity", "layer_sparsity"), ("trial", "number"),
)
TERMINAL_COLUMNS = (
    ("#trial", "number"), ("params_nonzero", "params_nonzero"), ("sparsity %", "sparsity"),
    ("return mean±std", "return"), ("IQM", "return_iqm"),
    ("re-eval IQM [CI]", "reeval_iqm_ci"), ("method", "method"), ("schedule", "schedule"),
    ("ft mode", "finetune_mode"), ("widths", "widths"),
)
# Optional cell keys -> source columns; such a column is shown only if one has a value.
_OPTIONAL = {
    "params": ("params",), "reeval_mean": ("reeval_mean",), "reeval_iqm": ("reeval_iqm",),
    "reeval_ci": ("reeval_ci_lo", "reeval_ci_hi"), "reeval_iqm_ci": ("reeval_iqm", "reeval_mean"),
    "hidden_pruned": ("hidden_pruned",),
}
# Numeric cell keys -> format spec (params get thousands separators).
_SPECS = {"number": ".0f", "params_nonzero": ",.0f", "params": ",.0f", "return_iqm": ".1f",
          "reeval_mean": ".1f", "reeval_iqm": ".1f"}
RIGHT_ALIGNED = {*_SPECS, "sparsity", "return"}


def visible_columns(columns: Sequence[tuple[str, str]],
                    front: pd.DataFrame) -> list[tuple[str, str]]:
    return [(header, key) for header, key in columns
            if key not in _OPTIONAL or has_values(front, _OPTIONAL[key])]


def as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt(value: Any, spec: str = ".1f", *, scale: float = 1.0) -> str:
    """``format(value * scale, spec)``, or "-" for a missing or non-numeric value."""
    v = as_float(value) * scale
    return format(v, spec) if math.isfinite(v) else MISSING


def as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def interval(row: Row) -> str:
    lo, hi = as_float(row.get("reeval_ci_lo")), as_float(row.get("reeval_ci_hi"))
    return f"[{lo:.1f}, {hi:.1f}]" if math.isfinite(lo) and math.isfinite(hi) else MISSING


def cell(row: Row, key: str) -> str:
    """One table cell (unescaped text) for a cell key of the column lists."""
    if key in _SPECS:
        return fmt(row.get(key), _SPECS[key])
    if key == "sparsity":
        return fmt(row.get(key), scale=100.0)  # sparsity is a fraction in [0, 1]
    if key == "return":
        return f"{fmt(row.get('return_mean'))} ± {fmt(row.get('return_std'))}"
    if key == "reeval_ci":
        return interval(row)
    if key == "widths":  # dense widths -> widths left after pruning
        pruned = as_text(row.get("hidden_pruned"))
        return as_text(row.get("hidden")) + ("" if pruned == MISSING else f" → {pruned}")
    if key == "reeval_iqm_ci":
        iqm = as_float(row.get("reeval_iqm"))
        centre = fmt(iqm if math.isfinite(iqm) else row.get("reeval_mean"))
        ci = interval(row)
        return centre if ci == MISSING else f"{centre} {ci}"
    return as_text(row.get(key))


def _hypervolume_line(hv: Mapping[str, float]) -> str | None:
    if not hv:
        return None
    parts = [f"{key} {fmt(hv[key], '.4g')}" for key in ("searched", "baseline") if key in hv]
    if "ratio" in hv:
        parts.append(f"ratio {fmt(hv['ratio'], '.3f')}")
    if "ref_params" in hv or "ref_return" in hv:
        parts.append(f"reference point (params {fmt(hv.get('ref_params'), ',.0f')}, "
                     f"return {fmt(hv.get('ref_return'), '.4g')})")
    known = {"searched", "baseline", "ratio", "ref_params", "ref_return"}
    parts += [f"{key} {fmt(hv[key], '.4g')}" for key in sorted(set(hv) - known)]
    return "hypervolume: " + "; ".join(parts)


def summary_lines(data: ReportData) -> list[str]:
    """Hypervolume (if given), trial counts by state, and the front's knee (if any)."""
    hv = _hypervolume_line(data.hypervolume)
    counts = ", ".join(f"{n} {state}" for state, n in state_counts(data.trials).items())
    lines = ([hv] if hv else []) + [f"{len(data.trials)} trials: {counts}"]
    knee = knee_row(data.front)
    if knee is not None:
        lines.append(f"knee of the front: trial #{fmt(knee.get('number'), '.0f')}, "
                     f"{fmt(knee.get('params_nonzero'), ',.0f')} nonzero params, "
                     f"return {fmt(knee.get('return_mean'))}")
    return lines
