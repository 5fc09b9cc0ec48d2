"""Networks with named prunable units, and the activation registry.

Pruning, surgery and counting see a network only through ``PrunableNet``: a list of named
``PrunableLayer`` records (weight tensor, masks, the kind of unit) and methods that mask or
remove units by layer name. ``MLP`` (its units are the neurons of hidden Linear layers) and
``rl.cnn.CNN`` (also the output channels of its conv layers) implement it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.rl.normalization import ObsNorm
from nas_prune.util.registry import Registry

__all__ = ["MLP", "Activation", "PrunableLayer", "PrunableNet", "Unit", "activations",
           "check_outputs", "weights_hash"]

Tensor = torch.Tensor
_aten = torch.ops.aten


@dataclass(frozen=True)
class Activation:
    """Everything the package knows about one activation, in one record.

    module: builds the ``nn.Module`` a network holds (``nn.ReLU``).
    fn: the same function on tensors (the fast training path's forward).
    backward: ``(grad_out, pre_activation, post_activation) -> grad_in``, the op autograd
        itself runs for this activation (the fast training path's hand-written backward).
    numpy: an in-place numpy form for acting on a few rows, where numpy's per-call overhead
        (~1 us) beats torch's (~5-20 us on these CPUs); None: acting uses torch.
    """

    module: Callable[[], nn.Module]
    fn: Callable[[Tensor], Tensor]
    backward: Callable[[Tensor, Tensor, Tensor], Tensor]
    numpy: Callable[[np.ndarray], np.ndarray] | None = None


activations: Registry[Activation] = Registry("activation", "agent.activation")
for _name, _act in {
    "relu": Activation(nn.ReLU, torch.relu, lambda g, z, h: _aten.threshold_backward(g, h, 0),
                       lambda z: np.maximum(z, 0, out=z)),
    "tanh": Activation(nn.Tanh, torch.tanh, lambda g, z, h: _aten.tanh_backward(g, h),
                       lambda z: np.tanh(z, out=z)),
    "elu": Activation(nn.ELU, F.elu,
                      lambda g, z, h: _aten.elu_backward(g, 1.0, 1, 1, True, h)),
    "gelu": Activation(nn.GELU, F.gelu, lambda g, z, h: _aten.gelu_backward(g, z)),
    "silu": Activation(nn.SiLU, F.silu, lambda g, z, h: _aten.silu_backward(g, z)),
    # 0.01: nn.LeakyReLU's and F.leaky_relu's default negative slope
    "leaky_relu": Activation(nn.LeakyReLU, F.leaky_relu,
                             lambda g, z, h: _aten.leaky_relu_backward(g, z, 0.01, False)),
}.items():
    activations.register(_name)(_act)

# What one row (dim 0) of a prunable weight is: a Linear's output neuron or a conv's
# output channel (``rl.cnn.CNN``).
Unit = Literal["neuron", "channel"]


@dataclass(frozen=True)
class PrunableLayer:
    """One weight layer as pruning sees it: a snapshot, re-read after changing masks.

    Args:
        name: the layer's module name (``"layers.0"``), also its state-dict prefix.
        weight: the weight Parameter; dim 0 indexes the layer's units.
        bias: the bias Parameter, or None.
        mask: the unstructured 0/1 float mask over ``weight`` (None: none set).
        unit_mask: which units survive, bool over dim 0 (None: none set).
        unit: what one row of ``weight`` is (``"neuron"``: an output of a Linear).
        structured_prunable: whether units may be removed (False for the output layer: a
            policy never loses outputs).
        macs_per_weight: multiply-accumulates each weight does in one forward of one input
            (1 for a Linear; a conv's output positions).
    """

    name: str
    weight: Tensor
    bias: Tensor | None
    mask: Tensor | None
    unit_mask: Tensor | None
    unit: Unit
    structured_prunable: bool
    macs_per_weight: int = 1

    @property
    def n_units(self) -> int:
        """How many units (rows of ``weight``) the layer has."""
        return int(self.weight.shape[0])

    def params(self) -> int:
        """Parameters physically present (weight + bias)."""
        return self.weight.numel() + (0 if self.bias is None else self.bias.numel())

    def params_nonzero(self) -> int:
        """Nonzero parameters: masked entries are exact zeros, so this is mask-aware."""
        bias = 0 if self.bias is None else int((self.bias != 0).sum())
        return int((self.weight != 0).sum()) + bias

    def macs(self) -> int:
        """Multiply-accumulates of one forward of one input through the dense layer."""
        return self.weight.numel() * self.macs_per_weight

    def macs_nonzero(self) -> int:
        """The multiply-accumulates a sparse kernel would do (nonzero weights only)."""
        return int((self.weight != 0).sum()) * self.macs_per_weight


class PrunableNet(nn.Module):
    """What pruning, surgery and counting may use of a network; subclasses implement it.

    Masks are not parameters and not in the state dict: pruning writes zeros into the
    weights, and ``apply_masks`` re-zeroes them after every optimizer step.
    """

    activation: str  # a registered activation name (``activations``), between layers

    def __init__(self) -> None:
        super().__init__()
        # the optional input stage (observation statistics, ``rl.normalization``): not a
        # prunable layer, applied first by every forward, saved in the state dict and spec
        self.obs_norm: ObsNorm | None = None

    def normalize_input(self, x: Tensor) -> Tensor:
        """``x`` through the input stage (unchanged without one)."""
        return x if self.obs_norm is None else self.obs_norm(x)

    def input_spec(self) -> dict[str, object]:
        """The input stage's part of ``spec`` (empty without one)."""
        return {} if self.obs_norm is None else {"obs_norm": self.obs_norm.spec()}

    def prunable_layers(self) -> list[PrunableLayer]:
        """Every weight layer, input first (the output layer last)."""
        raise NotImplementedError

    def set_mask(self, name: str, mask: Tensor) -> None:
        """Set the unstructured mask (1 keeps, 0 prunes) of layer ``name`` and apply it.

        Raises:
            ValueError: ``name`` is not a layer of this network (the message lists them).
        """
        raise NotImplementedError

    def set_unit_mask(self, name: str, mask: Tensor) -> None:
        """Set which units of layer ``name`` survive (bool over its units) and apply it.

        Raises:
            ValueError: ``name`` is not a structured-prunable layer of this network.
        """
        raise NotImplementedError

    def remove_units(self, name: str, keep: Tensor) -> None:
        """Physically keep only units ``keep`` (sorted long indices) of layer ``name``, and
        the matching inputs of the layer reading them; masks are sliced along.

        Raises:
            ValueError: ``name`` is not a structured-prunable layer of this network.
        """
        raise NotImplementedError

    def keep_outputs(self, n: int) -> None:
        """Physically keep only the first ``n`` outputs: the output layer's first ``n`` rows
        of weight, bias and mask (a deployed policy without an agent's training-only
        outputs, ``pruning.surgery.deployed``).

        Raises:
            ValueError: ``n`` is not between 1 and the present output count.
        """
        raise NotImplementedError

    def forward_units(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The output for ``x`` and, per structured-prunable layer name, its units' values
        as the next layer reads them (after the nonlinearity), in the autograd graph."""
        raise NotImplementedError

    def apply_masks(self) -> None:
        """Zero every pruned weight and bias in place (call after each optimizer step)."""
        raise NotImplementedError

    def spec(self) -> dict[str, object]:
        """The JSON architecture spec that rebuilds this network."""
        raise NotImplementedError


class MLP(PrunableNet):
    """A stack of Linear layers with an activation between them, and optional masks.

    Its prunable units are the neurons of the hidden Linear layers (``layers.0`` up to the
    one before the output layer); every Linear takes unstructured masks.

    Args:
        sizes: layer widths, input first and output last, e.g. ``[4, 64, 64, 2]``.
        activation: a registered activation name.

    Raises:
        ValueError: fewer than two sizes, a size below 1, or an unknown activation.
    """

    def __init__(self, sizes: list[int], activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"agent.hidden: layer sizes must be positive, got {sizes}")
        self.sizes = list(sizes)
        self.activation = activation
        act = activations.get(activation).module
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(act() for _ in range(len(sizes) - 2))
        # Unstructured masks per Linear weight; unit (neuron) masks per hidden Linear. Set
        # them through set_mask / set_unit_mask only: apply_masks skips all work until one
        # of those has been called (it runs after every optimizer step).
        self._weight_masks: list[Tensor | None] = [None] * len(self.layers)
        self._unit_masks: list[Tensor | None] = [None] * (len(sizes) - 2)
        self._effective: list[tuple[Tensor, Tensor | None]] | None = None
        self._masked = False

    def linears(self) -> list[nn.Linear]:
        """The Linear layers, input first (typed: indexing the ModuleList gives Module). A
        plain list: indexing a ModuleList builds a new one, slow per call (hot paths)."""
        return cast("list[nn.Linear]", list(self.layers))

    @property
    def hidden(self) -> list[int]:
        """Hidden layer widths."""
        return self.sizes[1:-1]

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize_input(x)
        layers = self.linears()
        for layer, act in zip(layers, self.acts):
            x = act(layer(x))
        return layers[-1](x)

    # --- the PrunableNet interface -------------------------------------------------------
    def prunable_layers(self) -> list[PrunableLayer]:
        hidden = len(self._unit_masks)
        return [PrunableLayer(f"layers.{i}", layer.weight, layer.bias, self._weight_masks[i],
                              self._unit_masks[i] if i < hidden else None, "neuron",
                              structured_prunable=i < hidden)
                for i, layer in enumerate(self.linears())]

    def set_mask(self, name: str, mask: Tensor) -> None:
        i = self._index(name)
        assert mask.shape == self.layers[i].weight.shape
        self._weight_masks[i] = mask.to(torch.float32)
        self._masks_changed()

    def set_unit_mask(self, name: str, mask: Tensor) -> None:
        i = self._index(name, structured=True)
        assert mask.shape == (self.sizes[i + 1],)
        self._unit_masks[i] = mask.to(torch.bool)
        self._masks_changed()

    @torch.no_grad()
    def remove_units(self, name: str, keep: Tensor) -> None:
        i = self._index(name, structured=True)
        assert keep.dim() == 1 and keep.dtype == torch.long, "keep: sorted unit indices"
        layer, reader = self.linears()[i], self.linears()[i + 1]
        layer.weight = nn.Parameter(layer.weight[keep].clone())
        layer.bias = nn.Parameter(layer.bias[keep].clone())
        reader.weight = nn.Parameter(reader.weight[:, keep].clone())
        layer.out_features = reader.in_features = self.sizes[i + 1] = len(keep)
        rows, cols, units = self._weight_masks[i], self._weight_masks[i + 1], self._unit_masks[i]
        self._weight_masks[i] = None if rows is None else rows[keep].clone()
        self._weight_masks[i + 1] = None if cols is None else cols[:, keep].clone()
        # a unit mask that keeps every remaining unit says nothing: drop it
        self._unit_masks[i] = None if units is None or bool(units[keep].all()) else units[keep]
        self._effective = None
        self._masked = any(m is not None for m in self._weight_masks + self._unit_masks)
        self.apply_masks()

    @torch.no_grad()
    def keep_outputs(self, n: int) -> None:
        layer = self.linears()[-1]
        check_outputs(n, layer.out_features)
        layer.weight = nn.Parameter(layer.weight[:n].clone())
        layer.bias = nn.Parameter(layer.bias[:n].clone())
        layer.out_features = self.sizes[-1] = n
        mask = self._weight_masks[-1]  # the output layer has no unit mask
        self._weight_masks[-1] = None if mask is None else mask[:n].clone()
        self._effective = None

    def forward_units(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.normalize_input(x)
        layers = self.linears()
        units = {}
        for i, (layer, act) in enumerate(zip(layers, self.acts)):
            x = act(layer(x))
            units[f"layers.{i}"] = x
        return layers[-1](x), units

    @torch.no_grad()
    def apply_masks(self) -> None:
        if not self._masked:
            return
        for layer, (wm, bm) in zip(self.linears(), self.effective_masks()):
            layer.weight.mul_(wm)
            if bm is not None:
                layer.bias.mul_(bm)

    def spec(self) -> dict[str, object]:
        return {"type": "mlp", "sizes": self.sizes, "activation": self.activation,
                **self.input_spec()}

    # --- masks ---------------------------------------------------------------------------
    def effective_masks(self) -> list[tuple[Tensor, Tensor | None]]:
        """Per Linear: (weight mask, bias mask or None), combining both kinds of mask."""
        if self._effective is None:
            self._effective = [self._combine(i) for i in range(len(self.layers))]
        return self._effective

    def _combine(self, i: int) -> tuple[Tensor, Tensor | None]:
        layer = self.linears()[i]
        mask = self._weight_masks[i]
        w = torch.ones_like(layer.weight) if mask is None else mask
        b = None
        rows = self._unit_masks[i] if i < len(self._unit_masks) else None
        cols = self._unit_masks[i - 1] if i > 0 else None
        if rows is not None:
            w = w * rows.to(w.dtype)[:, None]
            b = rows.to(w.dtype)
        if cols is not None:
            w = w * cols.to(w.dtype)[None, :]
        return w, b

    def _masks_changed(self) -> None:
        self._effective = None
        self._masked = True
        self.apply_masks()

    def _index(self, name: str, *, structured: bool = False) -> int:
        n = len(self._unit_masks) if structured else len(self.layers)
        allowed = [f"layers.{i}" for i in range(n)]
        if name not in allowed:
            kind = "structured-prunable layer" if structured else "layer"
            raise ValueError(f"layer name: {name!r} is not a {kind} of this MLP; allowed: "
                             f"{', '.join(allowed)}")
        return int(name.removeprefix("layers."))


def check_outputs(n: int, present: int) -> None:
    """``keep_outputs``'s check: 1 <= ``n`` <= ``present``."""
    if not 1 <= n <= present:
        raise ValueError(f"outputs: keep between 1 and {present} outputs, got {n}")


def weights_hash(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, bytes), for determinism checks."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
