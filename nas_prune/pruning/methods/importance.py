"""Importance-based structured pruning: remove the least important units (hidden neurons,
conv channels)."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict

from nas_prune.pruning.base import PruneContext, PruningMethod, methods, n_to_prune, unit_keep
from nas_prune.rl.networks import PrunableLayer, PrunableNet

__all__ = ["ImportanceParams", "ImportancePruning", "unit_scores"]


class ImportanceParams(BaseModel):
    """criterion: l1 / l2 norm of a unit's incoming weights, or a first-order Taylor score."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    criterion: Literal["l1", "l2", "taylor"] = "l1"


def unit_scores(net: PrunableNet, criterion: str, ctx: PruneContext) -> list[torch.Tensor]:
    """One importance score per unit of each structured-prunable layer, in layer order.

    Raises:
        ValueError: ``criterion`` is ``"taylor"`` and ``ctx`` has no visited states.
    """
    layers = ImportancePruning.plan_layers(net)
    if criterion == "taylor":
        return _taylor_scores(net, layers, ctx)
    p = 1 if criterion == "l1" else 2
    # a unit's incoming weights are its row of the weight (flattened for a conv's kernel)
    return [layer.weight.detach().flatten(1).norm(p=p, dim=1) for layer in layers]


def _taylor_scores(net: PrunableNet, layers: list[PrunableLayer],
                   ctx: PruneContext) -> list[torch.Tensor]:
    # |a * dJ/da| averaged over visited states (Molchanov et al. 2017), J = ctx.objective.
    if ctx.states is None:
        raise ValueError("pruning.method_params.criterion: 'taylor' needs visited states")
    out, units = net.forward_units(ctx.states)
    acts = [units[layer.name] for layer in layers]
    for a in acts:
        a.retain_grad()
    net.zero_grad(set_to_none=True)
    ctx.objective(out).backward()
    # a conv channel's term sums over its output positions before the absolute value
    scores = [_per_unit(a * a.grad).abs().mean(dim=0).detach()  # type: ignore[operator]
              for a in acts]
    net.zero_grad(set_to_none=True)
    return scores


def _per_unit(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(2).sum(dim=2) if t.dim() > 2 else t


@methods.register("importance")
class ImportancePruning(PruningMethod):
    """Remove the ``sparsity[i]`` fraction of prunable layer i's units with lowest score."""

    structured = True
    Params = ImportanceParams

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        scores = unit_scores(net, self.params.criterion, ctx)  # type: ignore[attr-defined]
        for layer, s, sc in zip(self.plan_layers(net), sparsity, scores):
            k = n_to_prune(s, layer.n_units)
            net.set_unit_mask(layer.name, unit_keep(sc, k, layer.unit_mask))
