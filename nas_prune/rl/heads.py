"""Acting with a deployed policy network: greedy / mean actions for each head type."""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from nas_prune.rl.networks import MLP

__all__ = ["HEADS", "Head", "act"]

HEADS = ("q", "categorical", "gaussian")


@dataclass(frozen=True)
class Head:
    """How a policy network's output becomes an action.

    kind: "q" (argmax of Q-values), "categorical" (argmax of logits) or "gaussian"
    (the mean, clipped to ``low``/``high``).
    """

    kind: str
    low: list[float] | None = None
    high: list[float] | None = None

    @classmethod
    def for_space(cls, kind: str, space: gym.Space) -> Head:
        """The head for an action space; Box bounds are kept for clipping."""
        if isinstance(space, gym.spaces.Box):
            return cls(kind, space.low.tolist(), space.high.tolist())
        return cls(kind)

    def to_json(self) -> dict[str, object]:
        """JSON form, stored in the exported policy spec."""
        return {"kind": self.kind, "low": self.low, "high": self.high}


@torch.inference_mode()
def act(net: MLP, head: Head, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Greedy actions for a batch of observations, and max-Q per state for a Q head."""
    out = net(torch.as_tensor(obs, dtype=torch.float32))
    if head.kind == "gaussian":
        action = out.numpy()
        if head.low is not None and head.high is not None:
            action = np.clip(action, head.low, head.high)
        return action, None
    qmax, action = out.max(dim=-1)
    return action.numpy(), (qmax.numpy() if head.kind == "q" else None)
