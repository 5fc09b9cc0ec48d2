"""A sweep's objectives as cost matrices for ``results.pareto``'s n-D functions: which
column holds each objective (re-evaluated returns, re-measured latency), every column
turned into a minimised cost, and the normalised box the hypervolume is measured in."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from nas_prune.config.objectives import (
    DEFAULT_OBJECTIVES,
    RELATIVE_TOLERANCE,
    RETURN_LIKE,
    direction,
)

__all__ = ["REMEASURED", "column_of", "dominance_costs", "knee_position", "normalized_costs",
           "objective_columns", "raw_costs"]

REMEASURED = {"return_mean": "reeval_mean", "latency_us": "latency_remeasured_us"}


def objective_columns(objectives: Sequence[str], df: pd.DataFrame) -> dict[str, str]:
    """objective -> the column that holds it in ``df``: the re-evaluated mean return and the
    re-measured latency where ``df`` has them (the report re-measures front points), else
    the trial's own figure."""
    return {name: column_of(name, df) for name in objectives}


def column_of(name: str, df: pd.DataFrame) -> str:
    """The column holding objective ``name`` in ``df`` (see ``objective_columns``)."""
    again = REMEASURED.get(name)
    if again and again in df.columns and pd.to_numeric(df[again], errors="coerce").notna().any():
        return again
    return name


def _values(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)


def raw_costs(df: pd.DataFrame, objectives: Sequence[str],
              columns: Mapping[str, str] | None = None) -> np.ndarray:
    """One row per row of ``df``, one minimised cost per objective (a maximised one
    negated). Dominance only needs the order, so no scaling."""
    columns = columns or {}
    cols = [_values(df, columns.get(n, n)) * (-1.0 if direction(n) == "maximize" else 1.0)
            for n in objectives]
    return np.column_stack(cols) if cols else np.empty((len(df), 0))


def dominance_costs(df: pd.DataFrame, objectives: Sequence[str],
                    columns: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``raw_costs`` and the per-column tolerance fronts are chosen with: an objective with a
    relative tolerance (``RELATIVE_TOLERANCE``: latency) enters as its log, so values within
    that fraction of each other count as equal."""
    costs = raw_costs(df, objectives, columns)
    tol = np.zeros(len(objectives))
    for j, name in enumerate(objectives):
        rel = RELATIVE_TOLERANCE.get(name)
        if rel:
            with np.errstate(divide="ignore", invalid="ignore"):
                costs[:, j] = np.log(costs[:, j])
            tol[j] = np.log1p(rel)
    return costs, tol


def normalized_costs(df: pd.DataFrame, objectives: Sequence[str], box: Mapping[str, float],
                     columns: Mapping[str, str] | None = None) -> np.ndarray:
    """Costs in the unit box whose worst corner (1, ..., 1) is the hypervolume's reference.

    Returns (``return_mean``, ``return_noise``): ``(top - min(r, top)) / (top - floor)`` with
    ``box["max_return"]`` and ``box["return_floor"]``. Sizes (every minimised objective): a
    log10 axis from ``box["low_<name>"]`` (default 1 unit) up to the reference,
    ``box["ref_params"]`` for params_nonzero and ``box["ref_<name>"]`` for the others. With
    two objectives (return, params) this is the box of ``pareto.normalized_hypervolume(...,
    log_params=True)``.

    Raises:
        ValueError: a missing reference, a reference <= 1, or ``max_return <= return_floor``.
    """
    columns = columns or {}
    top, floor = float(box["max_return"]), float(box["return_floor"])
    if not top > floor:
        raise ValueError(f"max_return must be > return_floor, got {top} and {floor}")
    cols = []
    for name in objectives:
        v = _values(df, columns.get(name, name))
        if name in RETURN_LIKE:
            cols.append((top - np.minimum(v, top)) / (top - floor))
            continue
        key = "ref_params" if name == "params_nonzero" else f"ref_{name}"
        ref, low = box.get(key), float(box.get(f"low_{name}", 1.0))
        if ref is None or not float(ref) >= low > 0:
            raise ValueError(f"{key}: the hypervolume needs a reference >= {low} for {name}, "
                             f"got {ref}")
        span = np.log10(float(ref)) - np.log10(low)
        lg = np.log10(np.clip(v, low, None)) - np.log10(low)
        # a zero-width axis (every point alike) adds nothing: all points at its best end
        cols.append(lg / span if span > 0 else np.where(v <= float(ref), 0.0, 2.0))
    return np.column_stack(cols)


def knee_position(front: pd.DataFrame, objectives: Sequence[str] = DEFAULT_OBJECTIVES,
                  columns: Mapping[str, str] | None = None,
                  box: Mapping[str, float] | None = None) -> int:
    """Position (0-based, in ``front``'s order) of the front's knee.

    Two objectives (return and a size): ``pareto.knee_index``, the point farthest from the
    line joining the front's extremes (size on log10). Three or more: ``pareto.
    knee_index_nd``, the point nearest the ideal corner of the hypervolume's normalised box
    (``normalized_costs``: returns over [floor, top], sizes on log10 over their range);
    without a box, of the front's own range scaled to [0, 1] per objective. The box keeps
    an objective whose front values barely differ (latency within noise) from weighing
    as much as the return.

    Raises:
        ValueError: no finite points.
    """
    from nas_prune.results import pareto

    columns = columns or {}
    if len(objectives) == 2:
        size, ret = (columns.get(n, n) for n in (objectives[1], objectives[0]))
        return pareto.knee_index(_values(front, size), _values(front, ret))
    if box:
        unit = normalized_costs(front, objectives, box, columns)
        return pareto.knee_index_nd(np.clip(unit, 0.0, None), scaled=True)
    scaled = []
    for name in objectives:
        v = _values(front, columns.get(name, name))
        scaled.append(-v if name in RETURN_LIKE else np.log10(np.clip(v, 1.0, None)))
    return pareto.knee_index_nd(np.column_stack(scaled))
