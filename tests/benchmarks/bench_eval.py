"""Evaluation speed: 100 greedy episodes of a 500-scoring CartPole policy, our vectorised
evaluation (gymnasium's native CartPole vector env, one batched forward per step) against
stable-baselines3's evaluate_policy on the same network, side by side.

    python -m tests.benchmarks.bench_eval        # needs pip install -e .[bench]
"""
from __future__ import annotations

import time

import torch

from nas_prune.config.trial import TrialConfig
from nas_prune.rl.evaluation import evaluate
from nas_prune.trial.dense_cache import build_agent, env_spec, train_dense


def main() -> None:
    torch.set_num_threads(1)
    cfg = TrialConfig.model_validate({"agent": {"name": "ppo", "train_steps": 100_000,
                                                "snapshot": {"every_steps": 10240}}})
    agent = build_agent(cfg, 0)
    agent.load_state_tensors(train_dense(cfg))
    start = time.perf_counter()
    ours = evaluate(agent.policy, agent.head, env_spec(cfg), episodes=100, seed=1)
    ours_s = time.perf_counter() - start

    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [64, 64],
                                                           "activation_fn": torch.nn.Tanh},
                device="cpu", seed=0)
    with torch.no_grad():  # the same actor weights inside SB3's policy
        pi = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
        for mine, theirs in zip(agent.policy.layers[:-1], pi):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        model.policy.action_net.weight.copy_(agent.policy.layers[-1].weight)
        model.policy.action_net.bias.copy_(agent.policy.layers[-1].bias)
    env = gym.make("CartPole-v1")
    env.reset(seed=1)
    start = time.perf_counter()
    rets, _ = evaluate_policy(model, env, n_eval_episodes=100, deterministic=True,
                              return_episode_rewards=True)
    sb3_s = time.perf_counter() - start
    print(f"{'':24s} {'wall_s':>8s} {'mean return':>12s} {'env steps':>10s}")
    print(f"{'nas_prune evaluate':24s} {ours_s:8.2f} {ours.mean:12.1f} {ours.env_steps:10d}")
    print(f"{'sb3 evaluate_policy':24s} {sb3_s:8.2f} {np.mean(rets):12.1f} {int(np.sum(rets)):10d}")
    print(f"ratio ours / sb3: {ours_s / sb3_s:.3f}")


if __name__ == "__main__":
    main()
