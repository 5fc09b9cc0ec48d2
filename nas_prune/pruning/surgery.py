"""Physically shrink a network: drop the units its structured masks removed, and the
outputs its deployed form does not keep."""
from __future__ import annotations

import copy
from typing import TypeVar

import torch

from nas_prune.rl.networks import PrunableNet

__all__ = ["deployed", "shrink"]

_Net = TypeVar("_Net", bound=PrunableNet)


@torch.no_grad()
def shrink(net: _Net) -> _Net:
    """Return a smaller copy of ``net`` without the units its unit masks removed.

    Each removed unit's row and bias go, with the matching inputs of the layer reading it;
    unstructured masks are carried over, sliced. The output equals the masked network's.
    ``net`` is left as it is.
    """
    # deepcopy clones every Parameter into storage of its own (a FlatTrainer keeps them as
    # views of one buffer) and draws no random numbers
    small = copy.deepcopy(net)
    for layer in small.prunable_layers():
        if layer.unit_mask is not None:
            small.remove_units(layer.name, layer.unit_mask.nonzero().flatten())
    return small


@torch.no_grad()
def deployed(net: _Net, outputs: int, *, remove_units: bool) -> _Net:
    """The network a trial deploys, saves and counts: a copy of ``net`` with only its first
    ``outputs`` outputs (an agent's training-only outputs go: SAC's log-stds) and, when
    ``remove_units``, without the units its unit masks removed (``shrink``). Its first
    ``outputs`` outputs equal ``net``'s; ``net`` is left as it is.

    Raises:
        ValueError: ``outputs`` is not between 1 and ``net``'s output count.
    """
    small = shrink(net) if remove_units else copy.deepcopy(net)
    if outputs != small.prunable_layers()[-1].n_units:
        small.keep_outputs(outputs)
    return small
