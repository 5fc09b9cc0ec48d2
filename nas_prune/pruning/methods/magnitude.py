"""Magnitude pruning: remove the smallest |w|, per layer or with one global threshold."""
from __future__ import annotations

from typing import Sequence

import torch

from nas_prune.pruning.base import PruneContext, PruningMethod, mask_lowest, methods, n_to_prune
from nas_prune.rl.networks import PrunableNet

__all__ = ["GlobalMagnitudePruning", "MagnitudePruning"]


@methods.register("magnitude")
class MagnitudePruning(PruningMethod):
    """Layer-wise: in each weight layer, the smallest-|w| fraction ``sparsity[i]`` goes."""

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for layer, s in zip(self.plan_layers(net), sparsity):
            w = layer.weight
            k = n_to_prune(s, w.numel())
            net.set_mask(layer.name, mask_lowest(w.abs(), k, layer.mask))


@methods.register("global_magnitude")
class GlobalMagnitudePruning(PruningMethod):
    """One |w| threshold across all layers, removing sum_i sparsity[i] * n_i weights.

    Layers end up with different sparsities; only the total follows the plan.
    """

    global_plan = True

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        layers = self.plan_layers(net)
        weights = [layer.weight.detach().abs().flatten().clone() for layer in layers]
        for w in weights:  # each layer keeps its largest weight: no layer is emptied
            w[w.argmax()] = float("inf")
        olds = [
            torch.ones_like(w) if layer.mask is None else layer.mask.flatten()
            for w, layer in zip(weights, layers)
        ]
        k = int(round(sum(s * w.numel() for s, w in zip(sparsity, weights))))
        mask = mask_lowest(torch.cat(weights), k, torch.cat(olds))
        for layer, part in zip(layers, torch.split(mask, [w.numel() for w in weights])):
            net.set_mask(layer.name, part.view_as(layer.weight))
