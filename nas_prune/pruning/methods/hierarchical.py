"""Hierarchical structured pruning: layer by layer, each reaching its target in turn."""
from __future__ import annotations

from typing import Sequence

from nas_prune.pruning.base import PruneContext, methods
from nas_prune.pruning.methods.importance import ImportanceParams, ImportancePruning
from nas_prune.rl.networks import PrunableNet

__all__ = ["HierarchicalParams", "HierarchicalPruning"]


class HierarchicalParams(ImportanceParams):
    """order: indices of the structured-prunable layers (an MLP's hidden layers) in pruning
    order (None: the first layer first)."""

    order: list[int] | None = None


@methods.register("hierarchical")
class HierarchicalPruning(ImportancePruning):
    """Importance pruning scheduled layer by layer.

    Over a schedule, the progress 0..1 is split into one equal slice per layer in
    ``order``: a layer reaches its target before the next one starts. In one shot it
    prunes every layer, in that order, rescoring after each.
    """

    Params = HierarchicalParams

    def _order(self, n: int) -> list[int]:
        order = self.params.order  # type: ignore[attr-defined]
        order = list(range(n)) if order is None else list(order)
        if sorted(order) != list(range(n)):
            raise ValueError(
                f"pruning.method_params.order: {order} must be a permutation of 0..{n - 1}"
            )
        return order

    def step_targets(self, final: Sequence[float], progress: float) -> list[float]:
        order = self._order(len(final))
        targets = [0.0] * len(final)
        for rank, layer in enumerate(order):
            share = min(max(progress * len(order) - rank, 0.0), 1.0)
            targets[layer] = final[layer] * share
        return targets

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        done = [0.0] * len(sparsity)
        for layer in self._order(len(sparsity)):
            done[layer] = sparsity[layer]
            super().prune(net, done, ctx)
