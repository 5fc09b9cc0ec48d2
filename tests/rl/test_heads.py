"""nas_prune.rl.heads: greedy / mean actions for each head kind, and heads from spaces."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from nas_prune.rl.heads import HEADS, Head, act
from nas_prune.rl.networks import MLP


def _identity(n: int, scale: float = 1.0) -> MLP:
    """An MLP [n, n] whose output is ``scale`` times its input."""
    net = MLP([n, n])
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.eye(n) * scale)
        net.layers[0].bias.zero_()
    return net


OBS = np.array([[0.1, 0.9, -3.0],
                [5.0, -1.0, 2.0],
                [-2.0, -1.5, -1.0]], dtype=np.float32)


def test_q_head_argmax_and_max_q() -> None:
    action, q = act(_identity(3), Head("q"), OBS)
    np.testing.assert_array_equal(action, [1, 0, 2])
    assert q is not None
    np.testing.assert_allclose(q, [0.9, 5.0, -1.0], rtol=1e-6)


def test_categorical_head_argmax_without_q() -> None:
    action, q = act(_identity(3), Head("categorical"), OBS)
    np.testing.assert_array_equal(action, [1, 0, 2])
    assert q is None


@pytest.mark.parametrize(("low", "high", "expected"), [
    ([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [[0.1, 0.9, -1.0], [1.0, -1.0, 1.0],
                                            [-1.0, -1.0, -1.0]]),
    ([0.0, -2.0, -5.0], [0.5, 0.0, 5.0], [[0.1, 0.0, -3.0], [0.5, -1.0, 2.0],
                                           [0.0, -1.5, -1.0]]),
    (None, None, OBS.tolist()),  # no bounds: the raw mean
])
def test_gaussian_head_mean_clipped_to_bounds(low: list[float] | None, high: list[float] | None,
                                              expected: list[list[float]]) -> None:
    action, q = act(_identity(3), Head("gaussian", low, high), OBS)
    np.testing.assert_allclose(action, expected, rtol=1e-6)
    assert q is None
    assert action.shape == OBS.shape


def test_single_observation_batch_of_one() -> None:
    action, q = act(_identity(3, scale=-1.0), Head("q"), OBS[:1])
    np.testing.assert_array_equal(action, [2])  # -(-3.0) is the largest
    assert q == pytest.approx([3.0])


def test_act_does_not_track_gradients() -> None:
    net = _identity(3)
    act(net, Head("q"), OBS)
    assert all(p.grad is None for p in net.parameters())


def test_head_for_discrete_space_has_no_bounds() -> None:
    assert Head.for_space("q", gym.spaces.Discrete(4)) == Head("q", None, None)


def test_head_for_box_space_keeps_bounds() -> None:
    space = gym.spaces.Box(np.array([-2.0, 0.0], dtype=np.float32),
                           np.array([2.0, 1.0], dtype=np.float32))
    head = Head.for_space("gaussian", space)
    assert (head.kind, head.low, head.high) == ("gaussian", [-2.0, 0.0], [2.0, 1.0])
    # the exported spec is plain JSON and rebuilds the same head
    spec = json.loads(json.dumps(head.to_json()))
    assert spec == {"kind": "gaussian", "low": [-2.0, 0.0], "high": [2.0, 1.0]}
    assert Head(**spec) == head


def test_head_kinds() -> None:
    assert HEADS == ("q", "categorical", "gaussian", "squashed")


def test_squashed_head_is_tanh_of_the_means_rescaled_to_the_bounds() -> None:
    # 2 actions: outputs 0-1 are the means, 2-3 log-stds (ignored when acting)
    obs = np.array([[0.0, 100.0, 5.0, -5.0], [-100.0, 0.5, 0.0, 0.0]], np.float32)
    action, q = act(_identity(4), Head("squashed", [-2.0, 0.0], [2.0, 1.0]), obs)
    expected = [[0.0, 1.0], [-2.0, 0.5 + 0.5 * np.tanh(0.5)]]
    np.testing.assert_allclose(action, expected, rtol=1e-6, atol=1e-6)
    assert q is None and Head("squashed").continuous and not Head("q").continuous
