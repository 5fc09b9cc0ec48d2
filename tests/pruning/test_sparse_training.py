"""nas_prune.pruning.sparse_training: ERK / uniform distributions, and the dynamic topology
hook (SET, RigL) on FlatTrainer: exact sparsity after every update, regrown weights at zero,
masked weights and their Adam moments at zero, RigL's regrowth against a brute force."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from nas_prune.pruning import PruneContext, methods
from nas_prune.pruning.base import plan_layers
from nas_prune.pruning.sparse_training import (
    DynamicParams,
    DynamicSparsePruning,
    DynamicSparsity,
    distribute,
    erk_sparsities,
)
from nas_prune.rl.networks import MLP
from nas_prune.rl.optim.flatnet import FlatTrainer

SIZES = [4, 24, 16, 3]


def _net(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(SIZES, "tanh")


def _setup(name: str, sparsity: float = 0.7, **params: Any) -> tuple[
        MLP, FlatTrainer, DynamicSparsity, DynamicSparsePruning]:
    net = _net()
    trainer = FlatTrainer([net], lr=1e-2, max_grad_norm=1.0)
    cls = methods.get(name)
    method = cls(DynamicParams(**params))
    assert isinstance(method, DynamicSparsePruning)
    ctx = PruneContext(torch.Generator().manual_seed(0))
    method.prune(net, [sparsity] * 3, ctx)
    hook = DynamicSparsity(net, method, lambda: 0.0, ctx)
    trainer.hook = hook
    return net, trainer, hook, method


def _step(trainer: FlatTrainer, net: MLP, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, SIZES[0], generator=gen)
    out = trainer[net].forward(x, record=True)
    trainer.step({net: torch.randn(out.shape, generator=gen)}, what="test loss")


def _masks(net: MLP) -> list[torch.Tensor]:
    return [layer.mask.clone() for layer in plan_layers(net, False)]  # type: ignore[union-attr]


# --- distributions --------------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("shapes", [[(256, 4), (256, 256), (2, 256)], [(64, 8), (64, 64),
                                                                          (4, 64)]])
def test_erk_keeps_the_total_and_favours_small_layers(shapes: list[tuple[int, int]],
                                                      sparsity: float) -> None:
    s = erk_sparsities(shapes, sparsity)
    sizes = [a * b for a, b in shapes]
    kept = sum((1 - x) * n for x, n in zip(s, sizes))
    assert kept == pytest.approx((1 - sparsity) * sum(sizes))
    assert all(0 <= x < 1 for x in s)
    # the big hidden layer is the sparsest; the others are at least as dense
    assert s[1] == max(s) and s[1] > sparsity


def test_erk_matches_the_formula_when_no_layer_is_capped() -> None:
    shapes = [(30, 20), (30, 30), (20, 30)]
    s = erk_sparsities(shapes, 0.9)
    densities = [1 - x for x in s]
    raw = [(a + b) / (a * b) for a, b in shapes]
    ratios = [d / r for d, r in zip(densities, raw)]
    # density proportional to (n_in + n_out) / (n_in * n_out)
    assert ratios == pytest.approx([ratios[0]] * 3)


def test_distribute_uniform_and_erk_on_a_network() -> None:
    net = _net()
    assert distribute(net, 0.8, "uniform") == [0.8, 0.8, 0.8]
    erk = distribute(net, 0.8, "erk")
    assert erk == pytest.approx(erk_sparsities([(24, 4), (16, 24), (3, 16)], 0.8))


# --- topology updates -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["set", "rigl"])
def test_sparsity_is_exact_after_every_topology_update(name: str) -> None:
    net, trainer, hook, _ = _setup(name, update_every=1, drop_fraction=0.3)
    counts = [int(m.sum()) for m in _masks(net)]
    changed = 0
    for i in range(20):
        before = _masks(net)
        _step(trainer, net, i)
        after = _masks(net)
        changed += sum(int((a != b).sum()) for a, b in zip(after, before))
        assert [int(m.sum()) for m in after] == counts
        for layer in plan_layers(net, False):
            assert int((layer.weight[layer.mask == 0] != 0).sum()) == 0  # type: ignore[index]
    assert hook.updates == 20 and changed > 0  # the topology did move


@pytest.mark.parametrize("name", ["set", "rigl"])
def test_regrown_weights_start_at_zero_and_dropped_moments_are_reset(name: str) -> None:
    net, trainer, _, _ = _setup(name, update_every=3, drop_fraction=0.5)
    for i in range(2):
        _step(trainer, net, i)  # moments of active weights become nonzero
    before = _masks(net)
    _step(trainer, net, 2)  # the update step
    grown_any = dropped_any = False
    for layer, old in zip(plan_layers(net, False), before):
        assert layer.mask is not None
        grown = (old == 0) & (layer.mask == 1)
        dropped = (old == 1) & (layer.mask == 0)
        grown_any |= bool(grown.any())
        dropped_any |= bool(dropped.any())
        m1, m2 = trainer.moments(layer.weight)  # type: ignore[arg-type]
        assert torch.all(layer.weight[grown] == 0)
        assert torch.all(m1[grown | dropped] == 0) and torch.all(m2[grown | dropped] == 0)
    assert grown_any and dropped_any


@pytest.mark.parametrize("name", ["random", "set", "rigl"])
def test_masked_weights_and_their_adam_moments_stay_zero(name: str) -> None:
    net = _net()
    trainer = FlatTrainer([net], lr=1e-2)
    ctx = PruneContext(torch.Generator().manual_seed(0))
    cls = methods.get(name)
    method = cls(cls.Params(**({"update_every": 4} if name != "random" else {})))
    method.prune(net, [0.8] * 3, ctx)
    trainer.hook = DynamicSparsity(net, method, lambda: 0.0, ctx)
    for i in range(15):
        _step(trainer, net, i)
        for layer in plan_layers(net, False):
            assert layer.mask is not None
            off = layer.mask == 0
            m1, m2 = trainer.moments(layer.weight)  # type: ignore[arg-type]
            assert torch.all(layer.weight[off] == 0)
            assert torch.all(m1[off] == 0) and torch.all(m2[off] == 0)
            assert torch.any(m2[~off] != 0)  # the active weights do train


def test_rigl_regrows_the_top_gradient_positions_brute_force() -> None:
    net, trainer, hook, method = _setup("rigl", sparsity=0.6, update_every=1,
                                        drop_fraction=0.4)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(8, SIZES[0], generator=gen)
    d_out = torch.randn(8, SIZES[-1], generator=gen)
    # the dense gradient by autograd: d(sum(out * d_out))/dW at every position, masked or not
    ref = MLP(SIZES, "tanh")
    ref.load_state_dict(net.state_dict())
    (ref(x) * d_out).sum().backward()
    dense = [layer.weight.grad for layer in ref.linears()]
    assert all(g is not None for g in dense)
    trainer[net].forward(x, record=True)
    trainer[net].backward(d_out)
    for layer, g in zip(plan_layers(net, False), dense):
        torch.testing.assert_close(layer.weight.grad, g)  # the buffer holds it, unmasked
    old = _masks(net)
    weights = [layer.weight.detach().clone() for layer in plan_layers(net, False)]
    hook.before_update(trainer)
    hook.update(trainer)
    fraction = method.drop_fraction(0.0)
    for layer, mask, w, g in zip(plan_layers(net, False), old, weights, dense):
        active = [i for i in range(mask.numel()) if mask.view(-1)[i] == 1]
        k = int(round(fraction * len(active)))
        drop = sorted(active, key=lambda i: (abs(float(w.view(-1)[i])), i))[:k]
        kept = set(active) - set(drop)
        candidates = [i for i in range(mask.numel()) if i not in kept]
        grow = sorted(candidates, key=lambda i: (-abs(float(g.view(-1)[i])), i))[:k]  # type: ignore[union-attr]
        expected = torch.zeros(mask.numel())
        expected[sorted(kept | set(grow))] = 1
        assert layer.mask is not None
        assert torch.equal(layer.mask.view(-1), expected), layer.name
        assert k > 0


def test_rigl_drop_fraction_decays_on_a_cosine_and_set_stays_constant() -> None:
    rigl = methods.get("rigl")(DynamicParams(drop_fraction=0.3, end=0.75))
    set_ = methods.get("set")(DynamicParams(drop_fraction=0.3, end=0.75))
    assert isinstance(rigl, DynamicSparsePruning) and isinstance(set_, DynamicSparsePruning)
    for p in [0.0, 0.2, 0.5, 0.7]:
        assert rigl.drop_fraction(p) == pytest.approx(0.15 * (1 + math.cos(math.pi * p / 0.75)))
        assert set_.drop_fraction(p) == 0.3
    assert rigl.drop_fraction(0.75) == set_.drop_fraction(0.8) == 0.0


def test_no_update_after_end() -> None:
    net, trainer, hook, _ = _setup("set", update_every=1)
    hook.progress = lambda: 0.9  # past end (0.75): the topology is fixed
    before = _masks(net)
    for i in range(5):
        _step(trainer, net, i)
    assert hook.updates == 0
    assert all(torch.equal(a, b) for a, b in zip(before, _masks(net)))


@pytest.mark.parametrize("name", ["set", "rigl"])
def test_topology_updates_on_a_cnn(name: str) -> None:
    # conv weights train through autograd (AutogradNet); the buffer's gradient is dense too
    from nas_prune.rl.cnn import CNN

    torch.manual_seed(0)
    net = CNN((2, 6, 5), [4], [3], [1], [7], 3, "relu", channels_last=False)
    trainer = FlatTrainer([net], lr=1e-2)  # type: ignore[list-item]
    method = methods.get(name)(DynamicParams(update_every=1, drop_fraction=0.3))
    ctx = PruneContext(torch.Generator().manual_seed(0))
    layers = plan_layers(net, False)
    method.prune(net, [0.7] * len(layers), ctx)
    hook = DynamicSparsity(net, method, lambda: 0.0, ctx)
    trainer.hook = hook
    counts = [int(m.sum()) for m in _masks(net)]  # type: ignore[arg-type]
    first = _masks(net)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(1)
    for _ in range(8):
        x = torch.randn(16, 2 * 6 * 5, generator=gen)
        out = trainer[net].forward(x, record=True)
        trainer.step({net: torch.randn(out.shape, generator=gen)}, what="test loss")  # type: ignore[dict-item]
        assert [int(m.sum()) for m in _masks(net)] == counts  # type: ignore[arg-type]
        for layer in plan_layers(net, False):
            assert int((layer.weight[layer.mask == 0] != 0).sum()) == 0  # type: ignore[index]
    assert hook.updates == 8
    assert any(not torch.equal(a, b) for a, b in zip(first, _masks(net)))  # type: ignore[arg-type]


def test_erk_on_conv_kernels_uses_every_dimension() -> None:
    """Evci et al.'s ERK for a conv kernel: density ∝ (C_in + C_out + k_h + k_w) /
    (C_in C_out k_h k_w); for a matrix, (n_in + n_out) / (n_in n_out)."""
    shapes = [(16, 4, 3, 3), (128, 1024), (3, 128)]
    s = erk_sparsities(shapes, 0.9)
    sizes = [16 * 4 * 9, 128 * 1024, 3 * 128]
    raw = [(16 + 4 + 3 + 3) / (16 * 4 * 9), (128 + 1024) / (128 * 1024), (131) / (3 * 128)]
    kept = [(1 - x) * n for x, n in zip(s, sizes)]
    assert sum(kept) == pytest.approx(0.1 * sum(sizes))
    free = [i for i in range(3) if s[i] > 0]  # layers not capped at dense
    ratios = [(1 - s[i]) / raw[i] for i in free]
    assert ratios == pytest.approx([ratios[0]] * len(free))
