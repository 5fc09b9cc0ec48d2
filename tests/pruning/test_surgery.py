"""nas_prune.pruning.surgery.deployed: the deployed copy keeps the first outputs (weights,
bias, mask rows), removes masked units on request, counts as a net of that shape, and
leaves the training net alone."""
from __future__ import annotations

import pytest
import torch

from nas_prune.pruning.counting import count, count_dense
from nas_prune.pruning.surgery import deployed
from nas_prune.rl.cnn import CNN
from nas_prune.rl.networks import MLP, PrunableNet


def _masked_mlp() -> MLP:
    """[3, 6, 5, 4]: a removed neuron and an unstructured mask over the output layer."""
    torch.manual_seed(0)
    net = MLP([3, 6, 5, 4])
    net.set_unit_mask("layers.0", torch.tensor([True, False, True, True, False, True]))
    mask = (torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) > 0.4).float()
    net.set_mask("layers.2", mask)
    return net


def _masked_cnn() -> CNN:
    torch.manual_seed(0)
    net = CNN((2, 6, 5), [4], [3], [1], [7], 6, "relu", channels_last=True)
    net.set_unit_mask("convs.0", torch.tensor([True, False, True, True]))
    net.set_mask("fc.1", (torch.rand(6, 7, generator=torch.Generator().manual_seed(1))
                          > 0.4).float())
    return net


def _out(net: PrunableNet, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("remove_units", [False, True])
def test_mlp_keeps_its_first_outputs_and_their_mask_rows(remove_units: bool) -> None:
    net = _masked_mlp()
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    small = deployed(net, 2, remove_units=remove_units)
    assert small.sizes == ([3, 4, 5, 2] if remove_units else [3, 6, 5, 2])
    torch.testing.assert_close(_out(small, x), _out(net, x)[:, :2], rtol=0, atol=1e-6)
    last = small.prunable_layers()[-1]
    assert last.mask is not None and torch.equal(last.mask, net.prunable_layers()[-1].mask[:2])
    # the output layer's nonzeros are those of its first two rows; the rest unchanged
    out_w, out_b = net.linears()[-1].weight, net.linears()[-1].bias
    dropped = int((out_w[2:] != 0).sum() + (out_b[2:] != 0).sum())
    assert count(small).params_nonzero == count(net).params_nonzero - dropped
    sizes = small.sizes
    assert count(small).params == count_dense(sizes)
    assert count(small).macs == sum(a * b for a, b in zip(sizes, sizes[1:]))
    small.apply_masks()  # the sliced masks still fit their weights
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert net.sizes == [3, 6, 5, 4]


def test_cnn_keeps_its_first_outputs() -> None:
    net = _masked_cnn()
    x = torch.rand(9, 60, generator=torch.Generator().manual_seed(2))
    small = deployed(net, 3, remove_units=True)
    assert (small.channels, small.outputs, small.spec()["outputs"]) == ([3], 3, 3)
    torch.testing.assert_close(_out(small, x), _out(net, x)[:, :3], rtol=0, atol=1e-6)
    last = small.prunable_layers()[-1]
    assert last.mask is not None and last.mask.shape == (3, 7) == last.weight.shape
    assert net.outputs == 6


def test_every_output_kept_is_a_plain_copy() -> None:
    net = _masked_mlp()
    small = deployed(net, 4, remove_units=False)
    assert small is not net and small.sizes == net.sizes
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(),
                                                 net.state_dict().values()))


@pytest.mark.parametrize("outputs", [0, 5])
def test_outputs_out_of_range_are_refused(outputs: int) -> None:
    with pytest.raises(ValueError, match="outputs: keep between 1 and 4 outputs"):
        deployed(_masked_mlp(), outputs, remove_units=False)
