"""A sweep's results from its Optuna record: trials table, front, re-evaluation, baseline,
hypervolume -> ReportData. Reads the study; runs no training."""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from nas_prune.results import pareto
from nas_prune.search.record import read as read_record

__all__ = ["BASELINE_SUFFIX", "CORE_COLUMNS", "SWEEP_ATTR", "complete", "dense_points",
           "front_of", "hypervolumes", "trial_row", "trials_frame"]

SWEEP_ATTR = "sweep"  # study user attr: what the report needs without the sweep file
BASELINE_SUFFIX = ".baseline"
CORE_COLUMNS = ["number", "state", "params_nonzero", "params_dense", "return_mean",
                "dense_return_mean", "hidden", "seed", "fail_reason"]


def trial_row(t: FrozenTrial) -> dict[str, Any]:
    """One flat row per trial: state, scalar metrics, lists as text, config as JSON."""
    row: dict[str, Any] = {"number": t.number, "state": t.state.name}
    for key, value in read_record(t).items():
        if key in ("returns", "iterative_log"):
            continue
        if key == "config":
            row["config"] = json.dumps(value, sort_keys=True)
        elif isinstance(value, list):
            row[key] = ",".join(_fmt(v) for v in value)
        else:
            row[key] = value
    row.setdefault("fail_reason", "")
    return row


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Every trial of a study as a DataFrame, sorted by trial number."""
    # WAITING: drawn for a later run of a reproducible sweep, not run yet
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING]
    df = pd.DataFrame(rows, columns=None if rows else CORE_COLUMNS)
    for col in CORE_COLUMNS:  # failed-only studies have no metric columns
        if col not in df:
            df[col] = math.nan
    return df.sort_values("number").reset_index(drop=True)


def complete(df: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials with finite objectives."""
    ok = (df["state"] == TrialState.COMPLETE.name) & np.isfinite(
        pd.to_numeric(df["return_mean"], errors="coerce")) & np.isfinite(
        pd.to_numeric(df["params_nonzero"], errors="coerce"))
    return df[ok]


def front_of(df: pd.DataFrame, ret_col: str = "return_mean") -> pd.DataFrame:
    """The non-dominated rows (params_nonzero down, ``ret_col`` up), sorted by params."""
    if df.empty:
        return df
    idx = pareto.front_indices(df["params_nonzero"].astype(float).tolist(),
                               df[ret_col].astype(float).tolist())
    return df.iloc[idx]












def dense_points(df: pd.DataFrame) -> pd.DataFrame:
    """Dense reference points: one per (hidden, seed) among completed trials."""
    done = complete(df)
    if done.empty or "params_dense" not in done:
        return pd.DataFrame(columns=["params_nonzero", "return_mean", "hidden", "seed"])
    g = done.groupby(["hidden", "seed"], as_index=False).first()
    return pd.DataFrame({"params_nonzero": g["params_dense"], "return_mean":
                         g["dense_return_mean"], "hidden": g["hidden"], "seed": g["seed"]})


def hypervolumes(front: pd.DataFrame, baseline: pd.DataFrame, info: dict[str, Any],
                 ret_col: str) -> dict[str, float]:
    """Normalised hypervolumes (log10 params) of the searched and baseline fronts, and ratio.

    Reference point: (dense parameters of the reference architecture, return floor); the
    box's top is ``max_return``; the parameter axis is log10 from 1 parameter.
    """
    ref_p, floor, top = info["ref_params"], info["return_floor"], info["max_return"]

    def hv(d: pd.DataFrame, col: str) -> float:
        if d.empty:
            return 0.0
        return pareto.normalized_hypervolume(
            d["params_nonzero"].astype(float).tolist(), d[col].astype(float).tolist(),
            ref_params=ref_p, ref_return=floor, max_return=top, log_params=True)

    out = {"searched": hv(front, ret_col), "ref_params": float(ref_p),
           "ref_return": float(floor), "max_return": float(top)}
    if not baseline.empty:
        b_col = ret_col if ret_col in baseline else "return_mean"
        out["baseline"] = hv(baseline, b_col)
        out["ratio"] = out["searched"] / out["baseline"] if out["baseline"] > 0 else math.inf
    return out
