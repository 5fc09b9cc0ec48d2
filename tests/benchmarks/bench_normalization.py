"""Observation normalisation and reward scaling, measured: PPO on a continuous-control task
with and without ``normalize_obs`` / ``normalize_reward``, same hyperparameters, env steps
and evaluation, side by side (mean +- std over seeds of each run's mean greedy return).

    python -m tests.benchmarks.bench_normalization --seeds 3                  # Pendulum-v1
    python -m tests.benchmarks.bench_normalization --env LunarLanderContinuous-v3 --steps 200000

Hyperparameters: rl-zoo's PPO for Pendulum-v1 (n_envs 4, n_steps 1024, batch 64, 10 epochs,
gamma 0.9, GAE 0.95, lr 1e-3, clip 0.2, constant), without its gSDE exploration (not
implemented here); [64, 64] tanh actor and critic.
"""
from __future__ import annotations

import argparse

import numpy as np

from nas_prune.config.trial import TrialConfig
from tests.benchmarks.bench_dense import train_timed

HYPER = {"n_envs": 4, "n_steps": 1024, "batch_size": 64, "n_epochs": 10, "gamma": 0.9,
         "gae_lambda": 0.95, "lr": 1e-3, "clip_range": 0.2, "linear_decay": False}
VARIANTS = {"plain": {}, "normalize_obs": {"normalize_obs": True},
            "obs + reward": {"normalize_obs": True, "normalize_reward": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.env}, PPO, {args.steps} env steps, {args.seeds} seeds, "
          f"{args.episodes} greedy episodes each")
    print(f"{'variant':<16} {'return mean +- std over seeds':>30} {'wall s':>8}  per seed")
    for name, switches in VARIANTS.items():
        runs = [train_timed(TrialConfig.model_validate({
            "env": {"id": args.env},
            "agent": {"name": "ppo", "train_steps": args.steps,
                      "hyper": {**HYPER, **switches}}, "seed": seed}), seed,
            episodes=args.episodes) for seed in range(args.seeds)]
        walls, returns = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
        print(f"{name:<16} {returns.mean():>20.1f} +- {returns.std():<7.1f} "
              f"{walls.mean():>8.1f}  {', '.join(f'{r:.0f}' for r in returns)}", flush=True)


if __name__ == "__main__":
    main()
