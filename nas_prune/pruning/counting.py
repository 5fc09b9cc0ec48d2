"""Counting in one place: dense parameters, present parameters, nonzeros and MACs."""
from __future__ import annotations

from dataclasses import dataclass

from nas_prune.pruning.base import plan_layers
from nas_prune.rl.networks import PrunableNet

__all__ = ["Counts", "achieved_sparsity", "count", "count_dense"]


@dataclass(frozen=True)
class Counts:
    """Sizes of one network.

    params: parameters physically present (weights + biases).
    params_nonzero: of those, the nonzero ones.
    macs: multiply-accumulates of one forward of one input through the dense layers present.
    macs_nonzero: the MACs a sparse kernel would do (nonzero weights only).
    """

    params: int
    params_nonzero: int
    macs: int
    macs_nonzero: int


def count(net: PrunableNet) -> Counts:
    """Count ``net`` as it stands, layer by layer (mask-aware: pruned weights are exact
    zeros)."""
    layers = net.prunable_layers()
    return Counts(sum(layer.params() for layer in layers),
                  sum(layer.params_nonzero() for layer in layers),
                  sum(layer.macs() for layer in layers),
                  sum(layer.macs_nonzero() for layer in layers))


def count_dense(sizes: list[int]) -> int:
    """Parameters of a dense MLP with these layer sizes, before it is built (a sweep's
    reference point); ``count(net).params`` of the built network is the same."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def achieved_sparsity(net: PrunableNet, structured: bool) -> list[float]:
    """Per plan layer (``plan_layers``): the fraction of units removed (structured) or of
    weights masked by the unstructured mask (unstructured)."""
    layers = plan_layers(net, structured)
    if structured:
        return [0.0 if layer.unit_mask is None else 1.0 - float(layer.unit_mask.float().mean())
                for layer in layers]
    return [0.0 if layer.mask is None else 1.0 - float(layer.mask.mean()) for layer in layers]
