"""Magnitude pruning: remove the smallest |w|, per layer or with one global threshold."""
from __future__ import annotations

from typing import Sequence

import torch

from nas_prune.pruning.base import PruneContext, PruningMethod, mask_lowest, methods, n_to_prune
from nas_prune.rl.networks import MLP


@methods.register("magnitude")
class MagnitudePruning(PruningMethod):
    """Layer-wise: in each Linear, the smallest-|w| fraction ``sparsity[i]`` is removed."""

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        for i, (layer, s) in enumerate(zip(net.linears(), sparsity)):
            w = layer.weight
            k = n_to_prune(s, w.numel())
            net.set_weight_mask(i, mask_lowest(w.abs(), k, net.weight_masks[i]))


@methods.register("global_magnitude")
class GlobalMagnitudePruning(PruningMethod):
    """One |w| threshold across all layers, removing sum_i sparsity[i] * n_i weights.

    Layers end up with different sparsities; only the total follows the plan.
    """

    global_plan = True

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        layers = net.linears()
        weights = [layer.weight.detach().abs().flatten().clone() for layer in layers]
        for w in weights:  # each layer keeps its largest weight: no layer is emptied
            w[w.argmax()] = float("inf")
        olds = [
            torch.ones_like(w) if m is None else m.flatten()
            for w, m in zip(weights, net.weight_masks)
        ]
        k = int(round(sum(s * w.numel() for s, w in zip(sparsity, weights))))
        mask = mask_lowest(torch.cat(weights), k, torch.cat(olds))
        for i, part in enumerate(torch.split(mask, [w.numel() for w in weights])):
            net.set_weight_mask(i, part.view_as(layers[i].weight))
