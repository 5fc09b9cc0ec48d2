"""A sweep's results from its Optuna record: trials table, front, re-evaluation, baseline,
hypervolume -> ReportData. Reads the study; runs no training."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from nas_prune.config.objectives import DEFAULT_OBJECTIVES, RETURN_LIKE
from nas_prune.results import pareto
from nas_prune.results.costs import column_of, dominance_costs, normalized_costs
from nas_prune.search.record import read as read_record

__all__ = ["BASELINE_SUFFIX", "CORE_COLUMNS", "SWEEP_ATTR", "complete", "dense_points",
           "front_of", "hypervolumes", "size_refs", "trial_row", "trials_frame"]

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


def front_of(df: pd.DataFrame, ret_col: str = "return_mean", *,
             objectives: Sequence[str] = DEFAULT_OBJECTIVES,
             columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The non-dominated rows over ``objectives`` (fixed directions; the return read from
    ``ret_col``, other objectives from ``columns`` or their own column), sorted by
    params_nonzero. Latencies within 5% of each other count as equal
    (``config.objectives.RELATIVE_TOLERANCE``), so noise cannot make a trade-off."""
    if df.empty:
        return df
    cols = {**(columns or {}), "return_mean": ret_col}
    costs, tol = dominance_costs(df, objectives, cols)
    front = df.iloc[pareto.front_indices_nd(costs, tol)]
    return front.sort_values("params_nonzero", kind="stable")


def dense_points(df: pd.DataFrame) -> pd.DataFrame:
    """Dense reference points: one per (channels, hidden, seed) among completed trials, with
    the ``out_dir`` of one of its trials."""
    done = complete(df)
    if done.empty or "params_dense" not in done:
        return pd.DataFrame(columns=["params_nonzero", "return_mean", "hidden", "seed"])
    # trials trained from scratch (during / sparse) have no dense agent: NaN figures
    done = done[np.isfinite(pd.to_numeric(done["dense_return_mean"], errors="coerce"))]
    if done.empty:
        return pd.DataFrame(columns=["params_nonzero", "return_mean", "hidden", "seed"])
    # one dense agent per architecture and seed (a CNN's conv channels are part of it)
    keys = ["channels", "hidden", "seed"] if "channels" in done else ["hidden", "seed"]
    g = done.groupby(keys, as_index=False, dropna=False).first()
    out = pd.DataFrame({"params_nonzero": g["params_dense"], "return_mean":
                        g["dense_return_mean"], "hidden": g["hidden"], "seed": g["seed"]})
    if "channels" in g:
        out["channels"] = g["channels"]
    if "out_dir" in g:  # one of its trials: its config names the dense agent
        out["out_dir"] = g["out_dir"]
    if "dense_return_noise" in g:  # eval.noise_std > 0: the dense policy under noise
        out["return_noise"] = g["dense_return_noise"]
    return out


def hypervolumes(front: pd.DataFrame, baseline: pd.DataFrame, info: dict[str, Any],
                 ret_col: str, *, objectives: Sequence[str] = DEFAULT_OBJECTIVES
                 ) -> dict[str, float]:
    """Normalised hypervolumes of the searched and baseline fronts over the objectives,
    and their ratio (n-D, exact: ``pareto.hypervolume_nd``).

    The box (``costs.normalized_costs``): returns between the return floor and
    ``max_return``; every size on log10 from 1 unit up to its reference: the dense
    parameters of the reference architecture (``ref_params``) and, for the other sizes,
    ``info["ref_<name>"]`` (``size_refs``). With the default objectives this is the 2-D
    normalised hypervolume with log10 params.
    """
    box = {"ref_params": info["ref_params"], "return_floor": info["return_floor"],
           "max_return": info["max_return"],
           **{k: v for k, v in info.items() if k.startswith(("ref_", "low_"))}}

    def hv(d: pd.DataFrame, col: str) -> float:
        if d.empty:
            return 0.0
        cols = {n: column_of(n, d) for n in objectives}
        cols["return_mean"] = col
        costs = normalized_costs(d, objectives, box, cols)
        return pareto.hypervolume_nd(costs, np.ones(len(objectives)))

    out = {"searched": hv(front, ret_col), "ref_params": float(box["ref_params"]),
           "ref_return": float(box["return_floor"]), "max_return": float(box["max_return"])}
    out.update({f"{k}_{n}": float(box[f"{k}_{n}"]) for n in objectives for k in ("ref", "low")
                if n not in RETURN_LIKE and n != "params_nonzero" and f"{k}_{n}" in box})
    if not baseline.empty:
        b_col = ret_col if ret_col in baseline else "return_mean"
        out["baseline"] = hv(baseline, b_col)
        out["ratio"] = out["searched"] / out["baseline"] if out["baseline"] > 0 else math.inf
    return out


def size_refs(frames: Sequence[pd.DataFrame], objectives: Sequence[str]) -> dict[str, float]:
    """The box of each size objective besides params (macs_nonzero, bytes, latency_us):
    ``ref_<name>``, the largest value among ``frames`` (the study's and the baseline's
    complete trials, re-measured latencies included), and ``low_<name>``, the smallest.
    Both fronts share one box; the worst measured point sits on its edge, as the dense
    reference does for params. A latency cannot approach 1 µs, nor a file 1 byte, so the
    axis starts at the best measured value rather than at 1 unit."""
    out: dict[str, float] = {}
    for name in objectives:
        if name in RETURN_LIKE or name == "params_nonzero":
            continue
        values = [pd.to_numeric(f[c], errors="coerce") for f in frames
                  for c in (name, column_of(name, f)) if c in f.columns]
        top = max((float(v.max()) for v in values if v.notna().any()), default=math.nan)
        low = min((float(v.min()) for v in values if v.notna().any()), default=math.nan)
        ok = math.isfinite(top) and math.isfinite(low) and low > 0
        out[f"ref_{name}"], out[f"low_{name}"] = (top, low) if ok else (2.0, 1.0)
    return out
