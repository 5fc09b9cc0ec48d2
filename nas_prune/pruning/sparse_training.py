"""Sparse training from scratch (Graesser et al. 2022): how a total sparsity is spread over
the layers (``uniform``, ``erk``), and dynamic topologies: every ``update_every`` gradient
steps drop the smallest-magnitude fraction of each layer's active weights and regrow as
many elsewhere, at zero. SET (Mocanu et al. 2018) regrows at random with a constant drop
fraction; RigL (Evci et al. 2020) regrows where the dense gradient is largest, with a
cosine-decayed drop fraction. The registered methods are in ``pruning/methods/dynamic.py``.
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar, Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

from nas_prune.pruning.base import PruneContext, PruningMethod, mask_lowest, plan_layers
from nas_prune.pruning.methods.random import RandomPruning
from nas_prune.rl.networks import PrunableLayer, PrunableNet
from nas_prune.rl.optim.flatnet import FlatTrainer

__all__ = ["DISTRIBUTIONS", "DynamicParams", "DynamicSparsity", "DynamicSparsePruning",
           "distribute", "erk_sparsities", "regrow_layer"]

DISTRIBUTIONS = ("uniform", "erk")


def erk_sparsities(shapes: Sequence[tuple[int, ...]], sparsity: float) -> list[float]:
    """Per-layer sparsities of the Erdős–Rényi-kernel distribution (Evci et al. 2020, as
    used by Graesser et al. 2022) for weights of these shapes: (n_out, n_in) matrices, or
    (C_out, C_in, k_h, k_w) conv kernels.

    A layer's density is proportional to the sum of its dimensions over their product:
    (n_in + n_out) / (n_in * n_out) for a matrix, (C_in + C_out + k_h + k_w) /
    (C_in * C_out * k_h * k_w) for a kernel. Small layers (the input and output layers of an
    RL policy) stay denser. A layer whose density would exceed 1 is kept dense and the rest
    is rescaled, so the weights kept add up to (1 - sparsity) of all weights, as with
    ``uniform``.
    """
    sizes = [math.prod(shape) for shape in shapes]
    raw = [sum(shape) / math.prod(shape) for shape in shapes]
    dense: set[int] = set()
    budget = (1.0 - sparsity) * sum(sizes)
    while True:
        free = [i for i in range(len(shapes)) if i not in dense]
        left = budget - sum(sizes[i] for i in dense)
        eps = left / sum(raw[i] * sizes[i] for i in free) if free else 0.0
        over = [i for i in free if eps * raw[i] > 1.0]
        if not over:
            break
        dense.add(max(over, key=lambda i: raw[i]))
    return [0.0 if i in dense else max(0.0, 1.0 - eps * raw[i]) for i in range(len(shapes))]


def distribute(net: PrunableNet, sparsity: float,
               distribution: Literal["uniform", "erk"]) -> list[float]:
    """Per-weight-layer sparsities (unstructured plan) for a total ``sparsity``."""
    layers = plan_layers(net, structured=False)
    if distribution == "uniform":
        return [sparsity] * len(layers)
    shapes = [tuple(int(n) for n in layer.weight.shape) for layer in layers]
    return erk_sparsities(shapes, sparsity)


class DynamicParams(BaseModel):
    """update_every: gradient steps between topology updates (ΔT). drop_fraction: the
    fraction of each layer's active weights replaced at an update (RigL: its start value,
    cosine-decayed). end: fraction of training after which the topology stays fixed (RigL's
    0.75)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    update_every: int = Field(default=100, ge=1)
    drop_fraction: float = Field(default=0.3, gt=0, lt=1)
    end: float = Field(default=0.75, gt=0, le=1)


class DynamicSparsePruning(RandomPruning):
    """Base of the dynamic-topology methods: a random initial topology (``prune``), then
    topology updates during training (``DynamicSparsity``). Subclasses set
    ``needs_gradient`` and implement ``grow_scores``."""

    Params: ClassVar[type[BaseModel]] = DynamicParams
    needs_gradient: ClassVar[bool] = False
    cosine: ClassVar[bool] = False

    @property
    def dynamic(self) -> DynamicParams:
        """The method's parameters, typed."""
        assert isinstance(self.params, DynamicParams)
        return self.params

    def drop_fraction(self, progress: float) -> float:
        """The fraction of active weights replaced at training ``progress`` (0..1)."""
        p = self.dynamic
        if progress >= p.end:
            return 0.0
        if not self.cosine:
            return p.drop_fraction
        return p.drop_fraction / 2 * (1 + math.cos(math.pi * progress / p.end))

    def grow_scores(self, layer: PrunableLayer, grad: torch.Tensor | None,
                    ctx: PruneContext) -> torch.Tensor:
        """Scores of the candidate positions of ``layer``; the highest are regrown."""
        raise NotImplementedError


def regrow_layer(layer: PrunableLayer, k: int, grow: torch.Tensor) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """One layer's topology update: drop the ``k`` smallest-|w| active weights, then regrow
    the ``k`` best-scored (``grow``) positions that are inactive after the drop (a weight
    just dropped may come back, as in RigL's code).

    Returns:
        (the new 0/1 mask, a bool tensor of the positions whose state changed or were
        regrown: their weights restart at zero and their Adam moments are reset).
    """
    assert layer.mask is not None
    old = layer.mask
    inactive = int((old == 0).sum())
    dropped = mask_lowest(layer.weight.detach().abs(), inactive + k, old)
    scores = grow.detach().flatten().clone()
    scores[dropped.flatten() != 0] = -float("inf")
    order = torch.argsort(scores, descending=True, stable=True)[:k]
    new = dropped.flatten().clone()
    new[order] = 1
    touched = (new != old.flatten())
    touched[order] = True
    return new.view_as(old), touched.view_as(old)


class DynamicSparsity:
    """The ``FlatTrainer`` hook of a sparse-from-scratch policy: keeps the policy's masked
    gradients (and so the Adam moments of masked weights) at zero and, for a dynamic
    method, updates the topology every ``update_every`` optimizer steps.

    Args:
        net: the policy (already masked at its target sparsity).
        method: the pruning method; only a ``DynamicSparsePruning`` updates the topology.
        progress: the fraction of training done so far (drives RigL's decay and ``end``).
        ctx: the seeded generator (SET's random regrowth).
    """

    def __init__(self, net: PrunableNet, method: PruningMethod | None,
                 progress: Callable[[], float], ctx: PruneContext) -> None:
        self.net, self.progress, self.ctx = net, progress, ctx
        self.method = method if isinstance(method, DynamicSparsePruning) else None
        self.steps, self.updates = 0, 0
        self._grads: dict[str, torch.Tensor] = {}

    def _due(self) -> bool:
        if self.method is None:
            return False
        every = self.method.dynamic.update_every
        return (self.steps + 1) % every == 0 and self.method.drop_fraction(self.progress()) > 0

    def before_update(self, trainer: FlatTrainer) -> None:
        layers = plan_layers(self.net, structured=False)
        if self.method is not None and self.method.needs_gradient and self._due():
            # the buffer holds the dense gradient: backward writes every position
            self._grads = {layer.name: layer.weight.grad.detach().clone()  # type: ignore[union-attr]
                           for layer in layers}
        for layer in layers:
            if layer.mask is not None:
                layer.weight.grad.mul_(layer.mask)  # type: ignore[union-attr]

    def after_update(self, trainer: FlatTrainer) -> None:
        due = self._due()
        self.steps += 1
        if due:
            self.update(trainer)

    @torch.no_grad()
    def update(self, trainer: FlatTrainer) -> None:
        """Replace the drop fraction of every masked layer's active weights now."""
        assert self.method is not None
        fraction = self.method.drop_fraction(self.progress())
        for layer in plan_layers(self.net, structured=False):
            if layer.mask is None:
                continue
            k = int(round(fraction * float(layer.mask.sum())))
            if k == 0:
                continue
            grow = self.method.grow_scores(layer, self._grads.get(layer.name), self.ctx)
            mask, touched = regrow_layer(layer, k, grow)
            layer.weight[touched] = 0.0  # regrown weights start at zero
            for moment in trainer.moments(layer.weight):  # type: ignore[arg-type]
                moment[touched] = 0.0
            self.net.set_mask(layer.name, mask)
        self._grads = {}
        self.updates += 1
