"""Vectorised evaluation episodes -> EvalResult (per-episode returns, mean, IQM, q_mean)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from nas_prune.results.stats import iqm
from nas_prune.rl.envs import count_env_steps, episode_seeds, make_vec_env
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import PrunableNet

__all__ = ["ActFn", "EnvSpec", "EvalResult", "MAX_EVAL_STEPS", "evaluate", "evaluate_fn",
           "visited_states"]

MAX_EVAL_STEPS = 100_000  # per episode: an env without a time limit must not hang a sweep
ActFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray | None]"]


@dataclass(frozen=True)
class EnvSpec:
    """What evaluation needs to build envs."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns and their summaries; ``q_mean`` only for Q-value heads."""

    returns: list[float]
    mean: float
    std: float
    iqm: float
    q_mean: float | None
    env_steps: int

    @classmethod
    def from_returns(cls, returns: list[float], q_mean: float | None, steps: int) -> EvalResult:
        """Summarise a list of episode returns."""
        arr = np.asarray(returns, dtype=np.float64)
        return cls([float(r) for r in arr], float(arr.mean()), float(arr.std()),
                   float(iqm(arr)), q_mean, steps)


def evaluate(net: PrunableNet, head: Head, env: EnvSpec, *, episodes: int, seed: int,
             stream: int = 0, max_envs: int = 100) -> EvalResult:
    """Run ``episodes`` greedy episodes, ``max_envs`` at a time in a vector env.

    Args:
        seed: evaluation seed; the same (seed, episodes, stream) gives the same returns.
        stream: 0 for final evaluations, 1 for snapshot selection (disjoint seeds).
    """
    return evaluate_fn(lambda obs: act(net, head, obs), env, episodes=episodes, seed=seed,
                       stream=stream, max_envs=max_envs)


def evaluate_fn(policy: ActFn, env: EnvSpec, *, episodes: int, seed: int, stream: int = 0,
                max_envs: int = 100) -> EvalResult:
    """``evaluate`` for any batched policy: obs batch -> (actions, max-Q per state or None)."""
    batches = math.ceil(episodes / max_envs)
    returns: list[float] = []
    qs: list[np.ndarray] = []
    steps = 0
    for b, batch_seed in enumerate(episode_seeds(seed, batches, stream)):
        n = min(max_envs, episodes - b * max_envs)
        vec = make_vec_env(env.id, n, env.kwargs, max_episode_steps=env.max_episode_steps,
                           counted=False)
        try:
            rets, batch_q, batch_steps = _run_batch(vec, policy, batch_seed % 2**31, n)
        finally:
            vec.close()
        count_env_steps(batch_steps)
        returns.extend(rets)
        qs.extend(batch_q)
        steps += batch_steps
    q_mean = float(np.concatenate(qs).mean()) if qs else None
    return EvalResult.from_returns(returns, q_mean, steps)


def _run_batch(vec: Any, policy: ActFn, seed: int,
               n: int) -> tuple[list[float], list[np.ndarray], int]:
    obs, _ = vec.reset(seed=seed)
    ret = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    qs: list[np.ndarray] = []
    steps = 0
    while not done.all():
        if steps > MAX_EVAL_STEPS * n:
            raise ValueError(f"env.max_episode_steps: evaluation episodes did not end after "
                             f"{MAX_EVAL_STEPS} steps; set a time limit")
        action, q = policy(obs)
        if q is not None:
            qs.append(q[~done])
        obs, reward, term, trunc, _ = vec.step(action)
        steps += int((~done).sum())
        ret += np.where(done, 0.0, reward)
        done |= term | trunc
    if not np.isfinite(ret).all():
        raise FloatingPointError("evaluation return is not finite")
    return ret.tolist(), qs, steps


def visited_states(policy: ActFn, env: EnvSpec, *, seed: int, envs: int = 8,
                   steps: int = 128) -> np.ndarray:
    """Observations met by acting greedily with ``policy``: ``envs x steps`` rows, float32.

    Episodes that end are reset by the vector env, so every row is a state the policy
    visits (data-driven importance, quantization calibration, export checks).
    """
    vec = make_vec_env(env.id, envs, env.kwargs, max_episode_steps=env.max_episode_steps)
    obs, _ = vec.reset(seed=seed)
    states = []
    try:
        for _ in range(steps):
            states.append(obs)
            action, _ = policy(obs)
            obs, *_ = vec.step(action)
    finally:
        vec.close()
    return np.concatenate(states).astype(np.float32)
