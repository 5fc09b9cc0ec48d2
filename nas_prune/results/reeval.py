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
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.artifacts import load_policy, load_tensors, sha256_file
from nas_prune.trial.dense_cache import env_spec

__all__ = ["DENSE_REEVAL_ATTR", "LATENCY_ATTR", "LATENCY_RUNS", "REEVAL_ATTR", "REEVAL_STREAM",
           "reeval_policy", "reevaluate", "reevaluate_dense", "remeasure_latency",
           "verify_checkpoints", "with_dense_reeval", "with_latency", "with_reeval"]

REEVAL_ATTR = "reeval"
DENSE_REEVAL_ATTR = "reeval_dense"  # study user attr: dense key -> its re-evaluation
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
    cfg = _trial_config(directory)
    net, head = load_policy(directory)
    spec = json.loads((directory / "policy.json").read_text())
    return {**_fresh_returns(net, head, cfg, seeds, episodes), "sha256": spec.get("sha256")}


def _trial_config(directory: Path) -> TrialConfig:
    return TrialConfig.model_validate_json(json.dumps(_yaml_to_dict(directory / "config.yaml")))


def _fresh_returns(net: PrunableNet, head: Head, cfg: TrialConfig, seeds: int,
                   episodes: int) -> dict[str, Any]:
    # the evaluation seeds every re-evaluation of a trial of seed cfg.seed uses: the front's
    # points and their dense agent are measured on the same episodes
    returns: list[float] = []
    for k in range(seeds):
        res = evaluate(net, head, env_spec(cfg), episodes=episodes, seed=cfg.seed * 1000 + k,
                       stream=REEVAL_STREAM)
        returns.extend(res.returns)
    arr = np.asarray(returns)
    lo, hi = stats.bootstrap_ci(arr, stat="iqm")
    return {"mean": float(arr.mean()), "iqm": float(stats.iqm(arr)), "ci_lo": lo, "ci_hi": hi,
            "n": int(arr.size)}


def reevaluate_dense(study: optuna.Study, dense: pd.DataFrame, cache: Path | None, *,
                     seeds: int, episodes: int) -> dict[str, dict[str, Any]]:
    """Re-evaluate each dense reference (a row of ``results.study.dense_points``, with the
    ``out_dir`` of one of its trials) from the sweep's dense cache ``cache`` on the fresh
    episodes its pruned trials are re-evaluated on, so "% of the dense return" compares
    like with like. Kept in the study, keyed by dense key and the cached file's SHA-256. A
    dense agent missing from the cache (a cache moved or deleted, a trial trained from
    scratch) is left out."""
    from nas_prune.trial.dense_cache import DENSE_FILE, build_agent, dense_key

    store: dict[str, dict[str, Any]] = dict(study.user_attrs.get(DENSE_REEVAL_ATTR, {}))
    changed = False
    for _, row in dense.iterrows():
        out_dir = row.get("out_dir")
        if cache is None or not isinstance(out_dir, str) or \
                not (Path(out_dir) / "config.yaml").is_file():
            continue
        cfg = _trial_config(Path(out_dir))
        key = dense_key(cfg)
        path = cache / key / DENSE_FILE
        if not path.is_file():
            continue
        sha = sha256_file(path)
        cached = store.get(key)
        if cached and cached.get("sha256") == sha and cached.get("n") == seeds * episodes:
            continue
        agent = build_agent(cfg, cfg.seed)
        try:
            agent.load_state_tensors(load_tensors(path))
            store[key] = {**_fresh_returns(agent.policy, agent.head, cfg, seeds, episodes),
                          "sha256": sha}
        finally:
            agent.close()
        changed = True
    if changed:
        study.set_user_attr(DENSE_REEVAL_ATTR, store)
    return store


def with_dense_reeval(dense: pd.DataFrame, front: pd.DataFrame, store: dict[str, dict[str, Any]]
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add reeval_* columns to the dense references found in ``store`` and, to each front
    point of the same dense agent (channels, hidden, seed), ``reeval_iqm_pct_dense``: its
    re-evaluated IQM as a percentage of that dense agent's, where that is positive (for a
    dense IQM of zero or below a percentage would mislead: none is given)."""
    from nas_prune.trial.dense_cache import dense_key

    dense, front = dense.copy(), front.copy()
    found: list[dict[str, Any]] = []
    for _, row in dense.iterrows():
        out_dir = row.get("out_dir")
        hit: dict[str, Any] = {}
        if isinstance(out_dir, str) and (Path(out_dir) / "config.yaml").is_file():
            hit = store.get(dense_key(_trial_config(Path(out_dir))), {})
        found.append(hit)
    for col in ("mean", "iqm", "ci_lo", "ci_hi", "n"):
        dense[f"reeval_{col}"] = [hit.get(col, math.nan) for hit in found]
    dense = dense.rename(columns={"reeval_n": "reeval_episodes"})
    keys = [k for k in ("channels", "hidden", "seed") if k in dense and k in front]
    pct = []
    for _, row in front.iterrows():
        match = dense
        for k in keys:
            match = match[match[k].astype(str) == str(row.get(k))]
        ref = float(match["reeval_iqm"].iloc[0]) if len(match) else math.nan
        # a ratio reads as "kept X%" only over a positive dense return (-150 / -140 would
        # read 107% for a worse policy): none otherwise
        pct.append(100.0 * float(row.get("reeval_iqm", math.nan)) / ref
                   if math.isfinite(ref) and ref > 0 else math.nan)
    front["reeval_iqm_pct_dense"] = pct
    return dense, front


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
