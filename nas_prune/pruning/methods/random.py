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
    neuron_keep,
)
from nas_prune.rl.networks import MLP


@methods.register("random")
class RandomPruning(PruningMethod):
    """Remove a uniformly random ``sparsity[i]`` fraction of each layer's weights."""

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for i, (layer, s) in enumerate(zip(net.linears(), sparsity)):
            scores = torch.rand(layer.weight.shape, generator=ctx.generator)
            k = n_to_prune(s, layer.weight.numel())
            net.set_weight_mask(i, mask_lowest(scores, k, net.weight_masks[i]))


@methods.register("random_structured")
class RandomStructuredPruning(PruningMethod):
    """Remove a uniformly random ``sparsity[i]`` fraction of hidden layer i's neurons."""

    structured = True

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for i, (n, s) in enumerate(zip(net.hidden, sparsity)):
            scores = torch.rand(n, generator=ctx.generator)
            k = n_to_prune(s, n)
            net.set_neuron_mask(i, neuron_keep(scores, k, net.neuron_masks[i]))
