"""Trial cost with the dense cache: a prune + fine-tune + evaluate trial against training its
dense agent from scratch, on the shipped sweeps' own budgets and search spaces.

    python -m tests.benchmarks.bench_trial_cost [--sweeps sweeps/cartpole_quick.yaml,...]
        [--trials 8]

For each sweep, every dense width of its space is trained once from scratch (timed: that is
``dense_s``), then ``--trials`` configs drawn by a seeded random sampler run one after the
other against the cache (each trial's wall time, with early stopping off). ``ratio`` is a
trial's wall time over the from-scratch training time of its own width; the table gives
its mean, spread and maximum. 1 torch thread, one process, trials run sequentially.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from nas_prune.config.space import hidden_choices, suggest
from nas_prune.config.sweep import Sweep, load_sweep
from nas_prune.trial.dense_cache import obtain_dense
from nas_prune.trial.run import run_trial

DEFAULT = "sweeps/cartpole_quick.yaml,sweeps/cartpole_ppo.yaml,sweeps/cartpole_dqn.yaml"


def _dense_walls(sw: Sweep, cache: Path) -> dict[tuple[int, ...], float]:
    """Train every width of the space into the cache; its from-scratch wall time."""
    from nas_prune.config.trial import with_picks

    walls = {}
    for hidden in hidden_choices(sw.space):
        start = time.perf_counter()
        obtain_dense(with_picks(sw.template(), hidden=hidden, pruning={}), cache)
        walls[tuple(hidden)] = time.perf_counter() - start
    return walls


def bench(path: Path, trials: int, tmp: Path) -> list[str]:
    sw = load_sweep(path)
    cache = tmp / sw.config.name / "dense"
    walls = _dense_walls(sw, cache)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    ratios, trial_walls = [], []
    for _ in range(trials):
        cfg = suggest(study.ask(), sw.space, sw.template())
        start = time.perf_counter()
        run_trial(cfg, cache_dir=cache)
        wall = time.perf_counter() - start
        trial_walls.append(wall)
        ratios.append(wall / walls[tuple(cfg.agent.hidden or [])])
        print(f"  {sw.config.name}: {cfg.pruning.method}/{cfg.pruning.schedule}/"
              f"{cfg.pruning.finetune.mode} hidden={cfg.agent.hidden} "
              f"ft={cfg.pruning.finetune.steps} wall={wall:.2f}s ratio={ratios[-1]:.3f}",
              flush=True)
    dense = ", ".join(f"{list(h)}: {w:.1f}" for h, w in walls.items())
    r, w = np.array(ratios), np.array(trial_walls)
    return [f"{sw.config.name:14s} {sw.config.agent.name:4s} {w.mean():6.2f} ± {w.std():5.2f}  "
            f"{r.mean():5.3f} ± {r.std():5.3f}  {r.max():5.3f}   dense_s {dense}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sweeps", default=DEFAULT)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nas_prune_cost_"))
    lines = []
    for path in args.sweeps.split(","):
        lines += bench(Path(path), args.trials, tmp)
    print(f"\n{args.trials} random trials per sweep, dense cache warm, 1 torch thread")
    print(f"{'sweep':14s} {'agent':4s} {'trial_s':>15s}  {'ratio mean±std':>14s}  {'max':>5s}")
    print("\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
