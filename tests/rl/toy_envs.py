"""Tiny envs with known returns for env, evaluation and fine-tuning tests (referenced as
``tests.rl.toy_envs:Name``). Action 1 earns reward 1, action 0 earns 0, so a policy's
return is exactly the number of 1-actions it took."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

OBS = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


class RandomLengthEnv(gym.Env):  # type: ignore[type-arg]
    """Episodes last ``low``..``high`` steps, drawn from the reset seed; obs = (t / 10, 1)."""

    observation_space = OBS
    action_space = gym.spaces.Discrete(2)

    def __init__(self, low: int = 1, high: int = 10) -> None:
        self.low, self.high = low, high
        self.t, self.length = 0, 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(self.low, self.high + 1))
        return self._obs(), {}

    def step(self, action: Any) -> Any:
        self.t += 1
        return self._obs(), float(action), self.t >= self.length, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([min(self.t / 10, 1.0), 1.0], dtype=np.float32)


class FixedLengthEnv(RandomLengthEnv):
    """Every episode lasts exactly ``length`` steps."""

    def __init__(self, length: int = 4) -> None:
        super().__init__(length, length)


class ForeverEnv(RandomLengthEnv):
    """Never terminates: only a time limit ends its episodes."""

    def step(self, action: Any) -> Any:
        obs, reward, _, trunc, info = super().step(action)
        return obs, reward, False, trunc, info


class NanRewardEnv(FixedLengthEnv):
    """Rewards are NaN."""

    def step(self, action: Any) -> Any:
        obs, _, term, trunc, info = super().step(action)
        return obs, float("nan"), term, trunc, info


class BoxActionEnv(FixedLengthEnv):
    """Continuous actions in [-2, 2]^2; reward = the first action component."""

    action_space = gym.spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)

    def step(self, action: Any) -> Any:
        obs, _, term, trunc, info = super().step(1)
        return obs, float(np.asarray(action)[0]), term, trunc, info


class TableObsEnv(FixedLengthEnv):
    """A (3, 4) float observation (a table, e.g. highway-env's vehicles): flattened for an
    MLP. Entry [i, j] is t / 10 + i + j / 10."""

    observation_space = gym.spaces.Box(-10.0, 10.0, shape=(3, 4), dtype=np.float32)

    def _obs(self) -> np.ndarray:
        i, j = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
        return (self.t / 10 + i + j / 10).astype(np.float32)


class Uint8ImageEnv(FixedLengthEnv):
    """A (5, 6, 3) uint8 image, channels last; every pixel is 51 * t (capped at 255)."""

    observation_space = gym.spaces.Box(0, 255, shape=(5, 6, 3), dtype=np.uint8)

    def _obs(self) -> np.ndarray:
        return np.full((5, 6, 3), min(51 * self.t, 255), dtype=np.uint8)


class BoolImageEnv(FixedLengthEnv):
    """A (4, 4, 2) bool image (MinAtar's kind): pixel (0, 0, 0) is on from step 1."""

    observation_space = gym.spaces.Box(0, 1, shape=(4, 4, 2), dtype=bool)

    def _obs(self) -> np.ndarray:
        obs = np.zeros((4, 4, 2), dtype=bool)
        obs[0, 0, 0] = self.t >= 1
        return obs


class DictObsEnv(FixedLengthEnv):
    """A Dict observation."""

    observation_space = gym.spaces.Dict({"x": OBS})


class MultiDiscreteEnv(FixedLengthEnv):
    """A MultiDiscrete action space."""

    action_space = gym.spaces.MultiDiscrete([2, 2])


class NotAnEnv:
    """Importable, callable, but not a gymnasium.Env."""
