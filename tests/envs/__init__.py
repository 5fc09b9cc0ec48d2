"""Tiny envs for failure-injection tests (referenced as ``tests.envs:Name``)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class RaisingCartPole(CartPoleEnv):
    """CartPole that raises RuntimeError at global step ``fail_at``."""

    def __init__(self, fail_at: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_at, self.count = fail_at, 0

    def step(self, action: Any) -> Any:
        self.count += 1
        if self.count >= self.fail_at:
            raise RuntimeError(f"injected env failure at step {self.count}")
        return super().step(action)


class NanRewardCartPole(CartPoleEnv):
    """CartPole whose rewards are NaN: training losses and returns become non-finite."""

    def step(self, action: Any) -> Any:
        obs, _, term, trunc, info = super().step(action)
        return obs, float(np.nan), term, trunc, info


class SlowCartPole(CartPoleEnv):
    """CartPole that sleeps ``sleep_s`` per step: trials last long enough for the kill and
    interrupt tests to catch one running, however fast training gets."""

    def __init__(self, sleep_s: float = 0.001, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleep_s = sleep_s

    def step(self, action: Any) -> Any:
        time.sleep(self.sleep_s)
        return super().step(action)


# a sweep file's env section for SlowCartPole (2 ms per step)
SLOW_ENV = {"id": "tests.envs:SlowCartPole", "kwargs": {"sleep_s": 0.002},
            "max_episode_steps": 500}
