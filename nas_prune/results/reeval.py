"""Re-evaluation of saved policies on fresh seeds (cached in the study); checkpoint checks."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from nas_prune.config.trial import TrialConfig
from nas_prune.results import stats
from nas_prune.rl.evaluation import evaluate
from nas_prune.trial.artifacts import load_policy, sha256_file
from nas_prune.trial.dense_cache import env_spec

__all__ = ["LATENCY_ATTR", "LATENCY_RUNS", "REEVAL_ATTR", "REEVAL_STREAM", "reeval_policy",
           "reevaluate", "remeasure_latency", "verify_checkpoints", "with_latency",
           "with_reeval"]

REEVAL_ATTR = "reeval"
LATENCY_ATTR = "latency_remeasured"  # study user attr: trial number -> re-measured latency
LATENCY_RUNS = 3  # fresh measurements per front point (each: 200 timed forwards)


REEVAL_STREAM = 2  # evaluation seeds disjoint from trials' (0) and selection's (1)


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
    lo, hi = stats.bootstrap_ci(arr, stat="iqm")
    spec = json.loads((directory / "policy.json").read_text())
    return {"mean": float(arr.mean()), "iqm": float(stats.iqm(arr)), "ci_lo": lo, "ci_hi": hi,
            "n": int(arr.size), "sha256": spec.get("sha256")}


def remeasure_latency(study: optuna.Study, rows: pd.DataFrame, *,
                      runs: int = LATENCY_RUNS) -> dict[str, dict[str, Any]]:
    """Measure each row's saved policy's batch-1 latency again, ``runs`` times, on this
    machine, as the report's figure: the median of the runs' medians (and the largest IQR).
    A lucky first reading cannot keep a point on the front. Kept in the study (keyed by
    trial number and checkpoint SHA-256), so a report recomputed later shows the same."""
    from nas_prune.trial.deployed import latency_metrics

    store: dict[str, dict[str, Any]] = dict(study.user_attrs.get(LATENCY_ATTR, {}))
    changed = False
    for _, row in rows.iterrows():
        key, sha = str(int(row["number"])), row.get("policy_sha256")
        cached = store.get(key)
        if cached and cached.get("sha256") == sha and cached.get("runs") == runs:
            continue
        net, _ = load_policy(Path(str(row["out_dir"])))
        found = [latency_metrics(net) for _ in range(runs)]
        store[key] = {"us": float(np.median([f["latency_us"] for f in found])),
                      "iqr_us": max(float(f["latency_iqr_us"]) for f in found),
                      "method": found[0]["latency_method"], "runs": runs, "sha256": sha}
        changed = True
    if changed:
        study.set_user_attr(LATENCY_ATTR, store)
    return store


def with_latency(rows: pd.DataFrame, store: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Add ``latency_remeasured_us`` (and its IQR) from the store."""
    rows = rows.copy()
    for col, key in (("latency_remeasured_us", "us"), ("latency_remeasured_iqr_us", "iqr_us")):
        rows[col] = [store.get(str(int(n)), {}).get(key, math.nan) for n in rows["number"]]
    return rows


def _yaml_to_dict(path: Path) -> dict[str, Any]:
    from nas_prune.config.base import load_yaml

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
