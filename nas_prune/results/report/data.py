"""ReportData (what one report shows) and the pure data helpers every renderer uses."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from nas_prune.config.objectives import DEFAULT_OBJECTIVES
from nas_prune.results.costs import knee_position, objective_columns

if TYPE_CHECKING:
    from nas_prune.results.report.insights import Insights

__all__ = ["COLORS", "ReportData", "Row", "X_LABEL", "Y_LABEL", "complete_rows", "front_y",
           "has_values", "hv_box", "knee_row", "numbers", "plottable", "reeval_points",
           "sorted_front", "state_counts"]

Row = Mapping[str, Any]
X_LABEL = "parameters (nonzero, deployed policy)"
Y_LABEL = "return (mean)"
_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
COLORS = {"trials": "#9e9e9e", "front": "#d62728", "dense": "#1f1f1f",
           "baseline": "#ff7f0e", "reeval": "#2ca02c"}


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
        insights: budget winners, importances and reuse commands (``insights.py``); None
            leaves those panels out.
        objectives: the study's objectives (config.objectives), return_mean first; with
            three or more the report adds pairwise projections and lists each in the table.

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
    insights: Insights | None = None
    objectives: list[str] = field(default_factory=lambda: list(DEFAULT_OBJECTIVES))

    def __post_init__(self) -> None:
        _require(self.trials, "trials", ("number", "state", "params_nonzero", "return_mean"))
        _require(self.front, "front", ("params_nonzero", "return_mean"))


def state_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Return the number of trials per state: COMPLETE, PRUNED, FAIL, RUNNING, then others."""
    found = _col(trials, "state").dropna().astype(str).value_counts()
    counts = {state: int(found.get(state, 0)) for state in _STATES}
    counts.update({str(s): int(n) for s, n in sorted(found.items()) if s not in counts})
    return counts


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


def numbers(df: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_col(df, name), errors="coerce").astype("float64")


def sorted_front(front: pd.DataFrame) -> pd.DataFrame:
    if "params_nonzero" not in front.columns:
        return front.reset_index(drop=True)
    return front.sort_values("params_nonzero", kind="stable").reset_index(drop=True)


def plottable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite return and params > 0 (the params axis is logarithmic), sorted."""
    x, y = numbers(df, "params_nonzero"), numbers(df, "return_mean")
    ok = (x > 0) & x.map(math.isfinite) & y.map(math.isfinite)
    return df[ok].sort_values("params_nonzero", kind="stable") if ok.any() else df.iloc[0:0]


def complete_rows(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[_col(trials, "state").astype(str) == "COMPLETE"]


def has_values(df: pd.DataFrame, columns: Sequence[str]) -> bool:
    return any(_col(df, c).notna().any() for c in columns)


def front_y(front: pd.DataFrame) -> str:
    """The return column the front was chosen on: re-evaluated means when present (the
    same choice as ``nas-prune best``), else the trials' own means."""
    return "reeval_mean" if has_values(front, ["reeval_mean"]) else "return_mean"


def knee_row(front: pd.DataFrame, objectives: Sequence[str] = DEFAULT_OBJECTIVES,
             hypervolume: Mapping[str, float] | None = None) -> Row | None:
    """The front's knee row (``costs.knee_position``: the 2-D rule for two objectives, the
    n-D one for more, in the hypervolume's box when ``hypervolume`` describes it), or None
    without plottable points."""
    box = hv_box(hypervolume)
    points = plottable(front)
    if points.empty:
        return None
    y = front_y(front)
    columns = {**objective_columns(objectives, points), "return_mean": y}
    i = knee_position(points, objectives, columns, box)
    row = dict(points.iloc[i])
    row["knee_y"] = row[y]
    return row


def hv_box(hypervolume: Mapping[str, float] | None) -> dict[str, float] | None:
    """The hypervolume's normalised box (``costs.normalized_costs``' keys) from a report's
    hypervolume figures, or None when they do not describe one."""
    if not hypervolume or "max_return" not in hypervolume or "ref_params" not in hypervolume:
        return None
    return {**hypervolume, "return_floor": float(hypervolume.get("ref_return", 0.0))}


def reeval_points(front: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Re-evaluated centre (IQM, else mean) with error-bar lengths to the 95% CI, and a label."""
    stat = "reeval_iqm" if has_values(front, ["reeval_iqm"]) else "reeval_mean"
    points = plottable(front)
    points = points[numbers(points, stat).map(math.isfinite)]
    if points.empty:
        return None
    y = numbers(points, stat)
    lo = numbers(points, "reeval_ci_lo").fillna(y)
    hi = numbers(points, "reeval_ci_hi").fillna(y)
    # Clipped at 0: a CI of the mean need not contain the IQM.
    out = pd.DataFrame({"x": numbers(points, "params_nonzero"), "y": y,
                        "minus": (y - lo).clip(lower=0.0), "plus": (hi - y).clip(lower=0.0)})
    return out, f"re-evaluated {'IQM' if stat == 'reeval_iqm' else 'mean'} (95% CI)"
