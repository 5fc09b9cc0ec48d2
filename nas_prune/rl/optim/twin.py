"""Several MLPs of one shape as one network: each layer is one batched matmul (``baddbmm``)
over all of them, with a hand-written backward (SAC's twin critics and their targets).

Why: at batch 256 a critic step is a handful of matmuls each costing tens of microseconds of
per-op overhead; stacking the twins halves the op count, and the hand-written backward (as
``flatnet.FlatMLP``) needs no autograd graph. It also returns the gradient with respect to
the input, which SAC's actor loss needs (d Q / d action).
"""
from __future__ import annotations

import torch
from torch import nn

from nas_prune.rl.networks import activations

__all__ = ["StackedMLP"]

Tensor = torch.Tensor


class StackedMLP(nn.Module):
    """``n`` independent MLPs with layer sizes ``sizes``, initialised as ``nn.Linear`` is.

    Weights are ``(n, in, out)`` and biases ``(n, 1, out)``: parameters a ``FlatTrainer``
    can hold as extra tensors. ``forward`` maps ``(B, in)`` (the same rows for every MLP)
    or ``(n, B, in)`` to ``(n, B, out)``.
    """

    def __init__(self, sizes: list[int], activation: str, n: int = 2) -> None:
        super().__init__()
        fn = activations.get(activation)
        self.activation, self.n = activation, n
        self._act, self._act_backward = fn.fn, fn.backward
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers = [nn.Linear(fan_in, fan_out) for _ in range(n)]
            self.weights.append(nn.Parameter(torch.stack([m.weight.detach().t() for m in layers])))
            self.biases.append(nn.Parameter(torch.stack([m.bias.detach()[None] for m in layers])))
        self._tape: list[tuple[Tensor, Tensor, Tensor]] = []

    def params(self) -> list[nn.Parameter]:
        """Every parameter, in the order ``backward`` returns their gradients."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    @torch.no_grad()
    def forward(self, x: Tensor, record: bool = False) -> Tensor:  # noqa: D102
        h = x if x.dim() == 3 else x.expand(self.n, *x.shape)
        tape = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, h, w)
            a = self._act(z) if i < last else z
            if record:
                tape.append((h, z, a))
            h = a
        self._tape = tape
        return h

    @torch.no_grad()
    def backward(self, d_out: Tensor, rows: int) -> tuple[list[Tensor], Tensor]:
        """Gradients from the last recorded forward, given d loss / d output ``(n, B, out)``.

        The parameters' gradients come from the first ``rows`` rows only; the input's from
        the rows after them (SAC: the critic loss on the buffer's actions, the actor loss's
        d Q / d action on the policy's, in one pass). Returns (the parameter gradients in
        ``params()`` order, d loss / d input of the later rows summed over the ``n`` MLPs).
        """
        if not self._tape:
            raise RuntimeError("StackedMLP.backward needs a forward(..., record=True) first")
        grads: list[Tensor] = [torch.empty(0)] * (2 * len(self.weights))
        g = d_out
        for i in range(len(self.weights) - 1, -1, -1):
            h_in = self._tape[i][0]
            grads[2 * i] = torch.bmm(h_in[:, :rows].transpose(1, 2), g[:, :rows])
            grads[2 * i + 1] = g[:, :rows].sum(1, keepdim=True)
            if i:
                _, z, a = self._tape[i - 1]
                g = self._act_backward(torch.bmm(g, self.weights[i].transpose(1, 2)), z, a)
        d_in = torch.bmm(g[:, rows:], self.weights[0].transpose(1, 2)).sum(0)
        self._tape = []
        return grads, d_in
