"""MLP with masks, weights_hash and the counting helpers."""

from __future__ import annotations

import copy
from typing import cast

import pytest
import torch
from torch import nn

from nas_prune.pruning.counting import Counts, achieved_sparsity, count, count_dense
from nas_prune.rl.networks import MLP, activations, weights_hash


def linears(net: MLP) -> list[nn.Linear]:
    """The Linear layers, typed (``ModuleList`` items are plain ``Module`` to mypy)."""
    return [cast(nn.Linear, layer) for layer in net.layers]


def seeded(sizes: list[int], activation: str = "relu", seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(sizes, activation)


@pytest.mark.parametrize(
    ("sizes", "batch"),
    [([4, 16, 8, 2], 5), ([4, 2], 3), ([3, 7, 1], 1)],
)
def test_forward_shape(sizes: list[int], batch: int) -> None:
    net = seeded(sizes)
    assert net(torch.randn(batch, sizes[0])).shape == (batch, sizes[-1])
    assert net.hidden == sizes[1:-1]
    assert [(layer.in_features, layer.out_features) for layer in linears(net)] == list(
        zip(sizes[:-1], sizes[1:], strict=True)
    )
    assert len(net.acts) == len(sizes) - 2


@pytest.mark.parametrize("activation", activations.names())
def test_forward_applies_activation_between_layers(activation: str) -> None:
    net = seeded([4, 16, 8, 2], activation)
    x = torch.randn(6, 4)
    act = activations.get(activation).module()
    expected = linears(net)[2](act(linears(net)[1](act(linears(net)[0](x)))))
    assert torch.allclose(net(x), expected)
    assert net.spec() == {"type": "mlp", "sizes": [4, 16, 8, 2], "activation": activation}


@pytest.mark.parametrize(
    ("sizes", "activation", "match"),
    [
        ([4], "relu", "agent.hidden"),
        ([4, 0, 2], "relu", "agent.hidden"),
        ([4, 8, 2], "sigmoidish", "agent.activation"),
    ],
)
def test_bad_network_spec(sizes: list[int], activation: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MLP(sizes, activation)


def test_effective_masks_combine_weight_and_neuron_masks() -> None:
    net = seeded([3, 4, 2])
    assert all(layer.mask is None and layer.unit_mask is None for layer in net.prunable_layers())
    wm = torch.ones(2, 4)
    wm[0, 0] = 0  # one weight of the output layer
    net.set_mask("layers.1", wm)
    keep = torch.tensor([True, False, True, True])  # hidden neuron 1 removed
    net.set_unit_mask("layers.0", keep)
    hidden, out = net.prunable_layers()
    assert hidden.unit_mask is not None and hidden.unit_mask.tolist() == keep.tolist()
    assert out.mask is not None and torch.equal(out.mask, wm) and out.unit_mask is None
    (w0, b0), (w1, b1) = net.effective_masks()
    # Layer 0: row 1 and its bias removed.
    assert w0.tolist() == [[1, 1, 1], [0, 0, 0], [1, 1, 1], [1, 1, 1]]
    assert b0 is not None and b0.tolist() == [1, 0, 1, 1]
    # Layer 1: column 1 (the removed neuron) and the unstructured (0, 0); outputs keep biases.
    assert w1.tolist() == [[0, 0, 1, 1], [1, 0, 1, 1]]
    assert b1 is None
    assert linears(net)[0].weight[1].tolist() == [0.0] * 3
    assert linears(net)[0].bias[1].item() == 0.0
    assert linears(net)[1].weight[:, 1].tolist() == [0.0, 0.0]
    assert linears(net)[1].weight[0, 0].item() == 0.0
    assert int((linears(net)[1].weight != 0).sum()) == 5
    assert (linears(net)[1].bias != 0).all()


def test_apply_masks_rezeroes_after_update() -> None:
    net = seeded([3, 4, 2])
    net.set_unit_mask("layers.0", torch.tensor([True, False, True, True]))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert linears(net)[0].bias[1].item() != 0.0
    net.apply_masks()
    assert linears(net)[0].bias[1].item() == 0.0
    assert linears(net)[0].weight[1].abs().sum().item() == 0.0
    assert linears(net)[1].weight[:, 1].abs().sum().item() == 0.0


def test_masks_are_not_in_state_dict() -> None:
    net = seeded([3, 4, 2])
    net.set_unit_mask("layers.0", torch.tensor([True, False, True, True]))
    assert sorted(net.state_dict()) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]


def test_weights_hash() -> None:
    a, b = seeded([4, 16, 8, 2]), seeded([4, 16, 8, 2])
    assert weights_hash(a) == weights_hash(b)
    assert len(weights_hash(a)) == 64  # SHA-256 hex
    c = copy.deepcopy(a)
    with torch.no_grad():
        linears(c)[1].weight[3, 2] += 1e-6
    assert weights_hash(c) != weights_hash(a)
    with torch.no_grad():
        linears(c)[1].weight[3, 2] = linears(a)[1].weight[3, 2]
    assert weights_hash(c) == weights_hash(a)
    assert weights_hash(seeded([4, 16, 8, 2], seed=1)) != weights_hash(a)


def test_weights_hash_sees_shapes() -> None:
    # Same names and the same 17 values in the same order; only the shapes differ.
    a, b = MLP([2, 3, 2]), MLP([3, 2, 3])
    with torch.no_grad():
        for net in (a, b):
            for p in net.parameters():
                p.fill_(0.5)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters()) == 17
    assert weights_hash(a) != weights_hash(b)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([4, 256, 256, 2], 67586),
        ([4, 64, 64, 2], 4610),
        ([4, 2], 10),
        ([6, 32, 16, 3], 6 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3),
    ],
)
def test_count_dense(sizes: list[int], expected: int) -> None:
    assert count_dense(sizes) == expected
    assert count(seeded(sizes)).params == expected  # an unpruned net is dense


def test_count_dense_net() -> None:
    c = count(seeded([4, 64, 64, 2]))
    assert c == Counts(
        params=4610,
        params_nonzero=4610,
        macs=4 * 64 + 64 * 64 + 64 * 2,
        macs_nonzero=4 * 64 + 64 * 64 + 64 * 2,
    )


def test_count_masked_net() -> None:
    net = seeded([3, 4, 2])  # 12 + 4 + 8 + 2 = 26 params, 20 MACs
    wm = torch.ones(2, 4)
    wm[0, 0] = 0
    net.set_mask("layers.1", wm)
    net.set_unit_mask("layers.0", torch.tensor([True, False, True, True]))
    # Removed: neuron 1's 3 in-weights and bias, its 2 out-weights, and one more weight.
    assert count(net) == Counts(params=26, params_nonzero=26 - 7, macs=20, macs_nonzero=20 - 6)
    assert achieved_sparsity(net, True) == [0.25]
    assert achieved_sparsity(net, False) == [0.0, 0.125]  # only explicit weight masks count


def test_prunable_layers_name_units_and_mark_the_output_layer() -> None:
    net = seeded([3, 4, 5, 2])
    layers = net.prunable_layers()
    assert [layer.name for layer in layers] == ["layers.0", "layers.1", "layers.2"]
    assert [layer.unit for layer in layers] == ["neuron"] * 3
    assert [layer.structured_prunable for layer in layers] == [True, True, False]
    assert [layer.n_units for layer in layers] == [4, 5, 2]
    assert all(layer.weight is linear.weight for layer, linear in zip(layers, linears(net),
                                                                        strict=True))
    assert [layer.params() for layer in layers] == [3 * 4 + 4, 4 * 5 + 5, 5 * 2 + 2]
    assert [layer.macs() for layer in layers] == [12, 20, 10]


@pytest.mark.parametrize(
    ("call", "name"),
    [("set_mask", "layers.3"), ("set_unit_mask", "layers.2"), ("remove_units", "layers.2"),
     ("set_mask", "fc.0")],
)
def test_unknown_or_unprunable_layer_name_is_refused(call: str, name: str) -> None:
    net = seeded([3, 4, 5, 2])
    with pytest.raises(ValueError, match=rf"layer name: '{name}'.*allowed: layers\.0"):
        getattr(net, call)(name, torch.ones(1))


def test_remove_units_cuts_rows_columns_and_masks() -> None:
    net = seeded([3, 4, 2])
    wm = torch.ones(2, 4)
    wm[1, 3] = 0
    net.set_mask("layers.1", wm)
    net.set_unit_mask("layers.0", torch.tensor([True, False, True, True]))
    before = [linear.weight.detach().clone() for linear in linears(net)]
    x = torch.randn(7, 3)
    expected = net(x).detach()
    net.remove_units("layers.0", torch.tensor([0, 2, 3]))
    assert net.sizes == [3, 3, 2] and net.hidden == [3]
    assert torch.equal(linears(net)[0].weight, before[0][[0, 2, 3]])
    assert torch.equal(linears(net)[1].weight, before[1][:, [0, 2, 3]])
    hidden, out = net.prunable_layers()
    assert hidden.unit_mask is None  # every remaining unit is kept
    assert out.mask is not None and out.mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert torch.allclose(net(x), expected, atol=1e-6)
    assert sorted(net.state_dict()) == ["layers.0.bias", "layers.0.weight", "layers.1.bias",
                                        "layers.1.weight"]
