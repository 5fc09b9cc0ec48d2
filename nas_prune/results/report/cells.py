"""Table cells and summary lines as plain text: shared by the HTML page and the terminal."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from nas_prune.results.report.data import ReportData, Row, has_values, knee_row, state_counts

__all__ = ["HTML_COLUMNS", "MISSING", "RIGHT_ALIGNED", "TERMINAL_COLUMNS", "as_float", "as_text",
           "cell", "dense_reeval_lines", "fmt", "interval", "noise_rows", "noise_lines",
           "summary_lines", "visible_columns"]

MISSING = "-"

# Table columns as (header, cell key); cell renders each key.
HTML_COLUMNS = (
    ("params (nonzero)", "params_nonzero"), ("params", "params"), ("sparsity %", "sparsity"),
    ("return mean ± std", "return"), ("return IQM", "return_iqm"),
    ("re-eval mean", "reeval_mean"), ("re-eval IQM", "reeval_iqm"),
    ("re-eval 95% CI", "reeval_ci"), ("IQM % of dense", "reeval_iqm_pct_dense"),
    ("MACs (nonzero)", "macs_nonzero"), ("bytes", "bytes"),
    ("latency µs (IQR)", "latency"), ("return with noise", "return_noise"),
    ("method", "method"), ("schedule", "schedule"),
    ("finetune mode", "finetune_mode"), ("hidden", "hidden"),
    ("widths (pruned)", "hidden_pruned"), ("layer sparsity", "layer_sparsity"), ("trial", "number"),
)
TERMINAL_COLUMNS = (
    ("#trial", "number"), ("params_nonzero", "params_nonzero"), ("sparsity %", "sparsity"),
    ("return mean±std", "return"), ("IQM", "return_iqm"),
    ("re-eval IQM [CI]", "reeval_iqm_ci"), ("% of dense", "reeval_iqm_pct_dense"),
    ("MACs", "macs_nonzero"), ("bytes", "bytes"),
    ("latency µs", "latency"), ("noisy return", "return_noise"),
    ("method", "method"), ("schedule", "schedule"),
    ("ft mode", "finetune_mode"), ("widths", "widths"),
)
# Optional cell keys -> source columns; such a column is shown only if one has a value.
_OPTIONAL = {
    "params": ("params",), "reeval_mean": ("reeval_mean",), "reeval_iqm": ("reeval_iqm",),
    "reeval_ci": ("reeval_ci_lo", "reeval_ci_hi"), "reeval_iqm_ci": ("reeval_iqm", "reeval_mean"),
    "reeval_iqm_pct_dense": ("reeval_iqm_pct_dense",),
    "hidden_pruned": ("hidden_pruned",),
    # further objectives (config.objectives): shown when the trials measured them
    "macs_nonzero": ("macs_nonzero",), "bytes": ("bytes",), "return_noise": ("return_noise",),
    "latency": ("latency_us", "latency_remeasured_us"),
}
_EXTRA_OBJECTIVES = ("macs_nonzero", "bytes", "latency_us", "return_noise")
# Numeric cell keys -> format spec (params get thousands separators).
_SPECS = {"number": ".0f", "params_nonzero": ",.0f", "params": ",.0f", "return_iqm": ".1f",
          "reeval_mean": ".1f", "reeval_iqm": ".1f", "macs_nonzero": ",.0f", "bytes": ",.0f",
          "return_noise": ".1f", "reeval_iqm_pct_dense": ".0f"}
RIGHT_ALIGNED = {*_SPECS, "sparsity", "return", "latency"}


def visible_columns(columns: Sequence[tuple[str, str]], front: pd.DataFrame,
                    objectives: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The columns with values in ``front``; an objective's column always shows."""
    wanted = {"latency" if n == "latency_us" else n for n in objectives
              if n in _EXTRA_OBJECTIVES}
    return [(header, key) for header, key in columns
            if key not in _OPTIONAL or key in wanted or has_values(front, _OPTIONAL[key])]


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
    if key == "widths":  # dense widths -> widths left after pruning (a CNN: conv | dense)
        def both(channels: Any, hidden: Any) -> str:
            c = as_text(channels)
            return as_text(hidden) if c == MISSING else f"{c} | {as_text(hidden)}"
        pruned = as_text(row.get("hidden_pruned"))
        return both(row.get("channels"), row.get("hidden")) + (
            "" if pruned == MISSING else
            f" → {both(row.get('channels_pruned'), row.get('hidden_pruned'))}")
    if key == "latency":  # the report's re-measured median where it has one
        again = as_float(row.get("latency_remeasured_us"))
        us = again if math.isfinite(again) else as_float(row.get("latency_us"))
        iqr = as_float(row.get("latency_remeasured_iqr_us" if math.isfinite(again)
                               else "latency_iqr_us"))
        return fmt(us) if not math.isfinite(iqr) else f"{fmt(us)} ({fmt(iqr)})"
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
    lines += dense_reeval_lines(data.dense)
    knee = knee_row(data.front, data.objectives, data.hypervolume)
    if knee is not None:
        lines.append(f"knee of the front: trial #{fmt(knee.get('number'), '.0f')}, "
                     f"{fmt(knee.get('params_nonzero'), ',.0f')} nonzero params, "
                     f"return {fmt(knee.get('return_mean'))}")
    return lines


def dense_reeval_lines(dense: pd.DataFrame) -> list[str]:
    """One line per dense reference re-evaluated on the front's fresh episodes."""
    if not has_values(dense, ["reeval_iqm"]):
        return []
    lines = []
    for row in dense.to_dict("records"):
        if not math.isfinite(as_float(row.get("reeval_iqm"))):
            continue
        c = as_text(row.get("channels"))
        widths = as_text(row.get("hidden")) if c == MISSING else \
            f"{c} | {as_text(row.get('hidden'))}"
        lines.append(f"dense reference ({widths}, seed {fmt(row.get('seed'), '.0f')}, "
                     f"{fmt(row.get('params_nonzero'), ',.0f')} params) re-evaluated on "
                     f"{fmt(row.get('reeval_episodes'), '.0f')} fresh episodes: mean "
                     f"{fmt(row.get('reeval_mean'), '.2f')}, IQM "
                     f"{fmt(row.get('reeval_iqm'), '.2f')} {interval(row)}")
    return lines


NOISE_HEADER = ("policy", "params (nonzero)", "return", "with noise", "change %")


def noise_rows(data: ReportData) -> list[tuple[str, ...]]:
    """Dense references and front points, return without and with observation noise (one
    row each); empty when the study measured no ``return_noise``."""
    if not has_values(data.front, ["return_noise"]):
        return []
    rows: list[tuple[str, ...]] = []
    for kind, df, noisy in (("dense", data.dense, "return_noise"),
                            ("front", data.front, "return_noise")):
        for row in df.to_dict("records"):
            clean, dirty = as_float(row.get("return_mean")), as_float(row.get(noisy))
            change = 100.0 * (dirty - clean) / abs(clean) if clean else math.nan
            name = (f"dense {as_text(row.get('hidden'))}" if kind == "dense"
                    else f"front #{fmt(row.get('number'), '.0f')}")
            rows.append((name, fmt(row.get("params_nonzero"), ",.0f"), fmt(clean), fmt(dirty),
                         fmt(change, "+.1f")))
    return rows


def noise_lines(data: ReportData) -> list[str]:
    """The noise table as plain text lines (terminal)."""
    rows = noise_rows(data)
    if not rows:
        return []
    widths = [max(len(r[i]) for r in [NOISE_HEADER, *rows]) for i in range(len(NOISE_HEADER))]
    return ["robustness (same episodes, observation noise):",
            *("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(r, widths))) for r in [NOISE_HEADER, *rows])]
