"""``FlatMLP``'s hand-written training path for the CNN family: forward with a tape,
backward by hand into a ``FlatTrainer``'s gradient buffer, and acting on a few rows
without mkldnn's per-call setup.

Why: at DQN's batch (32 rows of a 10 x 10 MinAtar frame) a gradient step through autograd
spent about a third of its time outside arithmetic (the graph, per-parameter gradient
copies, module calls; torch.profiler). Here each layer's weight gradient is written
straight into its slice of the buffer, the input gradient of the first conv is never
computed, and acting on a few observations runs each conv as an im2col gather and one
matmul. ``tests/rl/optim/test_flatcnn.py`` checks both against autograd and the module's
forward.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.rl.cnn import CNN
from nas_prune.rl.networks import activations

__all__ = ["SMALL", "FlatCNN"]

SMALL = 32  # a forward without a tape on up to this many rows runs the first conv as im2col
# (measured on MinAtar frames: 59 -> 32 us at 8 rows, 89 -> 81 at 32, slower from 256)

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
        self._im2col = False  # whether the tape's first conv entry holds im2col columns
        self.bind()

    def bind(self) -> None:
        """Re-read the layers (after the storage moved into another buffer, or surgery)."""
        self.convs = cast("list[nn.Conv2d]", list(self.net.convs))
        self.linears = cast("list[nn.Linear]", list(self.net.fc))
        self._key = self._layout()
        # acting's im2col: per conv, indices of its input columns, (output position,
        # kernel row, kernel column, input channel) order, into the flat input
        c, h, w = self.net.image
        channels_last = self.net.channels_last
        self._cols = []
        self._first = torch.zeros(0, dtype=torch.long)
        for conv, (out_h, out_w) in zip(self.convs, self.net.spatial):
            pos = torch.from_numpy(_im2col_index(h, w, conv.kernel_size[0], conv.stride[0]))
            chan = torch.arange(c)
            index = (pos[..., None] * c + chan if channels_last
                     else chan * (h * w) + pos[..., None])
            self._cols.append(index.reshape(-1))
            if not self._first.numel():  # the first conv's, (kernel position, channel,
                # output position) order: its columns are (N, k * k * C, H' * W')
                self._first = index.permute(1, 2, 0).reshape(-1)
                self._positions = out_h * out_w
            c, h, w, channels_last = conv.out_channels, out_h, out_w, True

    def _layout(self) -> tuple[int, ...]:
        return (self.convs[0].weight.data_ptr(), *self.net.channels)

    def act_forward(self, x: np.ndarray) -> np.ndarray:
        """The output for a few rows of float32 observations (acting): ``forward``, in
        numpy for one row."""
        if self._layout() != self._key:
            self.bind()
        if len(x) == 1 and self._act_numpy is not None:
            return self._numpy_forward(np.asarray(x, dtype=np.float32).reshape(-1))
        with torch.no_grad():
            return self.forward(torch.as_tensor(x, dtype=torch.float32)).numpy()

    def _numpy_forward(self, x: np.ndarray) -> np.ndarray:
        # _small_forward on one row in numpy (a numpy call costs ~1-2 us, a torch op ~5-10)
        act = self._act_numpy
        assert act is not None
        # the net's input stage (observation statistics) first, as CNN.forward does
        norm = self.net.obs_norm
        h = x if norm is None else norm.normalize(x[None])[0]
        for conv, index in zip(self.convs, self._cols):
            weight = conv.weight.detach().numpy()
            kernel = weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])
            z = h[index.numpy()].reshape(-1, kernel.shape[0]) @ kernel
            z += _bias(conv).numpy()
            h = act(z).reshape(-1)
        h = h.reshape(-1, self.convs[-1].out_channels).T.reshape(1, -1)
        last = len(self.linears) - 1
        for i, layer in enumerate(self.linears):
            h = h @ layer.weight.detach().numpy().T
            h += layer.bias.detach().numpy()
            if i < last:
                h = act(h)
        return h

    def _first_conv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(im2col columns (N, k * k * C, H' * W'), pre-activation (N, C', H', W')) of the
        first conv: one gather and one batched matmul, whose output is already the
        (N, C', H', W') layout the rest reads."""
        conv = self.convs[0]
        weight = conv.weight.detach()
        n = len(x)
        cols = x.reshape(n, -1).index_select(1, self._first).view(n, -1, self._positions)
        z = torch.matmul(weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1), cols)
        z += _bias(conv)[:, None]
        return cols, z.view(n, weight.shape[0], *self.net.spatial[0])

    def forward(self, x: Tensor, *, record: bool = False) -> Tensor:
        """The network's output for a batch ``x`` of flat observations."""
        if self._layout() != self._key:
            self.bind()
        tape = []
        # the first conv as im2col + matmul when training (its weight gradient is then
        # one batched matmul with the same columns: 1.1-1.8x faster than mkldnn's forward
        # and backward at 32-256 rows) or acting on a few rows; mkldnn otherwise
        self._im2col = record or len(x) <= SMALL
        x = self.net.normalize_input(x)  # no parameters: the backward stops at the conv
        h = x
        for i, conv in enumerate(self.convs):
            if i == 0 and self._im2col:
                h, z = self._first_conv(x)
            else:
                h = self.net._image(x) if i == 0 else h  # noqa: SLF001
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
            if i == 0 and self._im2col:  # h_in: the columns; the first conv needs no g_in
                g = g.reshape(rows, conv.out_channels, -1)
                grad_k = torch.bmm(g, h_in.transpose(1, 2)).sum(0)  # (C', k * k * C)
                gw.copy_(grad_k.view(gw.shape[0], *gw.shape[2:], gw.shape[1])
                         .permute(0, 3, 1, 2))
                torch.sum(g, (0, 2), out=gb)
                continue
            g_in, g_w, g_b = _conv_backward(
                g, h_in, conv.weight.detach(), [conv.out_channels], list(conv.stride), [0, 0],
                [1, 1], False, [0, 0], 1, [i > 0, True, True])
            gw.copy_(g_w)
            gb.copy_(g_b)
            if i:
                _, z, a = tape[i - 1]
                g = self.act_backward(g_in, z, a)
