"""L1-regularisation-induced sparsity: fine-tune with an L1 penalty, then threshold."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from nas_prune.pruning.base import methods
from nas_prune.pruning.methods.magnitude import MagnitudePruning
from nas_prune.rl.networks import PrunableNet

__all__ = ["L1Params", "L1Pruning"]


class L1Params(BaseModel):
    """l1_coef: weight of sum |w| over prunable weights in the fine-tuning loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    l1_coef: float = Field(default=1e-4, gt=0)


@methods.register("l1")
class L1Pruning(MagnitudePruning):
    """Fine-tuning before each pruning step adds ``l1_coef * sum|w|``, driving small weights
    toward zero; pruning then thresholds each layer to its target (as ``magnitude``)."""

    Params = L1Params

    def penalty(self, net: PrunableNet) -> torch.Tensor | None:
        coef = self.params.l1_coef  # type: ignore[attr-defined]
        return coef * sum(layer.weight.abs().sum()  # type: ignore[return-value]
                          for layer in self.plan_layers(net))
