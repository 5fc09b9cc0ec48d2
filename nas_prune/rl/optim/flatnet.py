"""Training MLPs without autograd: parameters as views of one flat buffer, a hand-written
backward pass, and one clip + Adam + mask step over the whole buffer.

Why: at RL batch sizes (64-256 rows) a gradient step on a small MLP is dominated by per-op
overhead (the autograd graph, per-parameter optimizer and clipping work), not by arithmetic
(profiled with py-spy; the resulting speed is measured by ``tests/benchmarks/bench_dense``).
Agents compute the gradient of their loss with respect to the network's output
(``nas_prune.rl.optim.losses``, checked against autograd in the tests), ``FlatMLP.backward``
writes each layer's gradient straight into the flat gradient buffer, and
``FlatTrainer.step`` clips and updates that buffer in one go.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from nas_prune.rl.cnn import CNN
from nas_prune.rl.networks import MLP, PrunableNet, activations
from nas_prune.rl.optim.flatcnn import FlatCNN

__all__ = ["AutogradNet", "FastNet", "FlatMLP", "FlatTrainer", "Penalty", "TrainerHook",
           "fast_net", "gradient_steps_taken"]

Tensor = torch.Tensor
# a regulariser on a net added to a training loss (None: none); PruningMethod.penalty is one
Penalty = Callable[[PrunableNet], "Tensor | None"]

_steps = [0]  # optimizer steps taken in this process by every FlatTrainer


def gradient_steps_taken() -> int:
    """Optimizer steps taken so far in this process by every ``FlatTrainer`` (one clip +
    Adam update of a whole buffer counts one): a trial's training cost beside its env
    steps."""
    return _steps[0]


class TrainerHook(Protocol):
    """Called inside ``FlatTrainer.step``: ``before_update`` once the buffer holds the
    step's gradient (dense: masked positions included) and before clipping;
    ``after_update`` after Adam and the masks (sparse training's topology updates)."""

    def before_update(self, trainer: FlatTrainer) -> None: ...
    def after_update(self, trainer: FlatTrainer) -> None: ...


class FlatMLP:
    """Forward and hand-written backward of one MLP.

    ``forward(x, record=True)`` keeps what one following ``backward(d_out)`` needs;
    ``backward`` overwrites the parameters' ``.grad`` tensors (slices of a trainer's flat
    gradient buffer). Views of the parameters are re-read whenever their storage moved.
    """

    def __init__(self, net: MLP) -> None:
        self.net = net
        activation = activations.get(net.activation)
        self.act, self.act_backward = activation.fn, activation.backward
        self._act_numpy = activation.numpy
        self._w0 = net.linears()[0].weight  # the same Parameter object whatever its storage
        self._tape: list[tuple[Tensor, Tensor, Tensor]] = []
        self.bind()

    def bind(self) -> None:
        """Re-read the parameter views (after the storage moved into another buffer)."""
        layers = self.net.linears()
        # plain tensors without requires_grad, sharing storage with the parameters
        self.weights = [(layer.weight.detach(), layer.bias.detach()) for layer in layers]
        self._weights_t = [(w.t(), b) for w, b in self.weights]
        self.grads: list[tuple[Tensor | None, Tensor | None]] = [
            (layer.weight.grad, layer.bias.grad) for layer in layers]
        self.np_weights = [(w.numpy().T, b.numpy()) for w, b in self.weights]
        self._ptr = self._w0.data_ptr()

    def act_forward(self, x: np.ndarray) -> np.ndarray:
        """The output for a few rows of float32 observations (acting): numpy where the
        activation has a numpy form, torch otherwise."""
        if self._w0.data_ptr() != self._ptr:
            self.bind()
        act = self._act_numpy
        if act is None:
            return self.forward(torch.as_tensor(x, dtype=torch.float32)).numpy()
        # the net's input stage (observation statistics) first, as MLP.forward does
        norm = self.net.obs_norm
        h = x if norm is None else norm.normalize(x)
        last = len(self.np_weights) - 1
        for i, (w_t, b) in enumerate(self.np_weights):
            h = h @ w_t
            h += b
            if i < last:
                h = act(h)
        return h

    def forward(self, x: Tensor, *, record: bool = False) -> Tensor:
        """The network's output for a batch ``x``."""
        if self._w0.data_ptr() != self._ptr:
            self.bind()
        tape = []
        h = self.net.normalize_input(x)  # no parameters: the backward stops at layer 0
        last = len(self.weights) - 1
        for i, (w_t, b) in enumerate(self._weights_t):
            z = torch.addmm(b, h, w_t)
            a = self.act(z) if i < last else z
            if record:
                tape.append((h, z, a))
            h = a
        self._tape = tape
        return h

    def backward(self, d_out: Tensor) -> None:
        """Write d loss / d parameters, given d loss / d output, into the gradient buffer.

        ``d_out`` may cover only the first rows of the recorded batch: the loss depends on
        those rows alone (DQN records its batch and the next states in one forward).
        """
        if not self._tape:
            raise RuntimeError("FlatMLP.backward needs a forward(..., record=True) first")
        rows = len(d_out)
        tape = self._tape
        if rows != len(tape[0][0]):
            tape = [(h[:rows], z[:rows], a[:rows]) for h, z, a in tape]
        g = d_out
        for i in range(len(self.weights) - 1, -1, -1):
            h_in = tape[i][0]
            gw, gb = self.grads[i]
            assert gw is not None and gb is not None, "backward needs a FlatTrainer's net"
            torch.mm(g.t(), h_in, out=gw)
            torch.sum(g, 0, out=gb)
            if i:
                _, z, a = tape[i - 1]
                g = self.act_backward(torch.mm(g, self.weights[i][0]), z, a)
        self._tape = []


class AutogradNet:
    """``FlatMLP``'s interface for any other network (a CNN) through autograd: a conv's
    arithmetic outweighs the per-op overhead the hand-written MLP path removes.

    ``forward(x, record=True)`` keeps the graph for one following ``backward(d_out)``, which
    overwrites the parameters' ``.grad`` tensors (slices of a trainer's flat buffer).

    On a ``device`` other than the CPU, training passes run on a mirror of the net there:
    every forward first copies the CPU weights into it (they stay the weights everyone
    reads: acting, pruning, masks, snapshots, state dicts), and ``backward`` copies the
    gradients back into the CPU buffer, where clipping, Adam and the masks run as on the
    CPU. ``mirror=True`` takes that path on the CPU too (tests).
    """

    def __init__(self, net: PrunableNet, device: str = "cpu", *,
                 mirror: bool | None = None) -> None:
        self.net = net
        self.device = torch.device(device)
        self._mirrored = self.device.type != "cpu" if mirror is None else mirror
        self._mirror: nn.Module | None = None
        self._out: Tensor | None = None

    def bind(self) -> None:
        """Drop the device mirror (rebuilt at the next forward): the parameters moved."""
        self._mirror = None

    def _model(self) -> nn.Module:
        """The module training passes run: the net, or its device mirror with the
        current CPU weights copied in."""
        if not self._mirrored:
            return self.net
        params = list(self.net.parameters())
        mirror = self._mirror
        if mirror is None or any(m.shape != p.shape
                                 for m, p in zip(mirror.parameters(), params)):
            if self.device.type == "cuda":
                # same seed, same weights (cuDNN's autotuned and atomic-add kernels are
                # not run to run reproducible); process-wide, as flushing denormals is
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
            mirror = copy.deepcopy(self.net).to(self.device)
            for m in mirror.parameters():
                m.grad = None
                m.requires_grad_(True)
            self._mirror = mirror
        with torch.no_grad():
            for m, p in zip(mirror.parameters(), params):
                m.copy_(p, non_blocking=True)
        return mirror

    def act_forward(self, x: np.ndarray) -> np.ndarray:
        """The output for a few rows of float32 observations (acting; on the CPU)."""
        with torch.no_grad():
            return self.net(torch.as_tensor(x, dtype=torch.float32)).numpy()

    def forward(self, x: Tensor, *, record: bool = False) -> Tensor:
        """The network's output for a batch ``x`` (a CPU tensor, detached; the graph kept
        if ``record``)."""
        model = self._model()
        x = x.to(self.device, non_blocking=True)
        if not record:
            with torch.no_grad():
                return model(x).cpu()
        self._out = model(x)
        return self._out.detach().cpu()

    def backward(self, d_out: Tensor) -> None:
        """Write d loss / d parameters, given d loss / d output (of the first rows of the
        recorded batch), into the gradient buffer."""
        if self._out is None:
            raise RuntimeError("AutogradNet.backward needs a forward(..., record=True) first")
        out, self._out = self._out, None
        model = self._mirror if self._mirrored else self.net
        assert model is not None, "a recorded forward built the mirror"
        inner = list(model.parameters())
        grads = torch.autograd.grad(out[:len(d_out)], inner, d_out.to(self.device),
                                    allow_unused=True)
        for p, g in zip(self.net.parameters(), grads):
            assert p.grad is not None, "backward needs a FlatTrainer's net"
            if g is None:
                p.grad.zero_()
            else:
                p.grad.copy_(g)


FastNet = FlatMLP | FlatCNN | AutogradNet


def fast_net(net: PrunableNet, device: str = "cpu") -> FastNet:
    """The training path for ``net``: the hand-written one for an MLP (always on the CPU:
    at these widths per-op overhead, not arithmetic, sets its speed) and for a CNN on the
    CPU; autograd otherwise (a CNN on CUDA, through a device mirror)."""
    if isinstance(net, MLP):
        return FlatMLP(net)
    if isinstance(net, CNN) and torch.device(device).type == "cpu":
        return FlatCNN(net)
    return AutogradNet(net, device)


def _flatten_into(params: Sequence[nn.Parameter], data: Tensor, grad: Tensor) -> None:
    """Move each parameter's storage into a slice of ``data`` (and its ``.grad`` into the
    same slice of ``grad``), keeping the parameter objects and their values."""
    offset = 0
    for p in params:
        n = p.numel()
        data[offset:offset + n].copy_(p.detach().reshape(-1))
        p.data = data[offset:offset + n].view_as(p)
        p.grad = grad[offset:offset + n].view_as(p)
        offset += n


class FlatTrainer:
    """The parameters of some MLPs (and extra tensors, e.g. a log-std) as views of one flat
    buffer, trained by one clip + Adam + mask step.

    Every ``nn.Parameter`` object stays (state dicts, ``load_state_dict``, masks and
    evaluation work unchanged); only its storage moves into the buffer. The update is
    ``torch.optim.Adam``'s fused kernel over the whole buffer; the first net is the one a
    pruning penalty applies to.

    Raises:
        ValueError: a net's activation is not in ``nas_prune.rl.networks.activations``.
    """

    def __init__(self, nets: Sequence[PrunableNet], extra: Sequence[nn.Parameter] = (), *,
                 lr: float, eps: float = 1e-8, max_grad_norm: float | None = None,
                 device: str = "cpu") -> None:
        for net in nets:  # refuse an unknown activation before moving any storage
            activations.get(net.activation)
        # Adam's moments of a parameter whose gradient stays exactly zero (a dead ReLU unit,
        # a pruned weight) decay geometrically into denormal floats, which x86 CPUs compute
        # ~100x slower: this alone made DQN's fused Adam step 40% of its training time.
        # Flush them to zero (process-wide; a moment under 1.2e-38 moves no weight).
        torch.set_flush_denormal(True)
        self.nets, self.extra = list(nets), list(extra)
        self.params = [p for net in self.nets for p in net.parameters()] + self.extra
        total = sum(p.numel() for p in self.params)
        self.flat, self.grad = torch.zeros(total), torch.zeros(total)
        _flatten_into(self.params, self.flat, self.grad)
        self._where = [(p, p.data_ptr(), p.grad.data_ptr())  # type: ignore[union-attr]
                       for p in self.params]
        self.mlps = {id(net): fast_net(net, device) for net in self.nets}
        self.lr, self.eps, self.max_grad_norm = lr, eps, max_grad_norm
        self._adam = (torch.zeros(total), torch.zeros(total), torch.zeros(()))
        self.hook: TrainerHook | None = None

    def moments(self, p: nn.Parameter) -> tuple[Tensor, Tensor]:
        """Views of Adam's first and second moments of parameter ``p`` (shaped like it)."""
        self._claim()
        start = (p.data_ptr() - self.flat.data_ptr()) // self.flat.element_size()
        exp_avg, exp_avg_sq, _ = self._adam
        n = p.numel()
        return exp_avg[start:start + n].view_as(p), exp_avg_sq[start:start + n].view_as(p)

    def __getitem__(self, net: PrunableNet) -> FastNet:
        return self.mlps[id(net)]

    def step(self, grads: Mapping[PrunableNet, Tensor | np.ndarray], *, what: str,
             extra: Mapping[nn.Parameter, Tensor | np.ndarray] | None = None,
             penalty: Penalty | None = None) -> None:
        """One update from the loss's gradients with respect to each net's recorded output
        (``grads``) and to extra parameters: backward, add the ``penalty``'s gradient on the
        first net, ``hook.before_update``, clip the global norm, Adam, re-apply the masks,
        ``hook.after_update``.

        Raises:
            FloatingPointError: the gradient is not finite (the loss diverged); no update.
        """
        self._claim()
        self._backward(grads, extra or {})
        if penalty is not None:
            self._add_penalty(penalty)
        if self.hook is not None:
            self.hook.before_update(self)
        norm = torch.linalg.vector_norm(self.grad).item()
        if not math.isfinite(norm):
            raise FloatingPointError(f"{what} gradient became {norm}")
        if self.max_grad_norm is not None:  # as torch.nn.utils.clip_grad_norm_
            coef = self.max_grad_norm / (norm + 1e-6)
            if coef < 1.0:
                self.grad.mul_(coef)
        exp_avg, exp_avg_sq, step = self._adam
        # torch.optim.Adam(fused=True)'s kernel, called without the optimizer's per-call
        # bookkeeping (tests/rl/optim/test_flatnet.py checks it matches torch.optim.Adam)
        step.add_(1)
        torch._fused_adam_([self.flat], [self.grad], [exp_avg], [exp_avg_sq], [], [step],
                           amsgrad=False, lr=self.lr, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=self.eps, maximize=False)
        for net in self.nets:
            net.apply_masks()
        _steps[0] += 1
        if self.hook is not None:
            self.hook.after_update(self)

    def _backward(self, grads: Mapping[PrunableNet, Tensor | np.ndarray],
                  extra: Mapping[nn.Parameter, Tensor | np.ndarray]) -> None:
        # every slice of the gradient buffer is written: backward, copy, or zero
        for net in self.nets:
            if net in grads:
                self[net].backward(torch.as_tensor(grads[net]))
            else:
                for p in net.parameters():
                    p.grad.zero_()  # type: ignore[union-attr]
        for p in self.extra:
            g = extra.get(p)
            if g is None:
                p.grad.zero_()  # type: ignore[union-attr]
            else:
                p.grad.copy_(torch.as_tensor(g))  # type: ignore[union-attr]

    def _claim(self) -> None:
        # Another trainer over some of the same nets (e.g. distillation's) moved their
        # parameters into its buffer, or ``zero_grad(set_to_none=True)`` dropped a .grad:
        # move them back, current values kept; the layout and so this trainer's Adam state
        # stay valid.
        if any(p.data_ptr() != ptr or p.grad is None or p.grad.data_ptr() != gptr
               for p, ptr, gptr in self._where):
            _flatten_into(self.params, self.flat, self.grad)
            for mlp in self.mlps.values():
                mlp.bind()

    def _add_penalty(self, penalty: Penalty) -> None:
        net = self.nets[0]
        value = penalty(net)
        if value is None:
            return
        params = list(net.parameters())
        for p, g in zip(params, torch.autograd.grad(value, params, allow_unused=True)):
            if g is not None:
                p.grad.add_(g)  # type: ignore[union-attr]
