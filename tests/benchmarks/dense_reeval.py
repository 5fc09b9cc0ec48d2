"""Re-evaluate a sweep's cached dense agent on the fresh seeds the report re-evaluates its
front on (``results.reeval``: evaluation seeds ``seed * 1000 + k``, stream 2), so the front's
"IQM >= 90% of the dense return" compares like with like (the dense figure in the report is
its 20-episode trial evaluation).

    python -m tests.benchmarks.dense_reeval sweeps/minatar_space_invaders.yaml --out OUT
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from nas_prune.config.sweep import load_sweep
from nas_prune.results import stats
from nas_prune.results.reeval import REEVAL_STREAM
from nas_prune.rl.evaluation import evaluate
from nas_prune.trial.artifacts import load_tensors
from nas_prune.trial.dense_cache import DENSE_FILE, build_agent, dense_key, env_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="the sweep's out folder")
    ap.add_argument("--seeds", type=int, default=None, help="default: the sweep's reeval.seeds")
    ap.add_argument("--episodes", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sw = load_sweep(args.sweep, out=args.out)
    seeds = args.seeds or sw.config.reeval.seeds
    episodes = args.episodes or sw.config.reeval.episodes
    ref = sw.reference()
    path = sw.dense_cache / dense_key(ref) / DENSE_FILE
    agent = build_agent(ref, ref.seed)
    agent.load_state_tensors(load_tensors(path))
    returns: list[float] = []
    for k in range(seeds):
        res = evaluate(agent.policy, agent.head, env_spec(ref), episodes=episodes,
                       seed=ref.seed * 1000 + k, stream=REEVAL_STREAM)
        returns.extend(res.returns)
    arr = np.asarray(returns)
    lo, hi = stats.bootstrap_ci(arr, stat="iqm")
    print(f"{path}: dense re-evaluated on {seeds} x {episodes} fresh episodes: mean "
          f"{arr.mean():.2f}, IQM {stats.iqm(arr):.2f} [{lo:.2f}, {hi:.2f}]")
    agent.close()


if __name__ == "__main__":
    main()
