"""The PruningMethod interface, its registry, and the selection helpers methods share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import torch
from pydantic import BaseModel, ConfigDict

from nas_prune.rl.networks import MLP
from nas_prune.util.registry import Registry


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
    """Base class: turn per-layer target sparsities into masks on an MLP.

    Subclasses set ``structured`` and implement ``prune``. ``sparsity[i]`` is the target
    fraction of layer i's weights (unstructured: every Linear) or of hidden layer i's
    neurons (structured; the output layer never loses outputs). Pruning is cumulative:
    what an earlier step removed stays removed.
    """

    structured: ClassVar[bool] = False
    global_plan: ClassVar[bool] = False  # True: the plan is met over all layers together
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def n_prunable(cls, net: MLP) -> int:
        """How many sparsity values this method takes for ``net``."""
        return len(net.hidden) if cls.structured else len(net.layers)

    def prune(self, net: MLP, sparsity: Sequence[float], ctx: PruneContext) -> None:
        """Mask ``net`` in place so each prunable layer reaches its target."""
        raise NotImplementedError

    def step_targets(self, final: Sequence[float], progress: float) -> list[float]:
        """Per-layer targets when a schedule is ``progress`` (0..1) of the way through."""
        return [s * progress for s in final]

    def penalty(self, net: MLP) -> torch.Tensor | None:
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


def neuron_keep(scores: torch.Tensor, k: int, old: torch.Tensor | None) -> torch.Tensor:
    """A bool keep-mask over neurons that drops the ``k`` lowest-scoring ones."""
    old_f = None if old is None else old.to(torch.float32)
    return mask_lowest(scores, k, old_f).to(torch.bool)


def check_plan(net: MLP, sparsity: Sequence[float], method: type[PruningMethod]) -> None:
    """Raise ValueError if the plan does not fit the network."""
    n = method.n_prunable(net)
    if len(sparsity) != n:
        raise ValueError(
            f"pruning.sparsity: {len(sparsity)} values given, the network has {n} prunable "
            f"layers for this method"
        )
    for s in sparsity:
        if not 0.0 <= s < 1.0:
            raise ValueError(f"pruning.sparsity: {s} is outside [0, 1)")
