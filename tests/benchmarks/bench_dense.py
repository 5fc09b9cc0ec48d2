"""Dense-quality benchmark: our DQN / PPO against stable-baselines3 (rl-zoo hyperparameters)
on CartPole-v1, same env steps, same evaluation (100 greedy episodes), side by side.

    python -m tests.benchmarks.bench_dense --seeds 5            # ours only
    python -m tests.benchmarks.bench_dense --seeds 5 --sb3   # and SB3: pip install -e .[bench]

``--snapshot-every 0,2500`` (default) times ours twice: training only (as SB3), and with
best-snapshot keeping (20 selection episodes every 2,500 steps, as sweeps train dense agents).
``--vanilla`` adds our DQN with ``double: false`` (SB3's DQN is vanilla DQN: the same
algorithm). ``--sb3-flush-denormal`` adds SB3 with ``torch.set_flush_denormal(True)``, which
our trainer sets (``nas_prune.flatnet``): it shows how much of the gap is that one setting.

Solved: mean return >= 475 over 100 evaluation episodes.
"""
from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any, Callable

import numpy as np
import torch

from nas_prune.config.trial import TrialConfig
from nas_prune.rl.evaluation import EnvSpec, evaluate, evaluate_fn
from nas_prune.trial.dense_cache import build_agent, env_spec, train_dense

Run = tuple[float, float]  # (wall_s, mean return over 100 episodes)
STEPS = {"dqn": 50_000, "ppo": 100_000}
SOLVED = 475.0


def ours(agent: str, seed: int, *, snapshot_every: int, hyper: dict | None = None) -> Run:
    cfg = TrialConfig.model_validate({
        "agent": {"name": agent, "train_steps": STEPS[agent], "hyper": hyper or {},
                  "snapshot": {"every_steps": snapshot_every, "episodes": 20}},
        "seed": seed})
    return train_timed(cfg, seed, episodes=100)


def train_timed(cfg: TrialConfig, seed: int, *, episodes: int) -> Run:
    """Train ``cfg``'s dense agent on one torch thread: (wall seconds of the training,
    mean return of ``episodes`` greedy episodes on evaluation seeds 10,000 + seed)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    tensors = train_dense(cfg)
    wall = time.perf_counter() - start
    a = build_agent(cfg, seed)
    a.load_state_tensors(tensors)
    res = evaluate(a.policy, a.head, env_spec(cfg), episodes=episodes, seed=10_000 + seed)
    return wall, res.mean


def sb3(agent: str, seed: int, *, flush_denormal: bool = False) -> Run:
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO

    torch.set_num_threads(1)
    # ours turns flushing on (nas_prune.flatnet); SB3 runs as it ships unless asked
    torch.set_flush_denormal(flush_denormal)
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
    del gym
    return sb3_timed(model, STEPS[agent], env_spec(TrialConfig()), seed, episodes=100)


def sb3_timed(model: Any, steps: int, spec: EnvSpec, seed: int, *, episodes: int) -> Run:
    """Train a stable-baselines3 ``model`` for ``steps``: (wall seconds of the training, mean
    return of ``episodes`` deterministic episodes on evaluation seeds 10,000 + seed), as
    ``train_timed`` measures ours."""
    start = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - start

    def policy(obs: np.ndarray) -> tuple[np.ndarray, None]:
        action, _ = model.predict(obs, deterministic=True)
        return action, None

    return wall, evaluate_fn(policy, spec, episodes=episodes, seed=10_000 + seed).mean


def _variants(agent: str, args: argparse.Namespace) -> dict[str, Callable[[int], Run]]:
    """name -> run(seed) for one agent: ours at each snapshot setting (and, for DQN,
    vanilla DQN as SB3 runs it), then SB3."""
    out: dict[str, Callable[[int], Run]] = {}
    for n in map(int, args.snapshot_every.split(",")):
        out[f"ours/{n}" if n else "ours"] = partial(ours, agent, snapshot_every=n)
    if agent == "dqn" and args.vanilla:
        out["ours vanilla"] = partial(ours, agent, snapshot_every=0, hyper={"double": False})
    if args.sb3:
        out["sb3"] = partial(sb3, agent)
        if args.sb3_flush_denormal:
            out["sb3 ftz"] = partial(sb3, agent, flush_denormal=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--agents", default="dqn,ppo")
    ap.add_argument("--sb3", action="store_true")
    ap.add_argument("--sb3-flush-denormal", action="store_true",
                    help="also time SB3 with torch.set_flush_denormal(True), as ours runs")
    ap.add_argument("--vanilla", action="store_true",
                    help="also time our DQN with double=False (SB3's DQN is vanilla)")
    ap.add_argument("--snapshot-every", default="0,2500",
                    help="comma list; 0 = no snapshot evaluations")
    args = ap.parse_args()
    rows = []
    for agent in args.agents.split(","):
        variants = _variants(agent, args)
        for seed in range(args.seeds):  # interleaved: machine noise hits both sides alike
            for impl, run in variants.items():
                wall, ret = run(seed)
                rows.append((agent, impl, seed, wall, ret))
                print(f"{agent:4s} {impl:12s} seed={seed} steps={STEPS[agent]} "
                      f"wall={wall:6.1f}s return={ret:6.1f}", flush=True)
    _table(rows, args.agents.split(","))


def _table(rows: list[tuple[str, str, int, float, float]], agents: list[str]) -> None:
    print("\n(ours/N: with a 20-episode snapshot evaluation every N steps; "
          "sb3 ftz: SB3 with denormals flushed)")
    print("agent impl          steps   wall_s mean±std   return mean±std   solved(>=475)"
          "   wall / sb3")
    for agent in agents:
        sb3_wall = [r[3] for r in rows if r[0] == agent and r[1] == "sb3"]
        for impl in dict.fromkeys(r[1] for r in rows if r[0] == agent):
            sel = [r for r in rows if r[0] == agent and r[1] == impl]
            w = np.array([r[3] for r in sel])
            ret = np.array([r[4] for r in sel])
            ratio = f"{w.mean() / np.mean(sb3_wall):.2f}" if sb3_wall else "-"
            print(f"{agent:5s} {impl:12s} {STEPS[agent]:6d} {w.mean():7.1f} ± {w.std():4.1f}   "
                  f"{ret.mean():6.1f} ± {ret.std():5.1f}   {(ret >= SOLVED).sum()}/{len(sel):<13d}"
                  f" {ratio}")


if __name__ == "__main__":
    main()
