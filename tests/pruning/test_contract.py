"""Contract tests every registered pruning method must pass.

Each test runs against every registered name (plus a few parameter variants) on a small seeded
MLP. A new method is one new module plus one line in ``METHODS``.
"""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
import torch
from torch import nn

from nas_prune.pruning import PruneContext, PruningMethod, methods
from nas_prune.pruning.base import check_plan, plan_layers, prunable_layer_count
from nas_prune.pruning.counting import achieved_sparsity, count, count_dense
from nas_prune.pruning.surgery import shrink
from nas_prune.rl.networks import MLP, weights_hash

METHODS = [
    "global_magnitude",
    "hierarchical",
    "importance",
    "l1",
    "magnitude",
    "random",
    "random_structured",
    "rigl",
    "set",
    "threshold",
]
RANDOM_METHODS = ["random", "random_structured", "rigl", "set"]

# Every name with its default params, plus the variants whose code paths differ.
CASES: list[Any] = [pytest.param(name, {}, id=name) for name in METHODS] + [
    pytest.param("importance", {"criterion": "l2"}, id="importance-l2"),
    pytest.param("importance", {"criterion": "taylor"}, id="importance-taylor"),
    pytest.param(
        "hierarchical", {"criterion": "taylor", "order": [1, 0]}, id="hierarchical-taylor-order10"
    ),
]
STRUCTURED = [c for c in CASES if methods.get(c.values[0]).structured]
UNSTRUCTURED = [c for c in CASES if not methods.get(c.values[0]).structured]

SIZES = [6, 32, 16, 3]
PLAN_UNSTRUCTURED = [0.3, 0.5, 0.0]  # per Linear: 192, 512, 48 weights -> 58, 256, 0 removed
PLAN_STRUCTURED = [0.3, 0.5]  # per hidden layer: 32, 16 neurons -> 10, 8 removed


def linears(net: MLP) -> list[nn.Linear]:
    """The Linear layers, typed (``ModuleList`` items are plain ``Module`` to mypy)."""
    return [cast(nn.Linear, layer) for layer in net.layers]


def make_net(seed: int = 0, activation: str = "relu") -> MLP:
    torch.manual_seed(seed)
    return MLP(SIZES, activation)


def make_ctx(seed: int = 0) -> PruneContext:
    states = torch.randn(64, SIZES[0], generator=torch.Generator().manual_seed(1234))
    return PruneContext(torch.Generator().manual_seed(seed), states=states)


def make_method(name: str, params: dict[str, Any]) -> PruningMethod:
    cls = methods.get(name)
    return cls(cls.Params(**params))


def plan_for(method: PruningMethod) -> list[float]:
    return PLAN_STRUCTURED if method.structured else PLAN_UNSTRUCTURED


def layer_sizes(net: MLP, structured: bool) -> list[int]:
    """What each plan entry is a fraction of: hidden neurons or Linear weights."""
    return list(net.hidden) if structured else [layer.weight.numel() for layer in linears(net)]


def masks(net: MLP, structured: bool) -> list[torch.Tensor]:
    layers = plan_layers(net, structured)
    raw = [layer.unit_mask if structured else layer.mask for layer in layers]
    assert all(m is not None for m in raw)
    return [m.detach().clone().float() for m in raw]  # type: ignore[union-attr]


def pruned(
    name: str,
    params: dict[str, Any],
    *,
    gen_seed: int = 0,
    activation: str = "relu",
) -> tuple[MLP, PruningMethod]:
    net = make_net(activation=activation)
    method = make_method(name, params)
    method.prune(net, plan_for(method), make_ctx(gen_seed))
    return net, method


def total_zero_weights(net: MLP) -> int:
    return sum(int((layer.weight == 0).sum()) for layer in linears(net))


def test_methods_list_matches_registry() -> None:
    assert sorted(METHODS) == methods.names()


@pytest.mark.parametrize(("name", "params"), CASES)
class TestPruningContract:
    """Properties every method has, whatever it scores weights or neurons by."""

    def test_achieved_sparsity_matches_plan(self, name: str, params: dict[str, Any]) -> None:
        net, method = pruned(name, params)
        plan = plan_for(method)
        sizes = layer_sizes(net, method.structured)
        if method.global_plan:
            # Only the total follows the plan: round(sum s_i n_i) of sum n_i weights.
            total = round(sum(s * n for s, n in zip(plan, sizes, strict=True)))
            assert total_zero_weights(net) == total
            assert sum(m.numel() - int(m.sum()) for m in masks(net, False)) == total
        else:
            expected = [round(s * n) / n for s, n in zip(plan, sizes, strict=True)]
            assert achieved_sparsity(net, method.structured) == pytest.approx(expected, abs=1e-6)
        if not method.structured:
            # The mask and the weights agree: exactly the masked weights are zero.
            for layer, m in zip(linears(net), masks(net, False), strict=True):
                assert torch.equal(layer.weight == 0, m == 0)

    def test_pruned_net_runs(self, name: str, params: dict[str, Any]) -> None:
        net, _ = pruned(name, params)
        out = net(torch.randn(10, SIZES[0]))
        assert out.shape == (10, SIZES[-1])
        assert torch.isfinite(out).all()

    def test_same_seed_same_result(self, name: str, params: dict[str, Any]) -> None:
        a, method = pruned(name, params)
        b, _ = pruned(name, params)
        for ma, mb in zip(masks(a, method.structured), masks(b, method.structured), strict=True):
            assert torch.equal(ma, mb)
        assert weights_hash(a) == weights_hash(b)
        assert weights_hash(a) != weights_hash(make_net(0))  # pruning changed the weights

    def test_cumulative(self, name: str, params: dict[str, Any]) -> None:
        net = make_net()
        method = make_method(name, params)
        n = method.n_prunable(net)
        ctx = make_ctx()
        method.prune(net, [0.3] * n, ctx)
        first = masks(net, method.structured)
        method.prune(net, [0.6] * n, ctx)
        second = masks(net, method.structured)
        for m1, m2 in zip(first, second, strict=True):
            assert (m2[m1 == 0] == 0).all()  # removed at 0.3 stays removed
            assert int((m2 == 0).sum()) > int((m1 == 0).sum())
        sizes = layer_sizes(net, method.structured)
        if method.global_plan:
            assert total_zero_weights(net) == round(sum(0.6 * s for s in sizes))
        else:
            expected = [round(0.6 * s) / s for s in sizes]
            assert achieved_sparsity(net, method.structured) == pytest.approx(expected, abs=1e-6)

    def test_masks_survive_finetuning(self, name: str, params: dict[str, Any]) -> None:
        net, method = pruned(name, params)
        before = [layer.weight.detach().clone() for layer in linears(net)]
        gen = torch.Generator().manual_seed(7)
        x, y = torch.randn(32, SIZES[0], generator=gen), torch.randn(32, SIZES[-1], generator=gen)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
            net.apply_masks()
        for layer, old, (wm, bm) in zip(linears(net), before, net.effective_masks(), strict=True):
            assert (layer.weight[wm == 0] == 0.0).all()
            assert not torch.equal(layer.weight, old)  # the kept weights did train
            if bm is not None:
                assert (layer.bias[bm == 0] == 0.0).all()
        if method.structured:
            for i, keep in enumerate(layer.unit_mask for layer in net.prunable_layers()[:-1]):
                assert keep is not None and not keep.all()
                gone = ~keep
                assert (linears(net)[i].weight[gone] == 0.0).all()  # rows in
                assert (linears(net)[i].bias[gone] == 0.0).all()
                assert (linears(net)[i + 1].weight[:, gone] == 0.0).all()  # columns out
        else:
            assert sum(int((m == 0).sum()) for m in masks(net, False)) > 0

    @pytest.mark.parametrize(
        ("length_change", "last", "match"),
        [
            (-1, 0.5, "values given"),
            (+1, 0.5, "values given"),
            (0, -0.1, "outside"),
            (0, 1.0, "outside"),
            (0, 1.5, "outside"),
            (0, math.nan, "outside"),
        ],
    )
    def test_check_plan_rejects(
        self, name: str, params: dict[str, Any], length_change: int, last: float, match: str
    ) -> None:
        net, cls = make_net(), methods.get(name)
        bad = [0.0] * (cls.n_prunable(net) - 1 + length_change) + [last]
        with pytest.raises(ValueError, match=rf"pruning\.sparsity.*{match}"):
            check_plan(net, bad, cls)

    def test_check_plan_accepts(self, name: str, params: dict[str, Any]) -> None:
        net, cls = make_net(), methods.get(name)
        assert cls.n_prunable(net) == (2 if cls.structured else 3)
        assert prunable_layer_count(SIZES[1:-1], cls.structured) == cls.n_prunable(net)
        check_plan(net, plan_for(make_method(name, params)), cls)  # no error
        check_plan(net, [0.0] * cls.n_prunable(net), cls)


@pytest.mark.parametrize("name", RANDOM_METHODS)
def test_random_methods_depend_on_seed(name: str) -> None:
    a, method = pruned(name, {}, gen_seed=0)
    b, _ = pruned(name, {}, gen_seed=1)
    ma, mb = masks(a, method.structured), masks(b, method.structured)
    assert any(not torch.equal(x, y) for x, y in zip(ma, mb, strict=True))
    # Same plan, so the same number removed either way.
    assert [int((x == 0).sum()) for x in ma] == [int((y == 0).sum()) for y in mb]


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu"])
@pytest.mark.parametrize(("name", "params"), STRUCTURED)
def test_structured_shrink(name: str, params: dict[str, Any], activation: str) -> None:
    net, _ = pruned(name, params, activation=activation)
    small = shrink(net)
    expected_hidden = [n - round(s * n) for s, n in zip(PLAN_STRUCTURED, net.hidden, strict=True)]
    assert small.hidden == expected_hidden == [22, 8]
    assert small.sizes == [SIZES[0], *expected_hidden, SIZES[-1]]
    assert small.activation == activation
    assert count(small).params == count_dense(small.sizes) < count_dense(SIZES)
    x = torch.randn(50, SIZES[0], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-6)


@pytest.mark.parametrize(("name", "params"), UNSTRUCTURED)
def test_unstructured_shrink_keeps_shapes(name: str, params: dict[str, Any]) -> None:
    dense_nonzero = count(make_net()).params_nonzero
    net, _ = pruned(name, params)
    n_pruned = sum(int((m == 0).sum()) for m in masks(net, False))
    small = shrink(net)
    assert small.sizes == SIZES
    for a, b in zip(linears(small), linears(net), strict=True):
        assert a.weight.shape == b.weight.shape
    c = count(small)
    assert c.params == count_dense(SIZES)
    assert c.params_nonzero == dense_nonzero - n_pruned
    assert n_pruned > 0
    x = torch.randn(50, SIZES[0], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-6)
