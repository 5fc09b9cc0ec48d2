"""Random pruning: unstructured (random weights) and structured (random neurons)."""
from __future__ import annotations

from typing import Sequence

import torch

from nas_prune.pruning.base import (
    PruneContext,
    PruningMethod,
    mask_lowest,
    methods,
    n_to_prune,
    unit_keep,
)
from nas_prune.rl.networks import PrunableNet

__all__ = ["RandomPruning", "RandomStructuredPruning"]


@methods.register("random")
class RandomPruning(PruningMethod):
    """Remove a uniformly random ``sparsity[i]`` fraction of each layer's weights."""

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for layer, s in zip(self.plan_layers(net), sparsity):
            scores = torch.rand(layer.weight.shape, generator=ctx.generator)
            k = n_to_prune(s, layer.weight.numel())
            net.set_mask(layer.name, mask_lowest(scores, k, layer.mask))


@methods.register("random_structured")
class RandomStructuredPruning(PruningMethod):
    """Remove a uniformly random ``sparsity[i]`` fraction of prunable layer i's units."""

    structured = True

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for layer, s in zip(self.plan_layers(net), sparsity):
            n = layer.n_units
            scores = torch.rand(n, generator=ctx.generator)
            net.set_unit_mask(layer.name, unit_keep(scores, n_to_prune(s, n), layer.unit_mask))
