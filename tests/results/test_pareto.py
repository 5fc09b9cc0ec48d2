"""Table-driven tests for nas_prune.results.pareto; expected numbers are computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nas_prune.results.pareto import (
    NoPointError,
    dominates,
    front_indices,
    hypervolume,
    knee_index,
    normalized_hypervolume,
    select_point,
)

NAN = math.nan
INF = math.inf


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((1.0, 1.0), (1.0, 1.0), False),  # equal: neither dominates
        ((1.0, 2.0), (1.0, 1.0), True),  # same params, higher return
        ((0.0, 1.0), (1.0, 1.0), True),  # fewer params, same return
        ((0.0, 2.0), (1.0, 1.0), True),  # strictly better on both
        ((0.0, 0.0), (1.0, 1.0), False),  # trade-off
        ((1.0, 1.0), (0.0, 0.0), False),  # trade-off, other way round
        ((2.0, 1.0), (1.0, 2.0), False),  # strictly worse
        ((NAN, 5.0), (1.0, 1.0), False),  # NaN never dominates
    ],
)
def test_dominates(
    a: tuple[float, float], b: tuple[float, float], expected: bool
) -> None:
    assert dominates(a, b) is expected


@pytest.mark.parametrize(
    ("params", "returns", "expected"),
    [
        ([], [], []),
        ([5.0], [1.0], [0]),
        (
            [3.0, 1.0, 2.0],
            [3.0, 1.0, 2.0],
            [1, 2, 0],
        ),  # all trade-offs, sorted by params
        ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0]),  # first dominates the rest
        ([1.0, 1.0, 2.0], [5.0, 5.0, 6.0], [0, 2]),  # duplicate keeps first occurrence
        ([2.0, 1.0, 1.0], [6.0, 5.0, 5.0], [1, 0]),  # duplicate keeps first occurrence
        ([10.0, 10.0, 20.0], [5.0, 7.0, 7.0], [1]),  # params tie: higher return wins
        (
            [1.0, NAN, 2.0, 3.0],
            [1.0, 5.0, INF, 3.0],
            [0, 3],
        ),  # non-finite never on front
        ([NAN, INF], [1.0, 2.0], []),  # nothing finite
        (
            [4.0, 1.0, 3.0, 2.0],
            [9.0, 1.0, 8.0, 8.0],
            [1, 3, 0],
        ),  # (3, 8) dominated by (2, 8)
    ],
)
def test_front_indices(
    params: list[float], returns: list[float], expected: list[int]
) -> None:
    assert front_indices(params, returns) == expected


def test_front_indices_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    params = rng.integers(1, 8, size=60).astype(
        float
    )  # small range -> many ties/duplicates
    returns = rng.integers(0, 8, size=60).astype(float)
    points = list(zip(params, returns, strict=True))
    expected = [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for q in points) and p not in points[:i]
    ]
    got = front_indices(params, returns)
    assert sorted(got) == expected
    assert [params[i] for i in got] == sorted(params[i] for i in got)


@pytest.mark.parametrize(
    ("params", "returns", "ref", "expected"),
    [
        ([], [], (10.0, 0.0), 0.0),
        ([2.0], [3.0], (10.0, 0.0), 24.0),  # 8 * 3
        ([2.0], [3.0], (10.0, 1.0), 16.0),  # 8 * 2
        ([2.0, 5.0], [3.0, 6.0], (10.0, 0.0), 39.0),  # 3*3 + 5*6
        ([1.0, 4.0, 8.0], [1.0, 5.0, 7.0], (10.0, 0.0), 37.0),  # 3*1 + 4*5 + 2*7
        # dominated (6, 4), outside box (12, 9), NaN and duplicate points change nothing
        (
            [8.0, 6.0, 4.0, 12.0, NAN, 1.0, 4.0],
            [7.0, 4.0, 5.0, 9.0, 8.0, 1.0, 5.0],
            (10.0, 0.0),
            37.0,
        ),
        ([2.0], [-1.0], (10.0, 0.0), 0.0),  # below the return floor
        ([10.0], [5.0], (10.0, 0.0), 0.0),  # on the params edge: zero width
    ],
)
def test_hypervolume(
    params: list[float], returns: list[float], ref: tuple[float, float], expected: float
) -> None:
    got = hypervolume(params, returns, ref_params=ref[0], ref_return=ref[1])
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("params", "returns", "expected"),
    [
        ([10.0, 100.0], [100.0, 300.0], 400.0),  # log10: 1, 2, ref 3 -> 1*100 + 1*300
        ([0.5], [50.0], 150.0),  # params clipped to 1 -> log10 = 0 -> 3 * 50
        ([1000.0], [50.0], 0.0),  # on the reference params
    ],
)
def test_hypervolume_log_params(
    params: list[float], returns: list[float], expected: float
) -> None:
    got = hypervolume(
        params, returns, ref_params=1000.0, ref_return=0.0, log_params=True
    )
    assert got == pytest.approx(expected)


def test_hypervolume_matches_grid_estimate() -> None:
    rng = np.random.default_rng(0)
    params = rng.uniform(0.0, 1000.0, size=20)
    returns = rng.uniform(0.0, 500.0, size=20)
    cells = 400
    gx = (np.arange(cells) + 0.5) * 1000.0 / cells
    gy = (np.arange(cells) + 0.5) * 500.0 / cells
    x, y = np.meshgrid(gx, gy)
    covered = (
        (params[None, None, :] <= x[..., None])
        & (returns[None, None, :] >= y[..., None])
    ).any(axis=-1)
    estimate = covered.mean() * 1000.0 * 500.0
    exact = hypervolume(params, returns, ref_params=1000.0, ref_return=0.0)
    assert exact == pytest.approx(estimate, rel=0.01)


@pytest.mark.parametrize(
    ("params", "returns", "kwargs", "expected"),
    [
        ([2.0], [3.0], {"ref_params": 10.0, "ref_return": 0.0, "max_return": 6.0}, 0.4),
        (
            [0.0],
            [600.0],
            {"ref_params": 10.0, "ref_return": 0.0, "max_return": 500.0},
            1.0,
        ),
        ([], [], {"ref_params": 10.0, "ref_return": 0.0, "max_return": 500.0}, 0.0),
        (
            [10.0, 100.0],
            [100.0, 300.0],
            {
                "ref_params": 1000.0,
                "ref_return": 0.0,
                "max_return": 500.0,
                "log_params": True,
            },
            400.0 / 1500.0,
        ),
    ],
)
def test_normalized_hypervolume(
    params: list[float], returns: list[float], kwargs: dict[str, Any], expected: float
) -> None:
    assert normalized_hypervolume(params, returns, **kwargs) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ref_params": NAN, "ref_return": 0.0, "max_return": 1.0}, "ref_params"),
        ({"ref_params": 10.0, "ref_return": 0.0, "max_return": 0.0}, "max_return"),
        ({"ref_params": 0.0, "ref_return": 0.0, "max_return": 1.0}, "ref_params"),
        (
            {
                "ref_params": 1.0,
                "ref_return": 0.0,
                "max_return": 1.0,
                "log_params": True,
            },
            "ref_params",
        ),
        (
            {
                "ref_params": 0.5,
                "ref_return": 0.0,
                "max_return": 1.0,
                "log_params": True,
            },
            "ref_params",
        ),
    ],
)
def test_normalized_hypervolume_rejects_bad_box(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        normalized_hypervolume([1.0], [1.0], **kwargs)


@pytest.mark.parametrize(
    ("params", "returns", "expected"),
    [
        # L-shape: log10 params 1..4 -> x = 0, 1/3, 2/3, 1; y = 0, .9, .96, 1;
        # distance to the diagonal ~ y - x is largest at index 1
        ([10.0, 100.0, 1000.0, 10000.0], [0.0, 450.0, 480.0, 500.0], 1),
        # same front shuffled, plus a dominated point and a NaN
        (
            [1000.0, 5000.0, 10.0, NAN, 10000.0, 100.0],
            [480.0, 300.0, 0.0, 900.0, 500.0, 450.0],
            5,
        ),
        ([7.0], [3.0], 0),  # single point
        ([10.0, 100.0], [1.0, 2.0], 1),  # two points: highest return
        ([10.0, 100.0, 200.0], [1.0, 2.0, 0.5], 1),  # front of two after dominance
        # a dip below the chord is no knee (LunarLanderContinuous SAC, session 5: the old
        # |distance| picked 486 parameters at -50.3, the worst trade-off of the front)
        ([23.0, 486.0, 718.0, 3953.0], [-129.6, -50.3, 154.0, 269.1], 2),
        # every point below its chord (a concave front): the highest return
        ([10.0, 100.0, 1000.0], [0.0, 10.0, 100.0], 2),
        # Breakout seed 0 (session 4): the old rule picked 605 parameters (33% of dense),
        # 0.196 below the chord; no point is above it (1,529 at 9.8 is 0.002 below), so the
        # knee is the highest return: 4,460 parameters (3.4%) at 13.6
        ([312.0, 605.0, 788.0, 1529.0, 3090.0, 3882.0, 4460.0],
         [4.2, 4.7, 5.9, 9.8, 11.0, 11.9, 13.6], 6),
    ],
)
def test_knee_index(params: list[float], returns: list[float], expected: int) -> None:
    assert knee_index(params, returns) == expected


@pytest.mark.parametrize(
    ("params", "returns"), [([], []), ([NAN], [1.0]), ([1.0], [INF])]
)
def test_knee_index_without_finite_points(
    params: list[float], returns: list[float]
) -> None:
    with pytest.raises(ValueError, match="no finite points"):
        knee_index(params, returns)
















# Front: indices 0..3 = (100, 300), (200, 450), (400, 490), (800, 500);
# index 4 = (300, 400) is dominated by index 1.
SELECT_PARAMS = [100.0, 200.0, 400.0, 800.0, 300.0]
SELECT_RETURNS = [300.0, 450.0, 490.0, 500.0, 400.0]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_params": 400.0}, 2),
        ({"max_params": 350.0}, 1),  # dominated (300, 400) is never chosen
        ({"max_params": 100.0}, 0),  # boundary is inclusive
        ({"max_params": 1e9}, 3),
        ({"min_return": 450.0}, 1),  # boundary is inclusive
        ({"min_return": 460.0}, 2),
        ({"min_return": 500.0}, 3),
        ({"min_return": -1e9}, 0),
        ({"max_params": 500.0, "min_return": 460.0}, 2),
        ({"max_params": 800.0, "min_return": 300.0}, 3),  # both: highest return
    ],
)
def test_select_point(kwargs: dict[str, Any], expected: int) -> None:
    assert select_point(SELECT_PARAMS, SELECT_RETURNS, **kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_params": 50.0},
            "no trial has params <= 50; closest: params=100, return=300.0",
        ),
        (
            {"min_return": 600.0},
            "no trial has return >= 600.0; closest: params=800, return=500.0",
        ),
        (
            # violations: (100, 300) 180/480 = .375; (200, 450) 50/150 + 30/480 = .396
            {"max_params": 150.0, "min_return": 480.0},
            (
                "no trial has params <= 150 and return >= 480.0; "
                "closest: params=100, return=300.0"
            ),
        ),
        (
            {"max_params": 99.5},
            "no trial has params <= 99.5; closest: params=100, return=300.0",
        ),
    ],
)
def test_select_point_no_point(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(NoPointError) as info:
        select_point(SELECT_PARAMS, SELECT_RETURNS, **kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("params", "returns", "kwargs", "match"),
    [
        (SELECT_PARAMS, SELECT_RETURNS, {}, "max_params"),
        ([], [], {"max_params": 1.0}, "no finite points"),
        ([NAN], [1.0], {"min_return": 0.0}, "no finite points"),
    ],
)
def test_select_point_rejects_bad_input(
    params: list[float], returns: list[float], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as info:
        select_point(params, returns, **kwargs)
    assert not isinstance(info.value, NoPointError)


@pytest.mark.parametrize(
    "call",
    [
        lambda p, r: front_indices(p, r),
        lambda p, r: hypervolume(p, r, ref_params=10.0, ref_return=0.0),
        lambda p, r: normalized_hypervolume(
            p, r, ref_params=10.0, ref_return=0.0, max_return=1.0
        ),
        lambda p, r: knee_index(p, r),
        lambda p, r: select_point(p, r, max_params=5.0),
    ],
)
def test_mismatched_lengths_rejected(
    call: Callable[[list[float], list[float]], object],
) -> None:
    with pytest.raises(ValueError, match=r"differ in length: 2 != 1"):
        call([1.0, 2.0], [1.0])
