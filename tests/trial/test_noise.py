"""trial.noise: observation noise scaled by visited states, deterministic for a seed, and
return_noise recorded by run_trial when eval.noise_std > 0."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import parse
from nas_prune.rl.evaluation import EnvSpec, evaluate
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP
from nas_prune.trial.noise import noisy_evaluate, observation_scale
from tests.conftest import TINY_PPO

ENV = EnvSpec("CartPole-v1")


def _net() -> MLP:
    torch.manual_seed(0)
    return MLP([4, 8, 2])


def test_observation_scale_is_the_per_dimension_std() -> None:
    states = torch.tensor([[0.0, 1.0, 5.0], [2.0, 1.0, 5.0], [4.0, 1.0, 5.0]])
    assert observation_scale(states) == pytest.approx([np.std([0, 2, 4]), 0.0, 0.0])


def test_noisy_evaluation_is_deterministic_for_a_seed() -> None:
    kw = {"episodes": 6, "noise_std": 2.0, "scale": np.ones(4)}
    a = noisy_evaluate(_net(), Head("categorical"), ENV, seed=3, **kw)
    b = noisy_evaluate(_net(), Head("categorical"), ENV, seed=3, **kw)
    assert a.returns == b.returns
    # the noise reaches the policy: other noise draws or no noise give other returns
    others = [noisy_evaluate(_net(), Head("categorical"), ENV, seed=s, **kw).returns
              for s in (4, 5)]
    clean = evaluate(_net(), Head("categorical"), ENV, episodes=6, seed=3).returns
    assert any(o != a.returns for o in others) and clean != a.returns


def test_zero_scale_gives_the_clean_returns() -> None:
    # noise of 0 standard deviations per dimension: the same episodes, the same actions
    noisy = noisy_evaluate(_net(), Head("categorical"), ENV, episodes=4, seed=1, noise_std=1.0,
                           scale=np.zeros(4))
    assert noisy.returns == evaluate(_net(), Head("categorical"), ENV, episodes=4,
                                     seed=1).returns


def test_noise_needs_a_positive_std() -> None:
    with pytest.raises(ValueError, match="eval.noise_std"):
        noisy_evaluate(_net(), Head("categorical"), ENV, episodes=1, seed=0, noise_std=0.0,
                       scale=np.ones(4))


def _cfg(noise_std: float) -> TrialConfig:
    data = copy.deepcopy(TINY_PPO)
    data["eval"]["noise_std"] = noise_std
    return parse(TrialConfig, data)  # type: ignore[no-any-return]


def test_run_trial_records_return_noise_repeatably() -> None:
    a = run_trial(_cfg(0.5)).metrics
    b = run_trial(_cfg(0.5)).metrics
    assert a.return_noise is not None and a.dense_return_noise is not None
    assert a.return_noise_std is not None and a.return_noise_std >= 0
    assert (a.return_noise, a.dense_return_noise) == (b.return_noise, b.dense_return_noise)
    assert a.weights_hash == b.weights_hash  # the noisy evaluation changes no weights
    off = run_trial(_cfg(0.0)).metrics.as_dict()
    assert "return_noise" not in off and "dense_return_noise" not in off
    assert off["returns"] == a.returns  # the clean evaluation is untouched by the noisy one


def test_a_trial_trained_from_scratch_records_return_noise() -> None:
    """No dense policy: the noise scale comes from the trained sparse policy's states, and
    no dense_return_noise is recorded."""
    data = copy.deepcopy(TINY_PPO)
    data["eval"]["noise_std"] = 0.5
    data["pruning"] = {**data.get("pruning", {}), "schedule": "sparse", "method": "random",
                       "sparsity": 0.5, "finetune": {"steps": 0}}
    a = run_trial(parse(TrialConfig, data)).metrics
    b = run_trial(parse(TrialConfig, data)).metrics
    assert a.return_noise is not None and a.dense_return_noise is None
    assert a.return_noise == b.return_noise
