"""FlatCNN's hand-written backward and numpy acting against autograd and the module's
forward, on odd shapes (stride 2, non-square images, channels first, no hidden layer, one
channel, a masked net), and a FlatTrainer step against torch.optim.Adam."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_prune.rl.cnn import CNN
from nas_prune.rl.optim.flatcnn import FlatCNN
from nas_prune.rl.optim.flatnet import FlatTrainer, fast_net

# image (C, H, W), channels, kernels, strides, hidden, outputs, channels_last
SHAPES = [
    ((4, 10, 10), [16], [3], [1], [32], 3, True),  # the minatar torso, smaller
    ((3, 9, 7), [4, 5], [3, 2], [2, 1], [6, 5], 2, True),  # stride 2, non-square, 2 convs
    ((2, 8, 9), [3], [3], [2], [], 4, False),  # channels first, no hidden Linear
    ((1, 6, 6), [1, 2], [2, 3], [1, 1], [3], 1, True),  # one channel
]


def _net(shape: tuple, activation: str = "relu", seed: int = 0) -> CNN:
    image, channels, kernels, strides, hidden, outputs, last = shape
    torch.manual_seed(seed)
    return CNN(image, channels, kernels, strides, hidden, outputs, activation, last)


def _obs(net: CNN, rows: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, int(np.prod(net.image)), generator=gen) < 0.3).float()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_autograd(shape: tuple, activation: str) -> None:
    net = _net(shape, activation)
    ref = copy.deepcopy(net)
    FlatTrainer([net], lr=1e-3)  # gives the parameters their gradient buffer
    x = _obs(net, 7)
    d_out = torch.randn(5, net.outputs, generator=torch.Generator().manual_seed(2))
    flat = FlatCNN(net)
    out = flat.forward(x, record=True)
    torch.testing.assert_close(out, ref(x), rtol=1e-5, atol=1e-6)
    flat.backward(d_out)  # only the first 5 of 7 rows carry a loss
    grads = torch.autograd.grad(ref(x)[:5], list(ref.parameters()), d_out)
    for (name, p), g in zip(net.named_parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("activation", ["relu", "gelu"])  # numpy form, none (torch)
@pytest.mark.parametrize("rows", [1, 3, 32, 40])  # numpy, im2col, im2col, mkldnn
@pytest.mark.parametrize("shape", SHAPES)
def test_act_forward_matches_the_module(shape: tuple, rows: int, activation: str) -> None:
    net = _net(shape, activation)
    x = _obs(net, rows).numpy()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(FlatCNN(net).act_forward(x), expected, rtol=1e-5, atol=1e-6)


def test_backward_needs_a_recorded_forward() -> None:
    net = _net(SHAPES[0])
    FlatTrainer([net], lr=1e-3)
    with pytest.raises(RuntimeError, match="record=True"):
        FlatCNN(net).backward(torch.zeros(1, 3))


def test_trainer_steps_a_masked_cnn_like_adam() -> None:
    net = _net(SHAPES[1])
    net.set_unit_mask("convs.0", torch.tensor([True, False, True, True]))
    ref = copy.deepcopy(net)
    trainer = FlatTrainer([net], lr=1e-2, max_grad_norm=0.5)
    assert isinstance(trainer[net], FlatCNN) and isinstance(fast_net(net), FlatCNN)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(4)
    for _ in range(4):
        x, target = _obs(net, 6, seed=int(torch.randint(99, (1,), generator=gen))), \
            torch.randn(6, net.outputs, generator=gen)
        out = trainer[net].forward(x, record=True)
        trainer.step({net: 2 * (out - target) / out.numel()}, what="test loss")
        opt.zero_grad()
        F.mse_loss(ref(x), target).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        opt.step()
        ref.apply_masks()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    assert bool((net.convs[0].weight[1] == 0).all()) and float(net.convs[0].bias.detach()[1]) == 0.0


@pytest.mark.parametrize("rows", [1, 3, 40])  # numpy, im2col, mkldnn
def test_the_input_stage_is_applied_as_the_module_does(rows: int) -> None:
    """A CNN with observation statistics (normalize_obs): acting, the recorded forward and
    the backward all see the normalised frame, as CNN.forward does."""
    from nas_prune.rl.normalization import attach_obs_norm

    net = _net(SHAPES[0])
    attach_obs_norm(net, int(np.prod(net.image)))
    assert net.obs_norm is not None
    net.obs_norm.update(_obs(net, 64, seed=5).numpy() * 3 + 1)
    ref = copy.deepcopy(net)
    FlatTrainer([net], lr=1e-3)
    x = _obs(net, rows)
    flat = FlatCNN(net)
    with torch.no_grad():
        want = ref(x)
    torch.testing.assert_close(torch.as_tensor(flat.act_forward(x.numpy())), want,
                               rtol=1e-4, atol=1e-5)
    out = flat.forward(x, record=True)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    d_out = torch.randn(rows, net.outputs, generator=torch.Generator().manual_seed(2))
    flat.backward(d_out)
    grads = torch.autograd.grad(ref(x), list(ref.parameters()), d_out)
    for (name, p), g in zip(net.named_parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5, msg=name)
    # without the stage the outputs differ: the test can fail
    net.obs_norm = None
    assert not torch.allclose(FlatCNN(net).forward(x), want, atol=1e-3)
