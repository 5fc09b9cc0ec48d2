"""The PruningMethod interface, its registry, and the selection helpers methods share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import torch
from pydantic import BaseModel, ConfigDict

from nas_prune.rl.networks import MLP, PrunableLayer, PrunableNet
from nas_prune.util.registry import Registry

__all__ = ["NoParams", "PruneContext", "PruningMethod", "check_plan", "check_sparsity",
           "mask_lowest", "methods", "n_to_prune", "plan_layers", "prunable_layer_count",
           "unit_keep"]


class NoParams(BaseModel):
    """Methods without parameters accept none (a typo must not vanish)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _max_output(out: torch.Tensor) -> torch.Tensor:
    return out.max(dim=-1).values.mean()


@dataclass
class PruneContext:
    """What a pruning step may use besides the network.

    generator: the seeded RNG for random methods.
    states: a batch of visited states (for data-driven importance scores).
    objective: maps the network's output on ``states`` to a scalar (Taylor scores).
    """

    generator: torch.Generator
    states: torch.Tensor | None = None
    objective: Callable[[torch.Tensor], torch.Tensor] = field(default=_max_output)


class PruningMethod:
    """Base class: turn per-layer target sparsities into masks on a ``PrunableNet``.

    Subclasses set ``structured`` and implement ``prune``. ``sparsity[i]`` is the target
    fraction of the weights of the i-th layer in ``plan_layers`` (unstructured: every
    weight layer) or of its units (structured: the layers whose units may be removed; the
    output layer never loses outputs). Pruning is cumulative: what an earlier step removed
    stays removed.
    """

    structured: ClassVar[bool] = False
    global_plan: ClassVar[bool] = False  # True: the plan is met over all layers together
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def plan_layers(cls, net: PrunableNet) -> list[PrunableLayer]:
        """The layers this method's plan values refer to, in order."""
        return plan_layers(net, cls.structured)

    @classmethod
    def n_prunable(cls, net: PrunableNet) -> int:
        """How many sparsity values this method takes for ``net``."""
        return len(cls.plan_layers(net))

    def prune(self, net: PrunableNet, sparsity: Sequence[float], ctx: PruneContext) -> None:
        """Mask ``net`` in place so each prunable layer reaches its target."""
        raise NotImplementedError

    def step_targets(self, final: Sequence[float], progress: float) -> list[float]:
        """Per-layer targets when a schedule is ``progress`` (0..1) of the way through."""
        return [s * progress for s in final]

    def penalty(self, net: PrunableNet) -> torch.Tensor | None:
        """A regulariser added to the fine-tuning loss before pruning (None: none)."""
        return None


methods: Registry[type[PruningMethod]] = Registry("pruning method", "pruning.method")


def n_to_prune(sparsity: float, n: int) -> int:
    """round(sparsity * n), leaving at least one element (sparsity < 1 never empties a layer)."""
    return min(int(round(sparsity * n)), n - 1)


def mask_lowest(scores: torch.Tensor, k: int, old: torch.Tensor | None) -> torch.Tensor:
    """A 0/1 mask (same shape as ``scores``) that removes the ``k`` lowest scores.

    Entries already removed by ``old`` are removed first (their score counts as -inf),
    so a mask only ever grows. Ties break by index: the result is deterministic.
    """
    flat = scores.detach().flatten().clone()
    if old is not None:
        flat[old.flatten() == 0] = -float("inf")
    order = torch.argsort(flat, stable=True)
    mask = torch.ones_like(flat)
    mask[order[:k]] = 0
    if old is not None:
        mask = mask * old.flatten().to(mask.dtype)
    return mask.view_as(scores)


def unit_keep(scores: torch.Tensor, k: int, old: torch.Tensor | None) -> torch.Tensor:
    """A bool keep-mask over units that drops the ``k`` lowest-scoring ones (``old``: the
    units' current keep-mask, whose removals stay)."""
    old_f = None if old is None else old.to(torch.float32)
    return mask_lowest(scores, k, old_f).to(torch.bool)


def plan_layers(net: PrunableNet, structured: bool) -> list[PrunableLayer]:
    """The layers a plan's values refer to, in order: every weight layer (unstructured) or
    those whose units may be removed (structured)."""
    return [layer for layer in net.prunable_layers()
            if layer.structured_prunable or not structured]


def prunable_layer_count(hidden: Sequence[int], structured: bool, convs: int = 0) -> int:
    """How many sparsity values a method takes for the network with these hidden widths
    (after ``convs`` conv layers, each one more prunable layer), before the real network
    exists (config validation, search spaces).

    Counted on a network of as many layers (``plan_layers``), built on the meta device: no
    memory, no random draws, so seeded results stay as they were.
    """
    with torch.device("meta"):
        net = MLP([1, *([1] * convs), *hidden, 1])
    return len(plan_layers(net, structured))


def check_sparsity(value: float, field: str = "pruning.sparsity") -> float:
    """Return ``value`` if it is a sparsity fraction in [0, 1) (1 would empty a layer).

    Raises:
        ValueError: ``value`` outside [0, 1) or NaN; the message names ``field``.
    """
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{field}: {value} is outside [0, 1)")
    return value


def check_plan(net: PrunableNet, sparsity: Sequence[float], method: type[PruningMethod]) -> None:
    """Check a per-layer plan against the network.

    Raises:
        ValueError: the plan's length is not ``method.n_prunable(net)``, or a value is
            outside [0, 1).
    """
    n = method.n_prunable(net)
    if len(sparsity) != n:
        raise ValueError(
            f"pruning.sparsity: {len(sparsity)} values given, the network has {n} prunable "
            f"layers for this method"
        )
    for s in sparsity:
        check_sparsity(s)
