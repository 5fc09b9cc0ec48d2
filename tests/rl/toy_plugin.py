"""A stand-in env package for ``nas_prune.rl.envs``'s plugin ids: importing it registers
``ToyPlugin/Fixed-v0`` (as ale_py does); ``register_lazy()`` registers ``ToyLazy/Fixed-v0``
only when called (as MinAtar's ``minatar.gym.register_envs`` does)."""
from __future__ import annotations

import gymnasium as gym

ENTRY = "tests.rl.toy_envs:FixedLengthEnv"

if "ToyPlugin/Fixed-v0" not in gym.registry:
    gym.register("ToyPlugin/Fixed-v0", entry_point=ENTRY)


def register_lazy() -> None:
    """Register ``ToyLazy/Fixed-v0`` (idempotent)."""
    if "ToyLazy/Fixed-v0" not in gym.registry:
        gym.register("ToyLazy/Fixed-v0", entry_point=ENTRY)
