"""Dynamic sparse training methods (schedule ``sparse`` only): SET and RigL. Both start from
a random topology at the target sparsity; the update mechanics are in
``nas_prune.pruning.sparse_training``."""
from __future__ import annotations

import torch

from nas_prune.pruning.base import PruneContext, methods
from nas_prune.pruning.sparse_training import DynamicSparsePruning
from nas_prune.rl.networks import PrunableLayer

__all__ = ["RigL", "SparseEvolutionaryTraining"]


@methods.register("set")
class SparseEvolutionaryTraining(DynamicSparsePruning):
    """SET (Mocanu et al. 2018): drop the smallest-|w| fraction, regrow as many at random
    positions; constant drop fraction."""

    def grow_scores(self, layer: PrunableLayer, grad: torch.Tensor | None,
                    ctx: PruneContext) -> torch.Tensor:
        return torch.rand(layer.weight.shape, generator=ctx.generator)


@methods.register("rigl")
class RigL(DynamicSparsePruning):
    """RigL (Evci et al. 2020): drop the smallest-|w| fraction, regrow where the dense
    gradient's magnitude is largest; the drop fraction decays with a cosine to 0 at
    ``end``."""

    needs_gradient = True
    cosine = True

    def grow_scores(self, layer: PrunableLayer, grad: torch.Tensor | None,
                    ctx: PruneContext) -> torch.Tensor:
        assert grad is not None, "RigL's update needs the step's dense gradient"
        return grad.abs()
