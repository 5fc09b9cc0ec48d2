"""SAC speed and quality benchmark: our SAC against stable-baselines3's with the same
hyperparameters and env steps, seeds interleaved, one torch thread each, side by side.

    python -m tests.benchmarks.bench_sac --envs pendulum --seeds 3
    python -m tests.benchmarks.bench_sac --envs hopper --seeds 1   # pip install -e .[mujoco]

Hyperparameters: SB3's SAC defaults ([256, 256] ReLU nets, batch 256, buffer 1e6, tau 0.005,
gamma 0.99, train_freq 1, gradient_steps 1, ent_coef auto, target entropy -dim(A)) with
rl-zoo's per-env changes (Pendulum-v1: lr 1e-3; MuJoCo: learning_starts 10,000). Returns are
the mean of 10 deterministic episodes on evaluation seeds 10,000 + seed, both sides through
``nas_prune.rl.evaluation``.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as np
import torch

from nas_prune.config.trial import TrialConfig
from nas_prune.rl.evaluation import EnvSpec
from tests.benchmarks.bench_dense import Run, sb3_timed, train_timed

EPISODES = 10
# name -> (env id, env steps, SB3 keyword arguments beyond its defaults)
ENVS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "pendulum": ("Pendulum-v1", 20_000, {"learning_rate": 1e-3}),
    "hopper": ("Hopper-v5", 50_000, {"learning_starts": 10_000}),
}
# SB3's argument names -> ours (agent.hyper)
OURS = {"learning_rate": "lr", "learning_starts": "learning_starts"}


def ours(env: str, seed: int) -> Run:
    env_id, steps, kw = ENVS[env]
    cfg = TrialConfig.model_validate({
        "env": {"id": env_id}, "seed": seed,
        "agent": {"name": "sac", "hidden": [256, 256], "train_steps": steps,
                  "hyper": {OURS[k]: v for k, v in kw.items()}}})
    return train_timed(cfg, seed, episodes=EPISODES)


def sb3(env: str, seed: int) -> Run:
    from stable_baselines3 import SAC

    env_id, steps, kw = ENVS[env]
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)  # SB3 as it ships (ours flushes: nas_prune.flatnet)
    model = SAC("MlpPolicy", env_id, seed=seed, device="cpu", **kw)
    return sb3_timed(model, steps, EnvSpec(env_id, {}, None), seed, episodes=EPISODES)


IMPLS: dict[str, Callable[[str, int], Run]] = {"ours": ours, "sb3": sb3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--envs", default="pendulum,hopper")
    ap.add_argument("--impls", default="ours,sb3")
    args = ap.parse_args()
    rows = []
    envs, impls = args.envs.split(","), args.impls.split(",")
    for env in envs:
        for seed in range(args.seeds):  # interleaved: machine noise hits both sides alike
            for impl in impls:
                wall, ret = IMPLS[impl](env, seed)
                rows.append((env, impl, seed, wall, ret))
                print(f"{env} {impl} seed={seed} steps={ENVS[env][1]} wall={wall:.1f}s "
                      f"return={ret:.1f}", flush=True)
    _table(rows, envs, impls)


def _table(rows: list[tuple[str, str, int, float, float]], envs: list[str],
           impls: list[str]) -> None:
    print("\n| env | impl | steps | seeds | wall_s mean ± std | return mean ± std | wall / sb3 |")
    print("|---|---|---|---|---|---|---|")
    for env in envs:
        sb3_wall = [r[3] for r in rows if r[0] == env and r[1] == "sb3"]
        for impl in impls:
            sel = [r for r in rows if r[0] == env and r[1] == impl]
            if not sel:
                continue
            w, ret = np.array([r[3] for r in sel]), np.array([r[4] for r in sel])
            ratio = f"{w.mean() / np.mean(sb3_wall):.2f}" if sb3_wall else "-"
            print(f"| {ENVS[env][0]} | {impl} | {ENVS[env][1]} | {len(sel)} | "
                  f"{w.mean():.1f} ± {w.std():.1f} | {ret.mean():.1f} ± {ret.std():.1f} | "
                  f"{ratio} |")


if __name__ == "__main__":
    main()
