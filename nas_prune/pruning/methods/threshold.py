"""Threshold pruning: |w| < theta -> 0."""
from __future__ import annotations

from typing import Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

from nas_prune.pruning.base import PruneContext, PruningMethod, mask_lowest, methods, n_to_prune
from nas_prune.rl.networks import PrunableNet

__all__ = ["ThresholdParams", "ThresholdPruning"]


class ThresholdParams(BaseModel):
    """threshold: a fixed theta for every layer; None finds theta per layer to hit the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float | None = Field(default=None, gt=0)


@methods.register("threshold")
class ThresholdPruning(PruningMethod):
    """Zero every weight with |w| < theta.

    With a fixed ``threshold`` the achieved sparsity is whatever theta gives (the plan is
    ignored); without one, theta_i is the |w| order statistic that meets ``sparsity[i]``.
    """

    Params = ThresholdParams

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        theta = self.params.threshold  # type: ignore[attr-defined]
        for layer, s in zip(self.plan_layers(net), sparsity):
            w = layer.weight.detach()
            old = layer.mask
            if theta is None:
                mask = mask_lowest(w.abs(), n_to_prune(s, w.numel()), old)
            else:
                mask = (w.abs() >= theta).to(torch.float32)
                mask = mask if old is None else mask * old
            net.set_mask(layer.name, mask)
