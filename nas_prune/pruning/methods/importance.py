"""Importance-based structured pruning: remove the least important hidden neurons."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict

from nas_prune.pruning.base import PruneContext, PruningMethod, methods, n_to_prune, neuron_keep
from nas_prune.rl.networks import MLP


class ImportanceParams(BaseModel):
    """criterion: l1 / l2 norm of a neuron's incoming weights, or a first-order Taylor score."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    criterion: Literal["l1", "l2", "taylor"] = "l1"


def neuron_scores(net: MLP, criterion: str, ctx: PruneContext) -> list[torch.Tensor]:
    """One importance score per neuron of each hidden layer."""
    if criterion == "taylor":
        return _taylor_scores(net, ctx)
    p = 1 if criterion == "l1" else 2
    return [layer.weight.detach().norm(p=p, dim=1) for layer in net.linears()[:-1]]


def _taylor_scores(net: MLP, ctx: PruneContext) -> list[torch.Tensor]:
    # |a * dJ/da| averaged over visited states (Molchanov et al. 2017), J = ctx.objective.
    if ctx.states is None:
        raise ValueError("pruning.method_params.criterion: 'taylor' needs visited states")
    acts: list[torch.Tensor] = []
    x = ctx.states
    layers = net.linears()
    for layer, act in zip(layers[:-1], net.acts):
        x = act(layer(x))
        x.retain_grad()
        acts.append(x)
    out = layers[-1](x)
    net.zero_grad(set_to_none=True)
    ctx.objective(out).backward()
    scores = [(a * a.grad).abs().mean(dim=0).detach() for a in acts]  # type: ignore[operator]
    net.zero_grad(set_to_none=True)
    return scores


@methods.register("importance")
class ImportancePruning(PruningMethod):
    """Remove the ``sparsity[i]`` fraction of hidden layer i's neurons with lowest score."""

    structured = True
    Params = ImportanceParams

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        scores = neuron_scores(net, self.params.criterion, ctx)  # type: ignore[attr-defined]
        for i, (n, s, sc) in enumerate(zip(net.hidden, sparsity, scores)):
            k = n_to_prune(s, n)
            net.set_neuron_mask(i, neuron_keep(sc, k, net.neuron_masks[i]))
