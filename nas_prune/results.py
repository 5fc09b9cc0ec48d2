"""A sweep's results from its Optuna record: trials table, front, re-evaluation, baseline,
hypervolume -> ReportData. Reads the study; runs no training."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from nas_prune import pareto
from nas_prune.checkpoint import load_policy, sha256_file
from nas_prune.config import TrialConfig
from nas_prune.dense import env_spec
from nas_prune.evaluation import evaluate

SWEEP_ATTR = "sweep"  # study user attr: what the report needs without the sweep file
REEVAL_ATTR = "reeval"
METRICS_ATTR = "metrics"  # trial user attr: every metric of run_trial, one storage write
BASELINE_SUFFIX = ".baseline"
REEVAL_STREAM = 2  # evaluation seeds disjoint from trials' (0) and selection's (1)
CORE_COLUMNS = ["number", "state", "params_nonzero", "params_dense", "return_mean",
                "dense_return_mean", "hidden", "seed", "fail_reason"]


def trial_attrs(t: FrozenTrial) -> dict[str, Any]:
    """A trial's user attributes with its metrics dict (``METRICS_ATTR``) flattened in.

    The Optuna backend stores a trial's metrics as one attribute: one storage write, where
    one write per metric cost ~0.8 ms each on a journal file (~45 per trial). Studies that
    hold one attribute per metric (the Ray recorder, the baseline, older sweeps) read the same.
    """
    attrs = dict(t.user_attrs.get(METRICS_ATTR, {}))
    attrs.update((k, v) for k, v in t.user_attrs.items() if k != METRICS_ATTR)
    return attrs


def trial_row(t: FrozenTrial) -> dict[str, Any]:
    """One flat row per trial: state, scalar metrics, lists as text, config as JSON."""
    row: dict[str, Any] = {"number": t.number, "state": t.state.name}
    for key, value in trial_attrs(t).items():
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
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
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


def reevaluate(study: optuna.Study, rows: pd.DataFrame, *, seeds: int,
               episodes: int) -> dict[str, dict[str, Any]]:
    """Re-evaluate each row's saved policy on ``seeds`` fresh seeds x ``episodes``; results
    are kept in the study (keyed by trial number and checkpoint SHA-256) and reused."""
    store: dict[str, dict[str, Any]] = dict(study.user_attrs.get(REEVAL_ATTR, {}))
    changed = False
    for _, row in rows.iterrows():
        key = str(int(row["number"]))
        sha = row.get("policy_sha256")
        cached = store.get(key)
        if cached and cached.get("sha256") == sha and cached.get("n") == seeds * episodes:
            continue
        store[key] = reeval_policy(Path(str(row["out_dir"])), seeds=seeds, episodes=episodes)
        if sha and store[key]["sha256"] != sha:
            raise ValueError(f"trial {key}: checkpoint SHA-256 differs from the recorded one")
        changed = True
    if changed:
        study.set_user_attr(REEVAL_ATTR, store)
    return store


def reeval_policy(directory: Path, *, seeds: int, episodes: int) -> dict[str, Any]:
    """Mean, IQM and 95% bootstrap interval over ``seeds`` x ``episodes`` fresh episodes."""
    cfg = TrialConfig.model_validate_json(
        json.dumps(_yaml_to_dict(directory / "config.yaml")))
    net, head = load_policy(directory)
    returns: list[float] = []
    for k in range(seeds):
        res = evaluate(net, head, env_spec(cfg), episodes=episodes, seed=cfg.seed * 1000 + k,
                       stream=REEVAL_STREAM)
        returns.extend(res.returns)
    arr = np.asarray(returns)
    lo, hi = pareto.bootstrap_ci(arr, stat="iqm")
    spec = json.loads((directory / "policy.json").read_text())
    return {"mean": float(arr.mean()), "iqm": float(pareto.iqm(arr)), "ci_lo": lo, "ci_hi": hi,
            "n": int(arr.size), "sha256": spec.get("sha256")}


def _yaml_to_dict(path: Path) -> dict[str, Any]:
    from nas_prune.config import load_yaml

    return load_yaml(path)


def verify_checkpoints(rows: pd.DataFrame) -> None:
    """Every row's saved policy must still match the SHA-256 recorded with its trial."""
    for _, row in rows.iterrows():
        sha, out = row.get("policy_sha256"), row.get("out_dir")
        if not isinstance(sha, str) or not isinstance(out, str):
            continue
        path = Path(out) / "policy.safetensors"
        if not path.is_file():
            raise ValueError(f"trial {int(row['number'])}: checkpoint {path} is missing")
        if sha256_file(path) != sha:
            raise ValueError(f"trial {int(row['number'])}: checkpoint {path} does not match "
                             f"its recorded SHA-256 (modified after the trial)")


def with_reeval(rows: pd.DataFrame, store: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Add reeval_* columns from the store."""
    rows = rows.copy()
    for col in ("mean", "iqm", "ci_lo", "ci_hi", "n"):
        rows[f"reeval_{col}"] = [store.get(str(int(n)), {}).get(col, math.nan)
                                 for n in rows["number"]]
    return rows.rename(columns={"reeval_n": "reeval_episodes"})


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
