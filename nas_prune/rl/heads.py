"""Acting with a deployed policy network: greedy / mean actions for each head type."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from nas_prune.rl.networks import PrunableNet

__all__ = ["HEADS", "Head", "act", "actions_from_output"]

HEADS = ("q", "categorical", "gaussian", "squashed")


@dataclass(frozen=True)
class Head:
    """How a policy network's output becomes an action.

    kind: "q" (argmax of Q-values), "categorical" (argmax of logits), "gaussian"
    (the mean, clipped to ``low``/``high``) or "squashed" (SAC's deterministic action: the
    first ``len(low)`` outputs are the Gaussian's mean, ``tanh(mean)`` rescaled from
    [-1, 1] to [``low``, ``high``]; a deployed SAC policy has only these, while the
    training actor, and a policy saved before deployed policies dropped them, also carry
    the log-stds after them, unused here).
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

    @property
    def continuous(self) -> bool:
        """Whether actions are Box vectors (not argmax indices)."""
        return self.kind in ("gaussian", "squashed")

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Actions in [-1, 1] rescaled to [``low``, ``high``] (SB3's ``unscale_action``)."""
        assert self.low is not None and self.high is not None, "rescaling needs bounds"
        low, high = np.asarray(self.low, np.float32), np.asarray(self.high, np.float32)
        return low + (unit + 1.0) * (0.5 * (high - low))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Head:
        """The head ``to_json`` wrote (the kind checked by the reader)."""
        return cls(str(data["kind"]), data.get("low"), data.get("high"))

    def to_json(self) -> dict[str, object]:
        """JSON form, stored in the exported policy spec."""
        return {"kind": self.kind, "low": self.low, "high": self.high}


@torch.inference_mode()
def act(net: PrunableNet, head: Head, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Greedy actions for a batch of observations, and max-Q per state for a Q head."""
    return actions_from_output(head, net(torch.as_tensor(obs, dtype=torch.float32)))


def actions_from_output(head: Head, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """``act`` from a network output already computed (by onnxruntime, say)."""
    if head.kind == "gaussian":
        mean = out.numpy()
        if head.low is not None and head.high is not None:
            mean = np.clip(mean, head.low, head.high)
        return mean, None
    if head.kind == "squashed":
        assert head.low is not None, "a squashed head has bounds"
        return head.from_unit(np.tanh(out[..., :len(head.low)].numpy())), None
    qmax, greedy = out.max(dim=-1)
    return greedy.numpy(), (qmax.numpy() if head.kind == "q" else None)
