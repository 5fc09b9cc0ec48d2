"""Dense-quality benchmark: our DQN / PPO against stable-baselines3 (rl-zoo hyperparameters)
on CartPole-v1, same env steps, same evaluation (100 greedy episodes), side by side.

    python -m tests.benchmarks.bench_dense --seeds 5            # ours only
    python -m tests.benchmarks.bench_dense --seeds 5 --sb3   # and SB3: pip install -e .[bench]

Solved: mean return >= 475 over 100 evaluation episodes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nas_prune.config import TrialConfig
from nas_prune.dense import build_agent, env_spec, train_dense
from nas_prune.evaluation import evaluate, evaluate_fn

STEPS = {"dqn": 50_000, "ppo": 100_000}
SOLVED = 475.0


def ours(agent: str, seed: int, snapshot_every: int) -> tuple[float, float]:
    cfg = TrialConfig.model_validate({
        "agent": {"name": agent, "train_steps": STEPS[agent],
                  "snapshot": {"every_steps": snapshot_every, "episodes": 20}},
        "seed": seed})
    torch.set_num_threads(1)
    start = time.perf_counter()
    tensors = train_dense(cfg)
    wall = time.perf_counter() - start
    a = build_agent(cfg, seed)
    a.load_state_tensors(tensors)
    res = evaluate(a.policy, a.head, env_spec(cfg), episodes=100, seed=10_000 + seed)
    return wall, res.mean


def sb3(agent: str, seed: int) -> tuple[float, float]:
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO

    torch.set_num_threads(1)
    if agent == "dqn":
        model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64,
                    buffer_size=100_000, learning_starts=1000, gamma=0.99,
                    target_update_interval=10, train_freq=256, gradient_steps=128,
                    exploration_fraction=0.16, exploration_final_eps=0.04,
                    policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu")
    else:
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
        lin = lambda v: (lambda p: p * v)  # noqa: E731
        model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                    n_epochs=20, ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2),
                    seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(STEPS[agent])
    wall = time.perf_counter() - start

    def policy(obs: np.ndarray) -> tuple[np.ndarray, None]:
        action, _ = model.predict(obs, deterministic=True)
        return action, None

    res = evaluate_fn(policy, env_spec(TrialConfig()), episodes=100, seed=10_000 + seed)
    del gym
    return wall, res.mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--agents", default="dqn,ppo")
    ap.add_argument("--sb3", action="store_true")
    ap.add_argument("--snapshot-every", type=int, default=2500)
    args = ap.parse_args()
    rows = []
    for agent in args.agents.split(","):
        impls = ["ours", "sb3"] if args.sb3 else ["ours"]
        for seed in range(args.seeds):  # interleaved: machine noise hits both sides alike
            for impl in impls:
                if impl == "ours":
                    wall, ret = ours(agent, seed, args.snapshot_every)
                else:
                    wall, ret = sb3(agent, seed)
                rows.append((agent, impl, seed, wall, ret))
                print(f"{agent:4s} {impl:5s} seed={seed} steps={STEPS[agent]} wall={wall:6.1f}s "
                      f"return={ret:6.1f}", flush=True)
    print("\nagent impl  steps   wall_s mean±std   return mean±std   solved(>=475)")
    for agent in args.agents.split(","):
        for impl in ["ours", "sb3"]:
            sel = [r for r in rows if r[0] == agent and r[1] == impl]
            if not sel:
                continue
            w = np.array([r[3] for r in sel])
            ret = np.array([r[4] for r in sel])
            print(f"{agent:5s} {impl:5s} {STEPS[agent]:6d} {w.mean():7.1f} ± {w.std():4.1f}   "
                  f"{ret.mean():6.1f} ± {ret.std():5.1f}   {(ret >= SOLVED).sum()}/{len(sel)}")


if __name__ == "__main__":
    main()
