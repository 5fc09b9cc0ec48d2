"""MLP with pruning masks: the one network type every agent builds its policy from."""
from __future__ import annotations

import hashlib
from typing import Callable, cast

import torch
from torch import nn

from nas_prune.util.registry import Registry

activations: Registry[Callable[[], nn.Module]] = Registry("activation", "agent.activation")
activations.register("relu")(nn.ReLU)
activations.register("tanh")(nn.Tanh)
activations.register("elu")(nn.ELU)
activations.register("gelu")(nn.GELU)
activations.register("silu")(nn.SiLU)
activations.register("leaky_relu")(nn.LeakyReLU)


class MLP(nn.Module):
    """A stack of Linear layers with an activation between them, and optional masks.

    Masks are not parameters and not in the state dict: pruning writes zeros into the
    weights, and ``apply_masks`` re-zeroes them after every optimizer step.

    Args:
        sizes: layer widths, input first and output last, e.g. ``[4, 64, 64, 2]``.
        activation: a registered activation name.
    """

    def __init__(self, sizes: list[int], activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"agent.hidden: layer sizes must be positive, got {sizes}")
        self.sizes = list(sizes)
        self.activation = activation
        act = activations.get(activation)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(act() for _ in range(len(sizes) - 2))
        # Unstructured masks per Linear weight; neuron masks per hidden layer (structured).
        # Set them through set_weight_mask / set_neuron_mask only: apply_masks skips all work
        # until one of those has been called (it runs after every optimizer step).
        self.weight_masks: list[torch.Tensor | None] = [None] * len(self.layers)
        self.neuron_masks: list[torch.Tensor | None] = [None] * (len(sizes) - 2)
        self._effective: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        self._masked = False

    def linears(self) -> list[nn.Linear]:
        """The Linear layers, input first (typed: indexing the ModuleList gives Module). A
        plain list: indexing a ModuleList builds a new one, slow per call (hot paths)."""
        return cast("list[nn.Linear]", list(self.layers))

    @property
    def hidden(self) -> list[int]:
        """Hidden layer widths."""
        return self.sizes[1:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = self.linears()
        for layer, act in zip(layers, self.acts):
            x = act(layer(x))
        return layers[-1](x)

    # --- masks -------------------------------------------------------------------------
    def set_weight_mask(self, index: int, mask: torch.Tensor) -> None:
        """Set the unstructured mask of Linear ``index`` (1 keeps, 0 prunes) and apply it."""
        assert mask.shape == self.layers[index].weight.shape
        self.weight_masks[index] = mask.to(torch.float32)
        self._effective = None
        self._masked = True
        self.apply_masks()

    def set_neuron_mask(self, hidden_index: int, mask: torch.Tensor) -> None:
        """Set which neurons of hidden layer ``hidden_index`` survive, and apply it."""
        assert mask.shape == (self.sizes[hidden_index + 1],)
        self.neuron_masks[hidden_index] = mask.to(torch.bool)
        self._effective = None
        self._masked = True
        self.apply_masks()

    def has_masks(self) -> bool:
        """True when any mask is set."""
        return any(m is not None for m in self.weight_masks + self.neuron_masks)

    def effective_masks(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per Linear: (weight mask, bias mask or None), combining both kinds of mask."""
        if self._effective is None:
            self._effective = [self._combine(i) for i in range(len(self.layers))]
        return self._effective

    def _combine(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        layer = self.linears()[i]
        mask = self.weight_masks[i]
        w = torch.ones_like(layer.weight) if mask is None else mask
        b = None
        rows = self.neuron_masks[i] if i < len(self.neuron_masks) else None
        cols = self.neuron_masks[i - 1] if i > 0 else None
        if rows is not None:
            w = w * rows.to(w.dtype)[:, None]
            b = rows.to(w.dtype)
        if cols is not None:
            w = w * cols.to(w.dtype)[None, :]
        return w, b

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero every pruned weight and bias in place (call after each optimizer step)."""
        if not self._masked:
            return
        for layer, (wm, bm) in zip(self.linears(), self.effective_masks()):
            layer.weight.mul_(wm)
            if bm is not None:
                layer.bias.mul_(bm)

    def spec(self) -> dict[str, object]:
        """The JSON architecture spec that rebuilds this network."""
        return {"type": "mlp", "sizes": self.sizes, "activation": self.activation}


def weights_hash(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, bytes), for determinism checks."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
