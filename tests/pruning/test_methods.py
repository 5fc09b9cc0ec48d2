"""Method-specific behaviour on hand-built weights, plus the schedule and selection helpers."""

from __future__ import annotations

from itertools import pairwise
from typing import cast

import pytest
import torch
from torch import nn

from nas_prune.pruning import PruneContext, methods
from nas_prune.pruning.base import PruningMethod, mask_lowest, n_to_prune, prunable_layer_count
from nas_prune.pruning.methods.hierarchical import HierarchicalParams, HierarchicalPruning
from nas_prune.pruning.methods.importance import ImportanceParams, ImportancePruning, unit_scores
from nas_prune.pruning.methods.l1 import L1Params, L1Pruning
from nas_prune.pruning.methods.magnitude import GlobalMagnitudePruning, MagnitudePruning
from nas_prune.pruning.methods.threshold import ThresholdParams, ThresholdPruning
from nas_prune.pruning.schedule import cubic_progress
from nas_prune.rl.networks import MLP


def linears(net: MLP) -> list[nn.Linear]:
    """The Linear layers, typed (``ModuleList`` items are plain ``Module`` to mypy)."""
    return [cast(nn.Linear, layer) for layer in net.layers]


def wmask(net: MLP, i: int) -> torch.Tensor:
    mask = net.prunable_layers()[i].mask
    assert mask is not None, f"layer {i} has no weight mask"
    return mask


def nmask(net: MLP, i: int) -> torch.Tensor:
    mask = net.prunable_layers()[i].unit_mask
    assert mask is not None, f"hidden layer {i} has no neuron mask"
    return mask


def has_masks(net: MLP) -> bool:
    return any(layer.mask is not None or layer.unit_mask is not None
               for layer in net.prunable_layers())


def ctx(states: torch.Tensor | None = None) -> PruneContext:
    return PruneContext(torch.Generator().manual_seed(0), states=states)


def hand_net(
    sizes: list[int],
    weights: list[list[list[float]]],
    biases: list[list[float]] | None = None,
    activation: str = "relu",
) -> MLP:
    net = MLP(sizes, activation)
    with torch.no_grad():
        for i, (layer, w) in enumerate(zip(linears(net), weights, strict=True)):
            layer.weight.copy_(torch.tensor(w))
            layer.bias.copy_(torch.tensor(biases[i]) if biases else torch.zeros_like(layer.bias))
    return net


W0 = [[0.5, -0.1], [0.3, -0.9], [0.05, 0.7]]  # Linear 2 -> 3
W1 = [[0.2, -0.2, 0.4], [0.1, 0.2, -0.3]]  # Linear 3 -> 2; |0.2| three times


# --- helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sparsity", "n", "expected"),
    [
        (0.0, 10, 0),
        (0.3, 10, 3),
        (0.25, 10, 2),  # round(2.5): Python rounds half to even
        (0.35, 10, 4),  # round(3.5) -> 4
        (0.99, 10, 9),  # at least one left: sparsity < 1 never empties a layer
        (0.5, 2, 1),
        (0.4, 1, 0),
    ],
)
def test_n_to_prune(sparsity: float, n: int, expected: int) -> None:
    assert n_to_prune(sparsity, n) == expected


@pytest.mark.parametrize(
    ("hidden", "structured", "expected"),
    [([64, 64], True, 2), ([64, 64], False, 3), ([8], True, 1), ([8], False, 2)],
)
def test_prunable_layer_count_draws_no_random_numbers(
    hidden: list[int], structured: bool, expected: int
) -> None:
    torch.manual_seed(0)
    ahead = torch.rand(4)
    torch.manual_seed(0)
    assert prunable_layer_count(hidden, structured) == expected
    assert torch.equal(torch.rand(4), ahead)  # config validation leaves seeded runs alone


def test_mask_lowest_breaks_ties_by_index() -> None:
    scores = torch.tensor([3.0, 1.0, 2.0, 1.0, 1.0])
    assert mask_lowest(scores, 2, None).tolist() == [1, 0, 1, 0, 1]


def test_mask_lowest_removes_old_first_and_never_regrows() -> None:
    scores = torch.tensor([0.1, 5.0, 0.2, 4.0])
    old = torch.tensor([1.0, 0.0, 1.0, 1.0])  # the largest score is already gone
    assert mask_lowest(scores, 2, old).tolist() == [0, 0, 1, 1]
    assert mask_lowest(scores, 0, old).tolist() == [1, 0, 1, 1]  # k below the old count


# --- magnitude ----------------------------------------------------------------------------


def test_magnitude_removes_smallest_abs_per_layer() -> None:
    net = hand_net([2, 3, 2], [W0, W1])
    MagnitudePruning().prune(net, [0.5, 0.5], ctx())
    # Layer 0: 3 of 6 go, |w| = 0.05, 0.1, 0.3. Layer 1: 0.1, then the first two 0.2s by index.
    assert wmask(net, 0).tolist() == [[1, 0], [0, 1], [0, 1]]
    assert wmask(net, 1).tolist() == [[0, 0, 1], [0, 1, 1]]
    assert torch.equal(linears(net)[0].weight, torch.tensor([[0.5, 0.0], [0.0, -0.9], [0.0, 0.7]]))
    assert torch.equal(linears(net)[1].weight, torch.tensor([[0.0, 0.0, 0.4], [0.0, 0.2, -0.3]]))


def test_global_magnitude_uses_one_threshold() -> None:
    big = [[5.0, -6.0], [7.0, 8.0], [-9.0, 10.0]]
    small = [[0.1, -0.2, 0.3], [0.4, -0.5, 0.6]]
    net = hand_net([2, 3, 2], [big, small])
    GlobalMagnitudePruning().prune(net, [0.5, 0.5], ctx())
    # 6 of 12 weights go: five from the layer of small weights, which keeps its largest
    # (no layer is ever emptied), then the smallest of the big layer.
    assert wmask(net, 0).sum().item() == 5
    assert wmask(net, 1).tolist() == [[0, 0, 0], [0, 0, 1]]
    assert wmask(net, 0).tolist() == [[0, 1], [1, 1], [1, 1]]
    per_layer = hand_net([2, 3, 2], [big, small])
    MagnitudePruning().prune(per_layer, [0.5, 0.5], ctx())
    assert wmask(per_layer, 0).sum().item() == 3  # per-layer would split it evenly


def test_l1_prunes_like_magnitude_and_penalises_abs_weights() -> None:
    torch.manual_seed(0)
    net = MLP([4, 16, 8, 2])
    method = L1Pruning(L1Params(l1_coef=0.01))
    expected = 0.01 * sum(float(layer.weight.detach().abs().sum()) for layer in linears(net))
    penalty = method.penalty(net)
    assert penalty is not None
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    for layer in linears(net):  # d/dw coef*|w| = coef*sign(w); biases are not penalised
        assert layer.weight.grad is not None
        assert torch.allclose(layer.weight.grad, 0.01 * layer.weight.sign())
        assert layer.bias.grad is None
    a, b = MLP([4, 16, 8, 2]), MLP([4, 16, 8, 2])
    b.load_state_dict(a.state_dict())
    method.prune(a, [0.5, 0.3, 0.2], ctx())
    MagnitudePruning().prune(b, [0.5, 0.3, 0.2], ctx())
    assert all(torch.equal(wmask(a, i), wmask(b, i)) for i in range(len(a.layers)))


def test_l1_default_coef() -> None:
    assert L1Pruning().params.l1_coef == 1e-4  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["magnitude", "global_magnitude", "random", "importance"])
def test_methods_without_regulariser_have_no_penalty(name: str) -> None:
    assert methods.get(name)().penalty(MLP([4, 16, 8, 2])) is None


# --- threshold ----------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [[0.0, 0.0], [0.9, 0.5]])
def test_threshold_zeros_exactly_below_theta_and_ignores_plan(plan: list[float]) -> None:
    w0 = [[0.0999, -0.1001], [0.5, -0.05], [0.0, 2.0]]
    w1 = [[-0.09, 0.11, 0.3], [0.01, -1.0, 0.1]]  # 0.1 itself is kept (|w| >= theta)
    net = hand_net([2, 3, 2], [w0, w1])
    ThresholdPruning(ThresholdParams(threshold=0.1)).prune(net, plan, ctx())
    assert wmask(net, 0).tolist() == [[0, 1], [1, 0], [0, 1]]
    assert wmask(net, 1).tolist() == [[0, 1, 1], [0, 1, 1]]
    for layer in linears(net):
        w = layer.weight
        assert ((w.abs() < 0.1) == (w == 0)).all()


def test_threshold_without_theta_equals_magnitude() -> None:
    a = hand_net([2, 3, 2], [W0, W1])
    b = hand_net([2, 3, 2], [W0, W1])
    ThresholdPruning().prune(a, [0.5, 0.5], ctx())
    MagnitudePruning().prune(b, [0.5, 0.5], ctx())
    assert all(torch.equal(wmask(a, i), wmask(b, i)) for i in range(len(a.layers)))


def test_threshold_is_cumulative() -> None:
    net = hand_net([2, 3, 2], [W0, W1])
    ThresholdPruning(ThresholdParams(threshold=0.35)).prune(net, [0.0, 0.0], ctx())
    ThresholdPruning(ThresholdParams(threshold=0.1)).prune(net, [0.0, 0.0], ctx())
    assert wmask(net, 0).tolist() == [[1, 0], [0, 1], [0, 1]]  # 0.3 stays gone


@pytest.mark.parametrize("theta", [0.0, -1.0])
def test_threshold_must_be_positive(theta: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ThresholdParams(threshold=theta)


# --- importance ---------------------------------------------------------------------------

# Hidden neuron 0: incoming [1, 1, 1, 1] (l1 4, l2 2); neuron 1: [3, 0, 0, 0] (l1 3, l2 3).
L1_VS_L2 = [[[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]], [[1.0, 1.0]]]


@pytest.mark.parametrize(
    ("criterion", "scores", "keep"),
    [
        ("l1", [4.0, 3.0], [True, False]),
        ("l2", [2.0, 3.0], [False, True]),
    ],
)
def test_importance_norm_criteria(criterion: str, scores: list[float], keep: list[bool]) -> None:
    net = hand_net([4, 2, 1], L1_VS_L2)
    assert unit_scores(net, criterion, ctx())[0].tolist() == pytest.approx(scores)
    ImportancePruning(ImportanceParams(criterion=criterion)).prune(net, [0.5], ctx())  # type: ignore[arg-type]
    assert nmask(net, 0).tolist() == keep
    gone = keep.index(False)
    assert linears(net)[0].weight[gone].tolist() == [0.0] * 4
    assert linears(net)[1].weight[0, gone].item() == 0.0


# Neuron 0 carries the signal, neuron 1 is dead under ReLU (big incoming weights, never
# active on positive states), neuron 2 is alive but tiny: l1 drops 2, Taylor drops 1.
TAYLOR_W = [[[1.0, 1.0], [-5.0, -5.0], [0.1, 0.1]], [[1.0, 1.0, 0.1]]]


def test_taylor_drops_dead_neuron_where_l1_keeps_it() -> None:
    states = torch.rand(16, 2, generator=torch.Generator().manual_seed(0)) + 0.1
    net = hand_net([2, 3, 1], TAYLOR_W)
    scores = unit_scores(net, "taylor", ctx(states))[0]
    # |a * dJ/da| with J = the batch mean of the output: dJ/da = w_out / batch, a = w_in . x.
    a0 = states.sum(dim=1).mean().item()
    batch = len(states)
    assert scores.tolist() == pytest.approx([a0 / batch, 0.0, 0.01 * a0 / batch])
    assert all(p.grad is None for p in net.parameters())  # scoring leaves no gradients
    ImportancePruning(ImportanceParams(criterion="taylor")).prune(net, [1 / 3], ctx(states))
    assert nmask(net, 0).tolist() == [True, False, True]
    l1 = hand_net([2, 3, 1], TAYLOR_W)
    ImportancePruning().prune(l1, [1 / 3], ctx(states))
    assert nmask(l1, 0).tolist() == [True, True, False]


@pytest.mark.parametrize("cls", [ImportancePruning, HierarchicalPruning])
def test_taylor_needs_states(cls: type[PruningMethod]) -> None:
    net = MLP([4, 16, 8, 2])
    method = cls(cls.Params(criterion="taylor"))
    with pytest.raises(ValueError, match="taylor.*states"):
        method.prune(net, [0.5, 0.5], ctx(None))
    assert not has_masks(net)


@pytest.mark.parametrize("name", ["importance", "random_structured", "hierarchical"])
def test_structured_keeps_one_neuron(name: str) -> None:
    net = MLP([4, 2, 3, 2])
    methods.get(name)().prune(net, [0.99, 0.99], ctx(torch.randn(8, 4)))
    assert [int(nmask(net, i).sum()) for i in range(2)] == [1, 1]
    assert torch.isfinite(net(torch.randn(5, 4))).all()


def test_importance_rejects_unknown_criterion() -> None:
    with pytest.raises(ValueError, match="criterion"):
        ImportanceParams(criterion="l3")  # type: ignore[arg-type]


# --- hierarchical -------------------------------------------------------------------------

PROGRESS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (None, [[0, 0], [0.25, 0], [0.5, 0], [0.5, 0.4], [0.5, 0.8]]),
        ([0, 1], [[0, 0], [0.25, 0], [0.5, 0], [0.5, 0.4], [0.5, 0.8]]),
        ([1, 0], [[0, 0], [0, 0.4], [0, 0.8], [0.25, 0.8], [0.5, 0.8]]),
    ],
)
def test_hierarchical_step_targets(order: list[int] | None, expected: list[list[float]]) -> None:
    method = HierarchicalPruning(HierarchicalParams(order=order))
    got = [method.step_targets([0.5, 0.8], p) for p in PROGRESS]
    assert got == [pytest.approx(e) for e in expected]


def test_default_step_targets_scale_linearly() -> None:
    got = [MagnitudePruning().step_targets([0.5, 0.8, 0.2], p) for p in PROGRESS]
    assert got == [pytest.approx([0.5 * p, 0.8 * p, 0.2 * p]) for p in PROGRESS]


@pytest.mark.parametrize("order", [[0], [0, 0], [0, 2], [1, 2], [0, 1, 2], [-1, 0]])
def test_hierarchical_bad_order(order: list[int]) -> None:
    method = HierarchicalPruning(HierarchicalParams(order=order))
    with pytest.raises(ValueError, match=r"order.*permutation"):
        method.step_targets([0.5, 0.8], 0.5)
    with pytest.raises(ValueError, match=r"order.*permutation"):
        method.prune(MLP([4, 16, 8, 2]), [0.5, 0.5], ctx())


def _seeded_net() -> MLP:
    torch.manual_seed(0)
    return MLP([4, 16, 8, 2])


def _neuron_masks(net: MLP) -> list[list[bool]]:
    return [nmask(net, i).tolist() for i in range(len(net.hidden))]


def test_hierarchical_one_shot_rescores_after_each_layer() -> None:
    plan = [0.5, 0.25]
    first_layer_first = _seeded_net()
    HierarchicalPruning(HierarchicalParams(order=[0, 1])).prune(first_layer_first, plan, ctx())
    # Same as importance on layer 0, then importance on layer 1 scored on the pruned net.
    two_step = _seeded_net()
    ImportancePruning().prune(two_step, [0.5, 0.0], ctx())
    ImportancePruning().prune(two_step, plan, ctx())
    assert _neuron_masks(first_layer_first) == _neuron_masks(two_step)
    assert [m.count(False) for m in _neuron_masks(first_layer_first)] == [8, 2]
    # Last layer first: layer 1 is scored on the dense net, as one-shot importance does.
    last_layer_first = _seeded_net()
    HierarchicalPruning(HierarchicalParams(order=[1, 0])).prune(last_layer_first, plan, ctx())
    one_shot = _seeded_net()
    ImportancePruning().prune(one_shot, plan, ctx())
    assert _neuron_masks(last_layer_first) == _neuron_masks(one_shot)
    assert _neuron_masks(first_layer_first) != _neuron_masks(last_layer_first)  # order matters


# --- schedule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "steps", "expected"),
    [
        (0, 4, 0.0),
        (4, 4, 1.0),
        (1, 2, 0.875),
        (1, 4, 0.578125),  # 1 - 0.75^3
        (2, 4, 0.875),
        (3, 4, 0.984375),  # 1 - 0.25^3
        (0, 1, 0.0),
        (1, 1, 1.0),
    ],
)
def test_cubic_progress(step: int, steps: int, expected: float) -> None:
    assert cubic_progress(step, steps) == pytest.approx(expected)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_cubic_progress_is_monotone_and_front_loaded(steps: int) -> None:
    values = [cubic_progress(k, steps) for k in range(steps + 1)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(a < b for a, b in pairwise(values))
    gains = [b - a for a, b in pairwise(values)]
    assert all(a > b for a, b in pairwise(gains))  # most pruning early


def test_params_reject_unknown_keys() -> None:
    for cls in (ImportanceParams, HierarchicalParams, L1Params, ThresholdParams):
        with pytest.raises(ValueError, match="extra"):
            cls(typo=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        methods.get("magnitude").Params(threshold=0.1)
