"""Robustness under observation noise: the policy evaluated on the same episodes as its
clean evaluation, with Gaussian noise added to every observation it acts on."""
from __future__ import annotations

import numpy as np
import torch

from nas_prune.rl.evaluation import EnvSpec, EvalResult, evaluate_fn
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import PrunableNet

__all__ = ["NOISE_SALT", "noisy_evaluate", "observation_scale"]

NOISE_SALT = 7_331  # the noise generator's stream: disjoint from every episode-seed stream


def observation_scale(states: torch.Tensor) -> np.ndarray:
    """Per-dimension standard deviation of visited states (float64, one per obs dim).

    The trial passes the 1,024 states its dense policy visits from its seed (8 envs x 128
    steps, ``trial.run._visited_states``), so a trial's pruned and dense policies get the
    same noise scale. A dimension that never varied gets no noise.
    """
    return states.double().std(dim=0, unbiased=False).numpy()


def noisy_evaluate(net: PrunableNet, head: Head, env: EnvSpec, *, episodes: int, seed: int,
                   noise_std: float, scale: np.ndarray) -> EvalResult:
    """``evaluate`` on the same episode seeds, acting on ``obs + N(0, (noise_std*scale)^2)``.

    Deterministic for a seed: the noise comes from a generator seeded by ``seed``, drawn
    in the order the vector env steps. The env itself sees no noise: only what the policy
    observes is perturbed.

    Raises:
        ValueError: ``noise_std`` <= 0 or a scale that does not match the observations.
    """
    if noise_std <= 0:
        raise ValueError(f"eval.noise_std: must be > 0 for a noisy evaluation, got {noise_std}")
    rng = np.random.default_rng([seed, NOISE_SALT])
    sigma = noise_std * np.asarray(scale, dtype=np.float64)

    def policy(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if obs.shape[-1] != sigma.shape[0]:
            raise ValueError(f"eval.noise_std: scale has {sigma.shape[0]} dims, "
                             f"observations {obs.shape[-1]}")
        noisy = obs + rng.standard_normal(obs.shape) * sigma
        return act(net, head, noisy.astype(np.float32))

    return evaluate_fn(policy, env, episodes=episodes, seed=seed)
