"""What the CLI verbs do, as plain functions (the CLI only parses and prints)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas_prune.checkpoint import load_policy
from nas_prune.config import TrialConfig, load_yaml, parse
from nas_prune.dense import env_spec
from nas_prune.evaluation import evaluate
from nas_prune.pareto import bootstrap_ci, iqm

Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def check_writable(directory: Path, field: str = "--out") -> None:
    """Fail before any training if ``directory`` cannot be created and written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # a probe of our own: workers sharing one --out check it at the same moment
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write_probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{field}: cannot write to {directory} ({exc.strerror or exc})") from None


def load_trial_config(path: Path | None, overrides: dict[str, Any], merge: Merge) -> TrialConfig:
    """A TrialConfig from an optional YAML file with CLI overrides on top."""
    data = load_yaml(path) if path is not None else {}
    return parse(TrialConfig, merge(data, overrides))  # type: ignore[no-any-return]


def trial(path: Path | None, overrides: dict[str, Any], *, out: Path | None,
          cache: Path | None, seeds: int, merge: Merge) -> None:
    """Run a trial (or the same trial on ``seeds`` consecutive seeds); print JSON lines."""
    from nas_prune.trial import run_trial

    cfg = load_trial_config(path, overrides, merge)
    if seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {seeds}")
    out = out or Path("runs") / f"trial-{cfg.agent.name}-{cfg.pruning.method}-s{cfg.seed}"
    check_writable(out)
    rows = []
    for k in range(seeds):
        cfg_k = cfg.model_copy(update={"seed": cfg.seed + k}) if k else cfg
        where = out if seeds == 1 else out / f"seed-{cfg_k.seed}"
        result = run_trial(cfg_k, cache_dir=cache, out=where)
        print(json.dumps(result.metrics), flush=True)
        rows.append(result.metrics)
    if seeds > 1:
        print(json.dumps(seed_summary(rows)))


def seed_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, IQM and 95% bootstrap interval of the per-seed mean returns."""
    means = np.array([r["return_mean"] for r in rows])
    lo, hi = bootstrap_ci(means, stat="mean")
    return {"seeds": [r["seed"] for r in rows], "return_means": means.tolist(),
            "mean": float(means.mean()), "iqm": float(iqm(means)), "ci95": [lo, hi],
            "params_nonzero": rows[0]["params_nonzero"]}


def evaluate_dir(directory: Path, *, episodes: int | None, seed: int | None) -> dict[str, Any]:
    """Evaluate the policy saved in a trial folder with its config's env."""
    cfg: TrialConfig = parse(TrialConfig, load_yaml(directory / "config.yaml"))
    net, head = load_policy(directory)
    n = episodes or cfg.eval.episodes
    s = seed if seed is not None else (cfg.eval.seed if cfg.eval.seed is not None else cfg.seed)
    threads = int(os.environ.get("NAS_PRUNE_THREADS", "1"))
    import torch

    torch.set_num_threads(threads)
    res = evaluate(net, head, env_spec(cfg), episodes=n, seed=s)
    return {"dir": str(directory), "episodes": n, "eval_seed": s, "return_mean": res.mean,
            "return_std": res.std, "return_iqm": res.iqm, "q_mean": res.q_mean,
            "returns": res.returns}
