"""n-D Pareto maths (results.pareto *_nd, select_row) against brute force and known values,
and the 2-D functions agreeing with the n-D ones."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas_prune.results.pareto import (
    NoPointError,
    dominates_nd,
    front_indices,
    front_indices_nd,
    hypervolume_nd,
    knee_index_nd,
    normalized_hypervolume,
    select_row,
)


def _brute_front(costs: np.ndarray) -> list[int]:
    """Every finite row no other row dominates; of identical rows, the first."""
    keep = []
    for i, a in enumerate(costs):
        if not np.isfinite(a).all():
            continue
        beaten = any(np.all(b <= a) and np.any(b < a) for j, b in enumerate(costs) if j != i)
        twin_before = any(np.array_equal(costs[j], a) for j in range(i))
        if not beaten and not twin_before:
            keep.append(i)
    return keep


# (cost rows, all minimised; expected front indices)
FRONTS_3D = [
    ([[1, 1, 1]], [0]),
    ([[1, 2, 3], [3, 2, 1], [2, 2, 2]], [0, 1, 2]),  # mutually non-dominated
    ([[1, 1, 1], [2, 2, 2], [1, 2, 1]], [0]),  # one dominates all
    ([[1, 2, 3], [1, 2, 3], [0, 5, 5]], [0, 2]),  # a twin keeps its first
    ([[1, 2, 3], [1, 2, 2]], [1]),  # better in one, equal in the rest
    ([[np.nan, 0, 0], [5, 5, 5]], [1]),  # non-finite is never on the front
    ([[np.inf, 0, 0], [1, 1, 1], [0, 1, 2]], [1, 2]),
    ([[0, 0, 9], [0, 9, 0], [9, 0, 0], [5, 5, 5], [6, 6, 6]], [0, 1, 2, 3]),
]


@pytest.mark.parametrize(("rows", "expected"), FRONTS_3D)
def test_front_3d_table(rows: list[list[float]], expected: list[int]) -> None:
    costs = np.asarray(rows, dtype=float)
    assert front_indices_nd(costs) == expected == _brute_front(costs)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [3, 4])
def test_front_matches_brute_force_on_random_points(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    # integers make ties and twins common
    costs = rng.integers(0, 6, size=(40, m)).astype(float)
    assert front_indices_nd(costs) == _brute_front(costs)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([1, 1, 1], [1, 1, 2], True), ([1, 1, 1], [1, 1, 1], False),
    ([0, 2, 1], [1, 1, 1], False), ([np.nan, 0, 0], [1, 1, 1], False),
])
def test_dominates_nd(a: list[float], b: list[float], expected: bool) -> None:
    assert dominates_nd(a, b) is expected


# (cost rows, reference point, exact hypervolume)
HV_KNOWN = [
    ([[0, 0, 0]], [1, 1, 1], 1.0),
    ([[0.5, 0.5, 0.5]], [1, 1, 1], 0.125),
    ([[0, 0, 0.5], [0.5, 0.5, 0]], [1, 1, 1], 0.5 + 0.25 - 0.125),  # inclusion-exclusion
    ([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]], [1, 1, 1], 3 * 0.5 - 3 * 0.25 + 0.125),
    ([[2, 0, 0], [0.5, 0.5, 0.5]], [1, 1, 1], 0.125),  # outside the box: nothing
    ([[1, 0, 0]], [1, 1, 1], 0.0),  # on the box edge: nothing
    ([[0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]], [1, 1, 1, 1], 1.0),  # 4-D, the second inside
    ([], [1, 1, 1], 0.0),
]


@pytest.mark.parametrize(("rows", "ref", "expected"), HV_KNOWN)
def test_hypervolume_nd_known_values(rows: list[list[float]], ref: list[float],
                                     expected: float) -> None:
    costs = np.asarray(rows, dtype=float).reshape(-1, len(ref))
    assert hypervolume_nd(costs, ref) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_hypervolume_nd_matches_monte_carlo(seed: int) -> None:
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0, 1, size=(12, 3))
    samples = rng.uniform(0, 1, size=(200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for c in costs:
        dominated |= np.all(samples >= c, axis=1)
    # 200k samples: standard error <= 0.5 / sqrt(2e5) ~ 0.0011
    assert hypervolume_nd(costs, [1, 1, 1]) == pytest.approx(dominated.mean(), abs=0.005)


def test_hypervolume_nd_rejects_a_bad_reference() -> None:
    with pytest.raises(ValueError, match="ref must be 3 finite values"):
        hypervolume_nd([[0, 0, 0]], [1, 1])
    with pytest.raises(ValueError, match="ref must be"):
        hypervolume_nd([[0, 0, 0]], [1, np.inf, 1])


@pytest.mark.parametrize("seed", range(4))
def test_2d_front_and_hypervolume_agree_with_the_nd_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = rng.integers(1, 1000, size=30).astype(float)
    returns = rng.uniform(0, 500, size=30)
    costs = np.column_stack([params, -returns])
    assert sorted(front_indices(params, returns)) == front_indices_nd(costs)
    norm = normalized_hypervolume(params, returns, ref_params=1000, ref_return=0,
                                  max_return=500, log_params=True)
    unit = np.column_stack([np.log10(params) / 3.0, (500 - returns) / 500])
    assert hypervolume_nd(unit, [1, 1]) == pytest.approx(norm)


def test_knee_nd_is_the_point_nearest_the_ideal() -> None:
    # after scaling each column to [0, 1] over the front: (0, 1, 1), (1, 0, 1), (1, 1, 0)
    # are 1.41 from the ideal, the balanced point (0.5, 0.5, 0.5) 0.87
    costs = [[0, 10, 10], [10, 0, 10], [10, 10, 0], [5, 5, 5], [6, 6, 6]]
    assert knee_index_nd(costs) == 3
    with pytest.raises(ValueError, match="no finite points"):
        knee_index_nd([[np.nan, 0, 0]])


# returns, latency per point (all on a front), then the limits and the expected choice
RETURNS = [100.0, 300.0, 450.0, 480.0]
LATENCY = [5.0, 8.0, 12.0, 30.0]
SIZES = [10.0, 50.0, 40.0, 900.0]


@pytest.mark.parametrize(("max_latency", "min_return", "expected"), [
    (10.0, None, 1),  # highest return within the limit
    (100.0, None, 3),
    (None, 400.0, 2),  # only a target: the fewest params reaching it (40 < 900)
    (12.0, 200.0, 2),
])
def test_select_row(max_latency: float | None, min_return: float | None,
                    expected: int) -> None:
    limits = {} if max_latency is None else {"latency_us": (LATENCY, max_latency)}
    assert select_row(RETURNS, limits, min_return=min_return, fewest=SIZES) == expected


def test_select_row_names_the_closest_point() -> None:
    with pytest.raises(NoPointError, match=r"no trial has latency_us <= 4; closest: "
                                           r"params=10, latency_us=5, return=100.0"):
        select_row(RETURNS, {"latency_us": (LATENCY, 4.0)}, fewest=SIZES)


def test_every_pair_of_a_3d_front_is_mutually_non_dominated() -> None:
    rng = np.random.default_rng(7)
    costs = rng.uniform(0, 1, size=(60, 3))
    front = front_indices_nd(costs)
    assert len(front) >= 2
    for i, j in itertools.permutations(front, 2):
        assert not dominates_nd(costs[i], costs[j])


def _brute_front_within(costs: np.ndarray, tol: np.ndarray) -> list[int]:
    keep = []
    for i, a in enumerate(costs):
        beaten = any(np.all(b <= a + tol) and np.any(b < a - tol)
                     for j, b in enumerate(costs) if j != i)
        twin_before = any(np.all(np.abs(costs[j] - a) <= tol) for j in range(i))
        if not beaten and not twin_before:
            keep.append(i)
    return keep


@pytest.mark.parametrize(("rows", "tol", "expected"), [
    # a better return, a latency 0.1 worse within a tolerance of 0.2: a tie there, so it wins
    ([[-60, 79, 6.1], [-250, 79, 6.2]], [0, 0, 0.2], [1]),
    ([[-60, 79, 6.1], [-250, 79, 6.2]], [0, 0, 0.0], [0, 1]),  # exact: a trade-off
    ([[-60, 79, 6.1], [-250, 79, 6.5]], [0, 0, 0.2], [0, 1]),  # 0.4 apart: a trade-off
    ([[1, 1, 1.0], [1, 1, 1.1]], [0, 0, 0.2], [0]),  # equal within tolerance: the first
])
def test_front_with_a_tolerance(rows: list[list[float]], tol: list[float],
                                expected: list[int]) -> None:
    assert front_indices_nd(rows, tol) == expected


@pytest.mark.parametrize("seed", range(4))
def test_front_with_a_tolerance_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0, 1, size=(40, 3))
    tol = np.array([0.0, 0.0, 0.05])
    assert front_indices_nd(costs, tol) == _brute_front_within(costs, tol)


def test_knee_nd_on_a_given_scale() -> None:
    # on one unit scale the nearly flat third column no longer decides
    costs = [[0.9, 0.0, 0.0], [0.1, 0.0, 0.02], [0.0, 0.6, 0.01]]
    assert knee_index_nd(costs, scaled=True) == 1
    assert knee_index_nd(costs) == 0  # each column scaled over the front: 0.02 counts fully
