"""The convolutional policy family: conv layers over an image, flatten, hidden Linear
layers, the output layer. Its prunable units are the output channels of the conv layers
and the neurons of the hidden Linear layers.

Observations reach every network flat (``rl.envs.flat_observations``): the CNN reshapes
them back to the image, channels last (``(H, W, C)``, gymnasium's and MinAtar's order) or
first (``(C, H, W)``, stacked Atari frames), as ``image_layout`` decides.
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.rl.networks import PrunableLayer, PrunableNet, activations, check_outputs

__all__ = ["CNN", "PRESETS", "image_layout"]

Tensor = torch.Tensor

# name -> (channels, kernels, strides, hidden) of the torso and the dense part
PRESETS: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {
    # MinAtar's DQN (Young & Tian 2019): Conv 16 x 3x3 stride 1 -> 128
    "minatar": ([16], [3], [1], [128]),
    # the Atari DQN torso (Mnih et al. 2015): 32 8x8/4, 64 4x4/2, 64 3x3/1 -> 512
    "nature": ([32, 64, 64], [8, 4, 3], [4, 2, 1], [512]),
}


def image_layout(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """``((C, H, W), channels_last)`` of an image observation of rank 3.

    Channels last unless the first dimension is strictly smaller than the last
    ((4, 84, 84) is channels first; (10, 10, 4), (84, 84, 4) and (10, 10, 10) are
    channels last).

    Raises:
        ValueError: ``shape`` is not of rank 3.
    """
    if len(shape) != 3:
        raise ValueError(f"agent.network: cnn needs an image observation of rank 3, got "
                         f"shape {tuple(shape)}")
    a, b, c = (int(x) for x in shape)
    if a < c:
        return (a, b, c), False
    return (c, a, b), True


class CNN(PrunableNet):
    """Conv layers (no padding) with an activation after each, flatten, then Linear layers
    with an activation between them.

    Args:
        image: ``(C, H, W)`` of the observation image.
        channels, kernels, strides: one value per conv layer.
        hidden: widths of the hidden Linear layers after the flatten (may be empty).
        outputs: the output layer's width.
        activation: a registered activation name.
        channels_last: the flat observation is an ``(H, W, C)`` image (else ``(C, H, W)``).

    Raises:
        ValueError: lists of different lengths, no conv layer, a size below 1, or a kernel
            that does not fit the image (the message names the field).
    """

    def __init__(self, image: tuple[int, int, int], channels: list[int], kernels: list[int],
                 strides: list[int], hidden: list[int], outputs: int,
                 activation: str = "relu", channels_last: bool = True) -> None:
        super().__init__()
        if not channels or not len(channels) == len(kernels) == len(strides):
            raise ValueError(f"agent.channels: {channels}, agent.kernels: {kernels} and "
                             f"agent.strides: {strides} need one value each per conv layer")
        if min([*image, *channels, *kernels, *strides, *hidden, outputs]) < 1:
            raise ValueError("agent.channels: channels, kernels, strides, widths and the "
                             "image must be positive")
        self.image = tuple(int(x) for x in image)
        self.channels, self.kernels, self.strides = list(channels), list(kernels), list(strides)
        self.hidden_sizes = list(hidden)
        self.outputs = outputs
        self.activation = activation
        self.channels_last = channels_last
        act = activations.get(activation).module
        self._act = activations.get(activation).fn
        c, h, w = self.image
        self.spatial: list[tuple[int, int]] = []  # each conv's output (H', W')
        convs = []
        for i, (out, k, s) in enumerate(zip(channels, kernels, strides)):
            h, w = (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(f"agent.kernels: conv layer {i} (kernel {k}, stride {s}) "
                                 f"does not fit the image {self.image} (C, H, W)")
            convs.append(nn.Conv2d(c, out, k, s))
            self.spatial.append((h, w))
            c = out
        self.convs = nn.ModuleList(convs)
        sizes = [c * h * w, *hidden, outputs]
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(act() for _ in range(len(convs) + len(hidden)))
        names = [f"convs.{i}" for i in range(len(convs))]
        names += [f"fc.{i}" for i in range(len(self.fc))]
        self._names = names
        self._weight_masks: dict[str, Tensor | None] = dict.fromkeys(names)
        self._unit_masks: dict[str, Tensor | None] = dict.fromkeys(names[:-1])
        self._masked = False

    # --- structure -----------------------------------------------------------------------
    def _layers(self) -> list[nn.Conv2d | nn.Linear]:
        return [*cast("list[nn.Conv2d]", list(self.convs)),
                *cast("list[nn.Linear]", list(self.fc))]

    @property
    def hidden(self) -> list[int]:
        """Units per structured-prunable layer: conv channels, then hidden widths."""
        return [*self.channels, *self.hidden_sizes]

    def _block(self, i: int) -> int:
        """How many inputs of layer ``i + 1`` one unit of layer ``i`` feeds: its output
        positions when a Linear reads a conv's flattened output, else 1."""
        if i == len(self.convs) - 1:
            h, w = self.spatial[i]
            return h * w
        return 1

    def forward(self, x: Tensor) -> Tensor:
        # the same layers as forward_units without its bookkeeping (acting and training
        # call this thousands of times on a few rows)
        x = self._image(self.normalize_input(x))
        act = self._act
        for conv in cast("list[nn.Conv2d]", list(self.convs)):
            x = act(F.conv2d(x, conv.weight, conv.bias, conv.stride))
        x = x.flatten(1)
        fc = cast("list[nn.Linear]", list(self.fc))
        for layer in fc[:-1]:
            x = act(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, fc[-1].weight, fc[-1].bias)

    def _image(self, x: Tensor) -> Tensor:
        """The flat observations as a contiguous (N, C, H, W) batch. Contiguous: from a
        channels-last view, the conv's output is channels last too, and then the flatten
        and the activation's backward copy across layouts (measured 1.4x slower training
        steps at batch 256 on MinAtar's (10, 10, 4) frames)."""
        c, h, w = self.image
        if self.channels_last:
            return x.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
        return x.reshape(-1, c, h, w)

    def forward_units(self, x: Tensor, keep: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        x = self._image(self.normalize_input(x))
        units: dict[str, Tensor] = {}
        layers, acts = self._layers(), list(self.acts)
        for i, layer in enumerate(layers[:-1]):
            if i == len(self.convs):
                x = x.flatten(1)
            x = acts[i](layer(x))
            if keep:
                units[self._names[i]] = x
        if len(layers) - 1 == len(self.convs):  # no hidden Linear: flatten before the head
            x = x.flatten(1)
        return layers[-1](x), units

    def spec(self) -> dict[str, object]:
        c, h, w = self.image
        return {"type": "cnn", "image": [c, h, w], "channels_last": self.channels_last,
                "channels": self.channels, "kernels": self.kernels, "strides": self.strides,
                "hidden": self.hidden_sizes, "outputs": self.outputs,
                "activation": self.activation, **self.input_spec()}

    # --- the PrunableNet interface -------------------------------------------------------
    def prunable_layers(self) -> list[PrunableLayer]:
        out = []
        for i, (name, layer) in enumerate(zip(self._names, self._layers())):
            conv = i < len(self.convs)
            h, w = self.spatial[i] if conv else (1, 1)
            out.append(PrunableLayer(
                name, layer.weight, layer.bias, self._weight_masks[name],
                self._unit_masks.get(name), "channel" if conv else "neuron",
                structured_prunable=name in self._unit_masks, macs_per_weight=h * w))
        return out

    def set_mask(self, name: str, mask: Tensor) -> None:
        i = self._index(name)
        assert mask.shape == self._layers()[i].weight.shape
        self._weight_masks[name] = mask.to(torch.float32)
        self._masks_changed()

    def set_unit_mask(self, name: str, mask: Tensor) -> None:
        i = self._index(name, structured=True)
        assert mask.shape == (self._layers()[i].weight.shape[0],)
        self._unit_masks[name] = mask.to(torch.bool)
        self._masks_changed()

    @torch.no_grad()
    def remove_units(self, name: str, keep: Tensor) -> None:
        i = self._index(name, structured=True)
        assert keep.dim() == 1 and keep.dtype == torch.long, "keep: sorted unit indices"
        layers = self._layers()
        layer, reader = layers[i], layers[i + 1]
        cols = self._input_index(i, keep)
        layer.weight = nn.Parameter(layer.weight[keep].clone())
        assert layer.bias is not None
        layer.bias = nn.Parameter(layer.bias[keep].clone())
        reader.weight = nn.Parameter(reader.weight[:, cols].clone())
        if isinstance(layer, nn.Conv2d):
            layer.out_channels = self.channels[i] = len(keep)
        else:
            layer.out_features = self.hidden_sizes[i - len(self.convs)] = len(keep)
        if isinstance(reader, nn.Conv2d):
            reader.in_channels = len(keep)
        else:
            reader.in_features = len(cols)
        nxt = self._names[i + 1]
        rows, inputs, units = (self._weight_masks[name], self._weight_masks[nxt],
                               self._unit_masks[name])
        self._weight_masks[name] = None if rows is None else rows[keep].clone()
        self._weight_masks[nxt] = None if inputs is None else inputs[:, cols].clone()
        # a unit mask that keeps every remaining unit says nothing: drop it
        self._unit_masks[name] = None if units is None or bool(units[keep].all()) else units[keep]
        self._masked = any(m is not None for m in [*self._weight_masks.values(),
                                                   *self._unit_masks.values()])
        self.apply_masks()

    @torch.no_grad()
    def keep_outputs(self, n: int) -> None:
        layer = cast("nn.Linear", self.fc[-1])
        check_outputs(n, layer.out_features)
        layer.weight = nn.Parameter(layer.weight[:n].clone())
        layer.bias = nn.Parameter(layer.bias[:n].clone())
        layer.out_features = self.outputs = n
        name = self._names[-1]  # the output layer has no unit mask
        mask = self._weight_masks[name]
        self._weight_masks[name] = None if mask is None else mask[:n].clone()

    def _input_index(self, i: int, units: Tensor) -> Tensor:
        """The inputs of layer ``i + 1`` that units ``units`` of layer ``i`` feed (a
        conv's channel feeds a block of ``_block(i)`` flattened features)."""
        block = self._block(i)
        if block == 1:
            return units
        return (units[:, None] * block + torch.arange(block)[None, :]).flatten()

    @torch.no_grad()
    def apply_masks(self) -> None:
        if not self._masked:
            return
        for layer, (wm, bm) in zip(self._layers(), self.effective_masks()):
            layer.weight.mul_(wm)
            if bm is not None:
                assert layer.bias is not None
                layer.bias.mul_(bm)

    def effective_masks(self) -> list[tuple[Tensor, Tensor | None]]:
        """Per layer: (weight mask, bias mask or None), combining both kinds of mask."""
        out = []
        for i, (name, layer) in enumerate(zip(self._names, self._layers())):
            mask = self._weight_masks[name]
            w = torch.ones_like(layer.weight) if mask is None else mask
            b = None
            rows = self._unit_masks.get(name)
            if rows is not None:
                w = w * rows.to(w.dtype).view(-1, *[1] * (w.dim() - 1))
                b = rows.to(w.dtype)
            cols = self._unit_masks.get(self._names[i - 1]) if i > 0 else None
            if cols is not None:
                cols = cols.to(w.dtype).repeat_interleave(self._block(i - 1))
                w = w * cols.view(1, -1, *[1] * (w.dim() - 2))
            out.append((w, b))
        return out

    def _masks_changed(self) -> None:
        self._masked = True
        self.apply_masks()

    def _index(self, name: str, *, structured: bool = False) -> int:
        allowed = list(self._unit_masks) if structured else self._names
        if name not in allowed:
            kind = "structured-prunable layer" if structured else "layer"
            raise ValueError(f"layer name: {name!r} is not a {kind} of this CNN; allowed: "
                             f"{', '.join(allowed)}")
        return self._names.index(name)
