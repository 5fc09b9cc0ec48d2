"""nas_prune.rl.cnn: the conv policy family under every pruning method (the plan per conv
layer, structured surgery across conv -> conv and conv -> flatten -> Linear, masks through
training), counting with spatial sizes, channel-order detection and determinism."""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from nas_prune.pruning import PruneContext, PruningMethod, methods
from nas_prune.pruning.base import check_plan, plan_layers
from nas_prune.pruning.counting import achieved_sparsity, count
from nas_prune.pruning.surgery import shrink
from nas_prune.rl.cnn import CNN, PRESETS, image_layout
from nas_prune.rl.networks import weights_hash
from tests.pruning.test_contract import CASES, STRUCTURED

# (image (C, H, W), channels_last, channels, kernels, strides, hidden): odd shapes on purpose
SHAPES = {
    "two-convs-stride2-nonsquare": ((3, 9, 7), True, [6, 5], [3, 2], [2, 1], [8]),
    "one-conv-channels-first": ((2, 6, 5), False, [4], [3], [1], [7, 5]),
    "conv-straight-to-head": ((1, 5, 5), True, [3], [2], [2], []),
}
OUT = 3


def make_cnn(shape: str, seed: int = 0) -> CNN:
    image, last, ch, k, s, hidden = SHAPES[shape]
    torch.manual_seed(seed)
    return CNN(image, ch, k, s, hidden, OUT, "relu", channels_last=last)


def obs(net: CNN, n: int = 16, seed: int = 1) -> torch.Tensor:
    c, h, w = net.image
    return torch.randn(n, c * h * w, generator=torch.Generator().manual_seed(seed))


def ctx(net: CNN, seed: int = 0) -> PruneContext:
    return PruneContext(torch.Generator().manual_seed(seed), states=obs(net, 32, 1234))


def prune(net: CNN, name: str, params: dict[str, Any], sparsity: float) -> PruningMethod:
    cls = methods.get(name)
    method = cls(cls.Params(**params))
    method.prune(net, [sparsity] * method.n_prunable(net), ctx(net))
    return method


def unit_total(layer: Any) -> int:
    return int(layer.weight.shape[0])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "params"), CASES)
def test_every_method_prunes_a_cnn(shape: str, name: str, params: dict[str, Any]) -> None:
    if name == "hierarchical" and "order" in params:
        params = {k: v for k, v in params.items() if k != "order"}  # the order fits the MLP
    net = make_cnn(shape)
    method = prune(net, name, params, 0.5)
    layers = plan_layers(net, method.structured)
    # conv layers are prunable layers like hidden Linears
    assert [layer.name for layer in layers][0] == "convs.0"
    assert layers[0].unit == "channel"
    got = achieved_sparsity(net, method.structured)
    if method.global_plan:
        total = sum(layer.weight.numel() for layer in layers)
        assert count(make_cnn(shape)).params_nonzero - count(net).params_nonzero >= total // 2 - 1
    else:
        sizes = [unit_total(layer) if method.structured else layer.weight.numel()
                 for layer in layers]
        assert got == pytest.approx([round(0.5 * n) / n for n in sizes], abs=1e-6)
    out = net(obs(net))
    assert out.shape == (16, OUT) and torch.isfinite(out).all()
    # the masked network trains with its masks held (Adam, then apply_masks)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = obs(net, 32, 5), torch.randn(32, OUT, generator=torch.Generator().manual_seed(6))
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(10):
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        net.apply_masks()
    for layer, (wm, bm) in zip(net.prunable_layers(), net.effective_masks()):
        assert (layer.weight[wm == 0] == 0).all()
        if bm is not None:
            assert layer.bias is not None and (layer.bias[bm == 0] == 0).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    check_plan(net, [0.0] * method.n_prunable(net), type(method))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "params"), STRUCTURED)
def test_structured_surgery_shrinks_and_keeps_the_output(shape: str, name: str,
                                                         params: dict[str, Any]) -> None:
    params = {k: v for k, v in params.items() if k != "order"}
    net = make_cnn(shape)
    prune(net, name, params, 0.6)
    small = shrink(net)
    expected = [n - round(0.6 * n) for n in net.hidden]
    assert small.hidden == expected
    assert [c.out_channels for c in small.convs] == expected[:len(net.channels)]
    assert count(small).params < count(net).params
    assert count(small).params_nonzero == count(net).params_nonzero
    x = obs(net, 20, 9)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), atol=1e-5, rtol=1e-5)
    # the shrunk network rebuilds from its spec with the same shapes
    spec = small.spec()
    rebuilt = CNN(tuple(spec["image"]), spec["channels"], spec["kernels"],  # type: ignore[arg-type]
                  spec["strides"], spec["hidden"], spec["outputs"],  # type: ignore[arg-type]
                  str(spec["activation"]), bool(spec["channels_last"]))
    rebuilt.load_state_dict(small.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), small(x))


def test_one_channel_left() -> None:
    net = make_cnn("two-convs-stride2-nonsquare")
    keep = torch.zeros(6, dtype=torch.bool)
    keep[4] = True
    net.set_unit_mask("convs.0", keep)
    keep2 = torch.zeros(5, dtype=torch.bool)
    keep2[0] = True
    net.set_unit_mask("convs.1", keep2)
    small = shrink(net)
    assert small.channels == [1, 1]
    assert small.fc[0].in_features == 1 * 3 * 2  # (9 - 3) // 2 + 1 = 4 -> 3; 3 -> 2
    x = obs(net, 8, 2)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), atol=1e-5, rtol=1e-5)


def test_counting_covers_conv_layers_with_their_spatial_sizes() -> None:
    net = make_cnn("two-convs-stride2-nonsquare")
    # brute force: a conv does out_h * out_w * C_out * C_in * k * k MACs
    macs, x = 0, torch.zeros(1, 3, 9, 7)
    for conv in net.convs:
        y = conv(x)
        macs += y.shape[2] * y.shape[3] * conv.weight.numel()
        x = y
    macs += sum(layer.weight.numel() for layer in net.fc)
    c = count(net)
    assert c.macs == macs
    assert c.params == sum(p.numel() for p in net.parameters())
    prune(net, "magnitude", {}, 0.5)
    assert count(net).macs_nonzero < c.macs
    assert count(net).params_nonzero < c.params_nonzero


@pytest.mark.parametrize(("shape", "expected"), [
    ((10, 10, 4), ((4, 10, 10), True)),  # MinAtar
    ((84, 84, 4), ((4, 84, 84), True)),
    ((4, 84, 84), ((4, 84, 84), False)),  # stacked Atari frames
    ((10, 10, 10), ((10, 10, 10), True)),  # MinAtar Seaquest: ambiguous, channels last
    ((7, 9, 3), ((3, 7, 9), True)),
])
def test_image_layout(shape: tuple[int, int, int], expected: Any) -> None:
    assert image_layout(shape) == expected


def test_channel_order_matches_the_image() -> None:
    # one 1x1 conv that reads channel 1 only: the output must follow that channel's pixels
    net = CNN((3, 2, 2), [1], [1], [1], [], 4, "relu", channels_last=True)
    with torch.no_grad():
        net.convs[0].weight.zero_()
        net.convs[0].weight[0, 1] = 1.0
        net.convs[0].bias.zero_()
        net.fc[0].weight.copy_(torch.eye(4))
        net.fc[0].bias.zero_()
    hwc = torch.arange(12, dtype=torch.float32).reshape(2, 2, 3)
    out = net(hwc.reshape(1, -1))
    torch.testing.assert_close(out[0], hwc[:, :, 1].flatten())


def test_bad_shapes_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^agent\.kernels: conv layer 1"):
        CNN((1, 5, 5), [2, 2], [3, 4], [1, 1], [], 2)
    with pytest.raises(ValueError, match=r"^agent\.channels: "):
        CNN((1, 5, 5), [2, 2], [3], [1, 1], [], 2)
    with pytest.raises(ValueError, match=r"^agent\.network: cnn needs an image"):
        image_layout((5, 5))


def test_same_seed_same_network_and_pruning() -> None:
    a, b = make_cnn("two-convs-stride2-nonsquare", 3), make_cnn("two-convs-stride2-nonsquare", 3)
    assert weights_hash(a) == weights_hash(b)
    prune(a, "random_structured", {}, 0.5)
    prune(b, "random_structured", {}, 0.5)
    assert weights_hash(a) == weights_hash(b)
    assert weights_hash(a) != weights_hash(make_cnn("two-convs-stride2-nonsquare", 3))


def test_minatar_preset_size() -> None:
    ch, k, s, hidden = PRESETS["minatar"]
    net = CNN((4, 10, 10), ch, k, s, hidden, 3)
    # Conv 16 x 3x3 on (4, 10, 10) -> 16 x 8 x 8 = 1024 -> 128 -> 3
    conv = 16 * 4 * 9 + 16
    first = 1024 * 128 + 128
    assert count(net).params == conv + first + 128 * 3 + 3
    assert first / count(net).params > 0.99 - 0.02
