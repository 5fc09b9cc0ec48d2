"""``FlatMLP``'s hand-written training path for the CNN family: forward with a tape,
backward by hand into a ``FlatTrainer``'s gradient buffer, and numpy acting on one row.

Why: at DQN's batch (32 rows of a 10 x 10 MinAtar frame) a gradient step through autograd
spent about a third of its time outside arithmetic (the graph, per-parameter gradient
copies, module calls; torch.profiler). Here each layer's weight gradient is written
straight into its slice of the buffer, the input gradient of the first conv is never
computed, and acting on one observation skips torch's per-op overhead (the conv as an
im2col gather and a matmul in numpy). ``tests/rl/optim/test_flatcnn.py`` checks both
against autograd and the module's forward.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.rl.cnn import CNN
from nas_prune.rl.networks import activations

__all__ = ["FlatCNN"]

Tensor = torch.Tensor
_conv_backward = torch.ops.aten.convolution_backward


def _im2col_index(height: int, width: int, kernel: int, stride: int) -> np.ndarray:
    """(output positions, kernel positions) indices into the (H * W) input positions."""
    out_h, out_w = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    pos = np.arange(height * width).reshape(height, width)
    rows = [pos[i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            for i in range(kernel) for j in range(kernel)]
    return np.stack(rows, -1).reshape(out_h * out_w, kernel * kernel)


def _bias(layer: nn.Conv2d, *, grad: bool = False) -> Tensor:
    """A conv's bias (``rl.cnn.CNN`` gives every conv one), detached, or its gradient."""
    bias = layer.bias
    assert bias is not None, "a CNN conv has a bias"
    if grad:
        assert bias.grad is not None, "backward needs a FlatTrainer's net"
        return bias.grad
    return bias.detach()


class FlatCNN:
    """Forward and hand-written backward of one ``CNN`` (the ``FlatMLP`` interface).

    ``forward(x, record=True)`` keeps what one following ``backward(d_out)`` needs;
    ``backward`` overwrites the parameters' ``.grad`` tensors (slices of a trainer's flat
    gradient buffer).
    """

    def __init__(self, net: CNN) -> None:
        self.net = net
        activation = activations.get(net.activation)
        self.act, self.act_backward = activation.fn, activation.backward
        self._act_numpy = activation.numpy
        self._tape: list[tuple[Tensor, Tensor, Tensor]] = []
        c, h, w = net.image
        self._index = []
        for k, s, (out_h, out_w) in zip(net.kernels, net.strides, net.spatial):
            self._index.append(_im2col_index(h, w, k, s))
            h, w = out_h, out_w
        self.bind()

    def bind(self) -> None:
        """Re-read the parameter views (after the storage moved into another buffer)."""
        self.convs = cast("list[nn.Conv2d]", list(self.net.convs))
        self.linears = cast("list[nn.Linear]", list(self.net.fc))
        self._ptr = self.convs[0].weight.data_ptr()

    def _bound(self) -> None:
        if self.convs[0].weight.data_ptr() != self._ptr or len(self.convs) != len(
                self.net.convs):
            self.bind()

    def act_forward(self, x: np.ndarray) -> np.ndarray:
        """The output for a few rows of float32 observations (acting): numpy for one row
        where the activation has a numpy form, torch otherwise."""
        self._bound()
        if len(x) != 1 or self._act_numpy is None:
            with torch.no_grad():
                return self.forward(torch.as_tensor(x, dtype=torch.float32)).numpy()
        return self._numpy_forward(x[0])

    def _numpy_forward(self, x: np.ndarray) -> np.ndarray:
        act = self._act_numpy
        assert act is not None
        c, h, w = self.net.image
        # positions x channels, row-major positions (channels last)
        feat = x.reshape(h * w, c) if self.net.channels_last else x.reshape(c, h * w).T
        for conv, index in zip(self.convs, self._index):
            weight = conv.weight.detach().numpy()  # (out, in, k, k)
            cols = feat[index].reshape(len(index), -1)  # (positions, k * k * in)
            kernel = weight.transpose(2, 3, 1, 0).reshape(cols.shape[1], -1)
            feat = act(cols @ kernel + _bias(conv).numpy())
        out = feat.T.reshape(1, -1)  # flatten in (C, H, W) order, as the module does
        for i, layer in enumerate(self.linears):
            out = out @ layer.weight.detach().numpy().T
            out += layer.bias.detach().numpy()
            if i < len(self.linears) - 1:
                out = act(out)
        return out

    def forward(self, x: Tensor, *, record: bool = False) -> Tensor:
        """The network's output for a batch ``x`` of flat observations."""
        self._bound()
        tape = []
        h = self.net._image(x)  # noqa: SLF001
        for conv in self.convs:
            z = F.conv2d(h, conv.weight.detach(), _bias(conv), conv.stride)
            a = self.act(z)
            if record:
                tape.append((h, z, a))
            h = a
        h = h.flatten(1)
        last = len(self.linears) - 1
        for i, layer in enumerate(self.linears):
            z = torch.addmm(layer.bias.detach(), h, layer.weight.detach().t())
            a = self.act(z) if i < last else z
            if record:
                tape.append((h, z, a))
            h = a
        self._tape = tape
        return h

    def backward(self, d_out: Tensor) -> None:
        """Write d loss / d parameters, given d loss / d output (of the first rows of the
        recorded batch), into the gradient buffer."""
        if not self._tape:
            raise RuntimeError("FlatCNN.backward needs a forward(..., record=True) first")
        rows = len(d_out)
        tape = self._tape
        if rows != len(tape[0][0]):
            tape = [(h[:rows], z[:rows], a[:rows]) for h, z, a in tape]
        self._tape = []
        n_conv = len(self.convs)
        g = d_out
        for j in range(len(self.linears) - 1, -1, -1):
            layer = self.linears[j]
            h_in = tape[n_conv + j][0]
            gw, gb = layer.weight.grad, layer.bias.grad
            assert gw is not None and gb is not None, "backward needs a FlatTrainer's net"
            torch.mm(g.t(), h_in, out=gw)
            torch.sum(g, 0, out=gb)
            g = torch.mm(g, layer.weight.detach())
            _, z, a = tape[n_conv + j - 1]
            g = self.act_backward(g.view_as(z), z, a)
        for i in range(n_conv - 1, -1, -1):
            conv = self.convs[i]
            h_in = tape[i][0]
            gw, gb = conv.weight.grad, _bias(conv, grad=True)
            assert gw is not None, "backward needs a FlatTrainer's net"
            g_in, g_w, g_b = _conv_backward(
                g, h_in, conv.weight.detach(), [conv.out_channels], list(conv.stride), [0, 0],
                [1, 1], False, [0, 0], 1, [i > 0, True, True])
            gw.copy_(g_w)
            gb.copy_(g_b)
            if i:
                _, z, a = tape[i - 1]
                g = self.act_backward(g_in, z, a)
