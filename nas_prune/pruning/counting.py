"""Counting in one place: dense parameters, present parameters, nonzeros and MACs."""
from __future__ import annotations

from dataclasses import dataclass

from nas_prune.rl.networks import MLP


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


def count(net: MLP) -> Counts:
    """Count ``net`` as it stands (mask-aware: pruned weights are exact zeros)."""
    params = nonzero = macs = macs_nz = 0
    for layer in net.linears():
        w, b = layer.weight, layer.bias
        params += w.numel() + b.numel()
        w_nz = int((w != 0).sum())
        nonzero += w_nz + int((b != 0).sum())
        macs += w.numel()
        macs_nz += w_nz
    return Counts(params, nonzero, macs, macs_nz)


def count_dense(sizes: list[int]) -> int:
    """Parameters of a dense MLP with these layer sizes."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def achieved_sparsity(net: MLP, structured: bool) -> list[float]:
    """Per prunable layer: the fraction of neurons removed (structured) or weights masked."""
    if structured:
        return [0.0 if m is None else 1.0 - float(m.float().mean()) for m in net.neuron_masks]
    return [0.0 if m is None else 1.0 - float(m.mean()) for m in net.weight_masks]
