"""Pruning while training against pruning after training (issue 15): CartPole DQN and
LunarLander PPO, five families x sparsities -> re-evaluated IQM over seeds and the env steps
each point costs. Prints a markdown table.

    python -m tests.benchmarks.bench_sparse_training            # the README table
    python -m tests.benchmarks.bench_sparse_training --seeds 1 --cartpole-steps 5000 \\
        --lunar-steps 20000 --sparsities 0.9 --envs cartpole    # a smoke run

Families (unstructured, uniform per-layer sparsity, so only the schedule differs):
post (gradual magnitude pruning of the trained dense agent in 4 cubic steps, distillation
from it), during (GMP from 20% to 80% of training, 10 steps), SET, RigL and static random
(sparse from the first step). The post-training family's dense agent is trained once per
seed and shared by its sparsities (a cache); its cost column counts one dense training plus
its fine-tuning, what the point costs on its own.

Re-evaluation: every final policy on ``--reeval-episodes`` (CartPole) or
``--lunar-reeval-episodes`` fresh episodes (evaluation seed
10,000 + seed, disjoint from the trial's own); IQM over all seeds' episodes pooled, and the
mean ± std of the per-seed means.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_prune.config.base import parse
from nas_prune.config.trial import TrialConfig
from nas_prune.results.stats import iqm
from nas_prune.rl.evaluation import evaluate
from nas_prune.rl.optim.flatnet import gradient_steps_taken
from nas_prune.trial.dense_cache import build_agent, env_spec, obtain_dense
from nas_prune.trial.run import run_trial

REEVAL_SEED = 10_000

FAMILIES: dict[str, dict[str, Any]] = {
    "post gradual+distill": {"method": "magnitude", "schedule": "gradual", "steps": 4},
    "during GMP": {"method": "magnitude", "schedule": "during", "steps": 10},
    "sparse SET": {"method": "set", "schedule": "sparse"},
    "sparse RigL": {"method": "rigl", "schedule": "sparse"},
    "sparse static": {"method": "random", "schedule": "sparse"},
}


def env_base(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The trial config of one environment (snapshots off: every family its last iterate)."""
    if name == "cartpole":
        return {"env": {"id": "CartPole-v1"},
                "agent": {"name": "dqn", "train_steps": args.cartpole_steps},
                "finetune_steps": args.cartpole_finetune}
    return {"env": {"id": "LunarLander-v3"},
            "agent": {"name": "ppo", "train_steps": args.lunar_steps, "hyper": {
                "n_envs": 16, "n_steps": 1024, "batch_size": 64, "gae_lambda": 0.98,
                "gamma": 0.999, "n_epochs": 4, "ent_coef": 0.01, "lr": 3.0e-4,
                "linear_decay": False}},  # the LunarLander sweep's (rl-zoo) hyperparameters
            "finetune_steps": args.lunar_finetune}


def trial_config(base: dict[str, Any], family: dict[str, Any], sparsity: float,
                 seed: int) -> TrialConfig:
    post = family["schedule"] == "gradual"
    finetune = {"mode": "distill", "steps": base["finetune_steps"]} if post else {"steps": 0}
    return parse(TrialConfig, {  # type: ignore[no-any-return]
        "env": base["env"], "agent": base["agent"], "seed": seed, "eval": {"episodes": 10},
        "pruning": {**family, "sparsity": sparsity, "finetune": finetune}})


def reevaluate(policy: torch.nn.Module, cfg: TrialConfig, head: Any,
               episodes: int) -> list[float]:
    res = evaluate(policy, head, env_spec(cfg), episodes=episodes,  # type: ignore[arg-type]
                   seed=REEVAL_SEED + cfg.seed)
    return list(res.returns)


def train_dense_agents(base: dict[str, Any], seeds: list[int], cache: Path,
                       episodes: int) -> tuple[list[float], dict[int, int]]:
    """Train (and cache) the dense agents the post-training family prunes; re-evaluate them
    the same way. Returns the pooled returns and each seed's dense gradient steps."""
    pooled: list[float] = []
    grads = {}
    for seed in seeds:
        cfg = trial_config(base, FAMILIES["post gradual+distill"], 0.0, seed)
        before = gradient_steps_taken()
        tensors = obtain_dense(cfg, cache).tensors
        grads[seed] = gradient_steps_taken() - before
        agent = build_agent(cfg, seed)
        agent.load_state_tensors(tensors)
        pooled += reevaluate(agent.policy, cfg, agent.head, episodes)
        agent.close()
    return pooled, grads


def fmt(returns: list[list[float]]) -> str:
    means = [float(np.mean(r)) for r in returns]
    pooled = [x for r in returns for x in r]
    return f"{iqm(pooled):.1f} ({np.mean(means):.1f} ± {np.std(means):.1f})"


def run_env(name: str, args: argparse.Namespace, cache: Path) -> list[str]:
    base = env_base(name, args)
    episodes = args.reeval_episodes if name == "cartpole" else args.lunar_reeval_episodes
    dense, dense_grads = train_dense_agents(base, list(range(args.seeds)), cache, episodes)
    rows = [f"| {name} | dense (the post family's teacher) | 0 | — | {iqm(dense):.1f} | "
            f"{base['agent']['train_steps']:,} | {np.mean(list(dense_grads.values())):,.0f} "
            f"| — |"]
    print(rows[-1], flush=True)
    for family_name, family in FAMILIES.items():
        for s in args.sparsities:
            returns, steps, grads, nonzero, wall = [], [], [], [], []
            for seed in range(args.seeds):
                cfg = trial_config(base, family, s, seed)
                t0 = time.perf_counter()
                r = run_trial(cfg, cache_dir=cache)
                wall.append(time.perf_counter() - t0)
                m = r.metrics
                returns.append(reevaluate(r.policy, cfg, r.head, episodes))
                # what the point costs alone: the post family's shared (cached) dense
                # training is counted in full
                post = family["schedule"] == "gradual"
                steps.append(cfg.agent.train_steps * post + int(m.env_steps or 0))
                grads.append(dense_grads[seed] * post + int(m.gradient_steps or 0))
                nonzero.append(int(m.params_nonzero or 0))
            rows.append(f"| {name} | {family_name} | {s} | {int(np.mean(nonzero))} | "
                        f"{fmt(returns)} | {np.mean(steps):,.0f} | {np.mean(grads):,.0f} | "
                        f"{np.mean(wall):.1f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sparsities", type=lambda s: [float(x) for x in s.split(",")],
                    default=[0.8, 0.9, 0.95])
    ap.add_argument("--envs", default="cartpole,lunar")
    ap.add_argument("--cartpole-steps", type=int, default=50_000)
    ap.add_argument("--cartpole-finetune", type=int, default=10_000)
    ap.add_argument("--lunar-steps", type=int, default=262_144)  # 16 PPO rollouts of 16,384
    ap.add_argument("--lunar-finetune", type=int, default=49_152)
    ap.add_argument("--reeval-episodes", type=int, default=100)
    ap.add_argument("--lunar-reeval-episodes", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    header = ("| env | family | sparsity | params_nonzero | re-eval IQM (mean ± std of seed "
              "means) | env steps per point | gradient steps | wall_s per trial |\n"
              "|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.envs.split(","):
            rows += run_env(name, args, Path(tmp))
    print(f"\n{header}\n" + "\n".join(rows))
    print(f"\nseeds {args.seeds}, re-evaluation {args.reeval_episodes} (CartPole) / "
          f"{args.lunar_reeval_episodes} (LunarLander) episodes per seed; budgets: CartPole "
          f"{args.cartpole_steps:,} train + {args.cartpole_finetune:,} distill, LunarLander "
          f"{args.lunar_steps:,} + {args.lunar_finetune:,}; total "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
