"""Games benchmark: our DQN / PPO with the ``minatar`` CNN (Conv 16 x 3x3 stride 1 -> 128)
against stable-baselines3 with the same network, hyperparameters and env steps, on MinAtar
Breakout, side by side (seeds interleaved), one torch thread each.

    python -m tests.benchmarks.bench_games --seeds 3            # pip install -e .[games,bench]
    python -m tests.benchmarks.bench_games --seeds 3 --agents ppo --steps-ppo 100000
    python -m tests.benchmarks.bench_games --sweep sweeps/minatar_breakout.yaml --no-ours

``--sweep`` takes env, agent, hyperparameters and env steps from a sweep's dense agent, so
SB3 is measured at the sweep's frames (its dense agent is in the sweep's report; ``--no-ours``
skips training it again). SB3 has no double DQN, snapshots or reward/observation
normalisation: those switches of the sweep are dropped on its side.

Both sides read the same flat float32 observations (``rl.envs.make_env``: the (10, 10, 4)
bool frame flattened); SB3's features extractor reshapes them exactly as ``rl.cnn.CNN``
does. SB3's DQN is vanilla DQN, so ours runs with ``double: false``, and acts at random
until ``learning_starts`` as SB3's does (``random_warmup: true``); SB3's PPO gets
separate actor and critic networks (``share_features_extractor=False``), as ours has.
Returns: 20 greedy episodes per seed on fresh evaluation seeds.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nas_prune.config.trial import TrialConfig
from nas_prune.rl.envs import make_env, make_vec_env
from nas_prune.trial.dense_cache import env_spec
from tests.benchmarks.bench_dense import sb3_timed, train_timed

ENV = "MinAtar/Breakout-v1"
LIMIT = 5000  # env.max_episode_steps: MinAtar registers no time limit
CHANNELS = 4  # of the frame (Breakout: 4); main() reads it from the env
EPISODES = 20
SWEEP_HYPER: dict[str, dict[str, Any]] = {}  # agent -> a sweep's hyper (--sweep)
DQN = {"lr": 2.5e-4, "batch_size": 32, "buffer_size": 100_000, "learning_starts": 5_000,
       "gamma": 0.99, "train_freq": 4, "gradient_steps": 1, "target_update_interval": 1_000,
       "exploration_fraction": 0.5, "exploration_initial_eps": 1.0,
       "exploration_final_eps": 0.01, "max_grad_norm": 10.0}
PPO = {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 4, "lr": 2.5e-4,
       "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.1, "ent_coef": 0.01,
       "vf_coef": 0.5, "max_grad_norm": 0.5}


def _cfg(agent: str, steps: int, seed: int) -> TrialConfig:
    hyper = ({**DQN, "double": False, "random_warmup": True} if agent == "dqn"
             else {**PPO, "linear_decay": True, "ortho_init": True})
    hyper = {**hyper, **SWEEP_HYPER.get(agent, {})}
    return TrialConfig.model_validate({
        "env": {"id": ENV, "max_episode_steps": LIMIT},
        "agent": {"name": agent, "network": "minatar", "activation": "relu",
                  "train_steps": steps, "hyper": hyper}, "seed": seed})


def ours(agent: str, steps: int, seed: int) -> tuple[float, float]:
    return train_timed(_cfg(agent, steps, seed), seed, episodes=EPISODES)


def sb3(agent: str, steps: int, seed: int) -> tuple[float, float]:
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    class MinAtarCNN(BaseFeaturesExtractor):  # type: ignore[misc]
        """Conv 16 x 3x3 -> ReLU -> flatten -> 128 -> ReLU, over the flat frame."""

        def __init__(self, space: Any) -> None:
            super().__init__(space, features_dim=128)
            self.conv = nn.Sequential(nn.Conv2d(CHANNELS, 16, 3, 1), nn.ReLU())
            self.fc = nn.Sequential(nn.Linear(16 * 8 * 8, 128), nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(-1, 10, 10, CHANNELS).permute(0, 3, 1, 2)
            return self.fc(self.conv(x).flatten(1))

    torch.set_num_threads(1)
    kw = {"features_extractor_class": MinAtarCNN, "net_arch": []}
    if agent == "dqn":
        h = {**DQN, **SWEEP_HYPER.get(agent, {})}
        model = SB3DQN("MlpPolicy", make_env(ENV, max_episode_steps=LIMIT),
                       learning_rate=h["lr"], batch_size=h["batch_size"],
                       buffer_size=h["buffer_size"], learning_starts=h["learning_starts"],
                       gamma=h["gamma"], train_freq=h["train_freq"],
                       gradient_steps=h["gradient_steps"],
                       target_update_interval=h["target_update_interval"],
                       exploration_fraction=h["exploration_fraction"],
                       exploration_initial_eps=h["exploration_initial_eps"],
                       exploration_final_eps=h["exploration_final_eps"],
                       max_grad_norm=h["max_grad_norm"], policy_kwargs=kw, seed=seed,
                       device="cpu")
    else:
        h = {**PPO, **SWEEP_HYPER.get(agent, {})}
        env = DummyVecEnv([lambda: make_env(ENV, max_episode_steps=LIMIT)] * h["n_envs"])
        lin = lambda v: (lambda p: p * v)  # noqa: E731
        model = SB3PPO("MlpPolicy", env, n_steps=h["n_steps"], batch_size=h["batch_size"],
                       n_epochs=h["n_epochs"], learning_rate=lin(h["lr"]), gamma=h["gamma"],
                       gae_lambda=h["gae_lambda"], clip_range=lin(h["clip_range"]),
                       ent_coef=h["ent_coef"], vf_coef=h["vf_coef"],
                       max_grad_norm=h["max_grad_norm"],
                       policy_kwargs={**kw, "share_features_extractor": False}, seed=seed,
                       device="cpu")
    return sb3_timed(model, steps, env_spec(_cfg(agent, steps, seed)), seed, episodes=EPISODES)


def _from_sweep(args: argparse.Namespace) -> None:
    """Point the module's env, agent, hyper and steps at ``args.sweep``'s dense agent."""
    global ENV, LIMIT
    from nas_prune.config.sweep import load_sweep

    tpl = load_sweep(args.sweep).template()
    ENV, LIMIT = tpl.env.id, tpl.env.max_episode_steps
    agent = tpl.agent.name
    SWEEP_HYPER[agent] = dict(tpl.agent.hyper)
    args.agents = agent
    setattr(args, f"steps_{agent}", tpl.agent.train_steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--agents", default="dqn,ppo")
    ap.add_argument("--steps-dqn", type=int, default=100_000)
    ap.add_argument("--steps-ppo", type=int, default=200_000)
    ap.add_argument("--no-sb3", action="store_true")
    ap.add_argument("--sweep", type=Path, help="take env, agent, hyper and steps from it")
    ap.add_argument("--no-ours", action="store_true")
    args = ap.parse_args()
    if args.sweep:
        _from_sweep(args)
    make_vec_env(ENV, 1).close()  # registers MinAtar's ids (for SB3's side too)
    global CHANNELS
    CHANNELS = int(gym.make(ENV).observation_space.shape[-1])  # MinAtar: (10, 10, C)
    rows = []
    for agent in args.agents.split(","):
        steps = args.steps_dqn if agent == "dqn" else args.steps_ppo
        impls = {} if args.no_ours else {"ours": ours}
        if not args.no_sb3:
            impls["sb3"] = sb3
        for seed in range(args.seeds):  # interleaved: machine noise hits both sides alike
            for impl, run in impls.items():
                wall, ret = run(agent, steps, seed)
                rows.append((agent, impl, steps, wall, ret))
                print(f"{agent} {impl:4s} seed={seed} steps={steps} wall={wall:6.1f}s "
                      f"return={ret:5.2f}", flush=True)
    print(f"\n{ENV}, minatar network, {EPISODES} greedy episodes per seed, "
          f"{args.seeds} seeds; 1 torch thread")
    print("| agent | impl | env steps | wall s (mean ± std) | return (mean ± std) | wall / SB3 |")
    print("|---|---|---|---|---|---|")
    for agent in args.agents.split(","):
        base = [r[3] for r in rows if r[0] == agent and r[1] == "sb3"]
        for impl in dict.fromkeys(r[1] for r in rows if r[0] == agent):
            sel = [r for r in rows if r[0] == agent and r[1] == impl]
            w, ret = np.array([r[3] for r in sel]), np.array([r[4] for r in sel])
            ratio = f"{w.mean() / np.mean(base):.2f}" if base else "-"
            print(f"| {agent} | {impl} | {sel[0][2]} | {w.mean():.1f} ± {w.std():.1f} | "
                  f"{ret.mean():.2f} ± {ret.std():.2f} | {ratio} |")


if __name__ == "__main__":
    main()
