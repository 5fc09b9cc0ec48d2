"""results.costs and the n-D study helpers: objective columns, the normalised box, the knee
rule, front_of / hypervolumes / size_refs with three objectives."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from nas_prune.results import pareto
from nas_prune.results.costs import (
    knee_position,
    normalized_costs,
    objective_columns,
    raw_costs,
)
from nas_prune.results.study import front_of, hypervolumes, size_refs

OBJ3 = ["return_mean", "params_nonzero", "latency_us"]
# (number, params_nonzero, return_mean, latency_us): 0-3 on the 3-D front (#3 only for its
# latency), 4 dominated by #1, 5 dominated by #2
ROWS = [(0, 20, 100.0, 9.0), (1, 50, 300.0, 10.0), (2, 400, 480.0, 12.0),
        (3, 800, 450.0, 6.0), (4, 60, 250.0, 11.0), (5, 500, 470.0, 13.0)]
INFO = {"ref_params": 1000.0, "return_floor": 0.0, "max_return": 500.0}


def _df(rows: list[tuple[int, int, float, float]] = ROWS) -> pd.DataFrame:
    return pd.DataFrame({"number": [r[0] for r in rows], "params_nonzero": [r[1] for r in rows],
                         "return_mean": [r[2] for r in rows], "latency_us": [r[3] for r in rows]})


def test_front_of_three_objectives_matches_brute_force() -> None:
    df = _df()
    front = front_of(df, objectives=OBJ3)
    assert list(front["number"]) == [0, 1, 2, 3]  # sorted by params
    costs = raw_costs(df, OBJ3)
    brute = [i for i, a in enumerate(costs)
             if not any(pareto.dominates_nd(b, a) for b in costs)]
    assert sorted(front.index) == brute
    # with the default two objectives #3 is dominated by #2 (more params, less return)
    assert list(front_of(df)["number"]) == [0, 1, 2]


def test_objective_columns_prefer_re_measured_figures() -> None:
    df = _df().assign(reeval_mean=np.nan, latency_remeasured_us=1.0)
    assert objective_columns(OBJ3, df) == {"return_mean": "return_mean",
                                          "params_nonzero": "params_nonzero",
                                          "latency_us": "latency_remeasured_us"}
    # the re-measured latency can push a point off the front
    slow = _df().assign(latency_remeasured_us=[9.0, 10.0, 12.0, 20.0, 11.0, 13.0])
    front = front_of(slow, objectives=OBJ3, columns=objective_columns(OBJ3, slow))
    assert list(front["number"]) == [0, 1, 2]


def test_two_objective_box_is_the_2d_normalised_hypervolume() -> None:
    df = _df()
    hv = hypervolumes(front_of(df), df.iloc[0:0], dict(INFO), "return_mean")
    expected = pareto.normalized_hypervolume(df["params_nonzero"].iloc[:3],
                                             df["return_mean"].iloc[:3], ref_params=1000,
                                             ref_return=0, max_return=500, log_params=True)
    assert hv["searched"] == pytest.approx(expected)


def test_three_objective_hypervolume_and_baseline_ratio() -> None:
    df = _df()
    base = _df([(10, 900, 200.0, 12.0), (11, 300, 100.0, 9.5)])
    info = {**INFO, **size_refs([df, base], OBJ3)}
    assert (info["low_latency_us"], info["ref_latency_us"]) == (6.0, 13.0)
    hv = hypervolumes(front_of(df, objectives=OBJ3), front_of(base, objectives=OBJ3), info,
                      "return_mean", objectives=OBJ3)
    # the same figure by hand: unit costs, reference (1, 1, 1)
    front = df.iloc[:4]
    unit = np.column_stack([
        (500 - front["return_mean"]) / 500, np.log10(front["params_nonzero"]) / 3.0,
        (np.log10(front["latency_us"]) - np.log10(6.0)) / (np.log10(13.0) - np.log10(6.0))])
    assert hv["searched"] == pytest.approx(pareto.hypervolume_nd(unit, [1, 1, 1]))
    assert 0 < hv["baseline"] < hv["searched"] < 1
    assert hv["ratio"] == pytest.approx(hv["searched"] / hv["baseline"])
    assert hv["ref_latency_us"] == 13.0


def test_normalized_costs_need_a_reference_for_each_size() -> None:
    with pytest.raises(ValueError, match="ref_latency_us"):
        normalized_costs(_df(), OBJ3, INFO)


@pytest.mark.parametrize("objectives", [OBJ3, ["return_mean", "params_nonzero"]])
def test_knee_is_a_front_point(objectives: list[str]) -> None:
    front = front_of(_df(), objectives=objectives)
    i = knee_position(front, objectives)
    assert 0 <= i < len(front)
    if len(objectives) == 2:  # the 2-D rule, unchanged
        assert i == pareto.knee_index(front["params_nonzero"], front["return_mean"])


def test_3d_knee_balances_the_objectives() -> None:
    # extremes in each objective and one point in the middle of all three
    rows = [(0, 1, 0.0, 100.0), (1, 1000, 500.0, 100.0), (2, 1000, 0.0, 1.0),
            (3, 30, 300.0, 10.0)]
    front = front_of(_df(rows), objectives=OBJ3)
    assert front.iloc[knee_position(front, OBJ3)]["number"] == 3


def test_pairs_on_the_front_do_not_dominate_each_other() -> None:
    df = _df()
    front = front_of(df, objectives=OBJ3)
    costs = raw_costs(front, OBJ3)
    for a, b in itertools.permutations(range(len(costs)), 2):
        assert not pareto.dominates_nd(costs[a], costs[b])


def test_latency_within_five_percent_is_a_tie() -> None:
    # the LunarLander case: one width, one size, 6.1 vs 6.2 us: the crash-lander leaves
    rows = [(4, 79, -62.0, 6.1), (17, 79, 254.1, 6.2), (23, 229, 267.7, 6.15)]
    front = front_of(_df(rows), objectives=OBJ3)
    assert list(front["number"]) == [17, 23]
    slower = [(4, 79, -62.0, 6.1), (17, 79, 254.1, 7.0)]  # 15% slower: a real trade-off
    assert list(front_of(_df(slower), objectives=OBJ3)["number"]) == [4, 17]


def test_3d_knee_in_the_hypervolume_box() -> None:
    # a crash-lander 0.1 us faster: nearest the ideal when each objective spans the front,
    # far from it in the box, where the latency axis spans the measured 6.0 ... 10.0 us
    rows = [(4, 79, -62.0, 6.0), (17, 79, 254.1, 7.0), (23, 229, 267.7, 7.0)]
    front = _df(rows)
    box = {**INFO, "max_return": 300.0, "ref_latency_us": 10.0, "low_latency_us": 6.0}
    assert front.iloc[knee_position(front, OBJ3)]["number"] == 4
    assert front.iloc[knee_position(front, OBJ3, box=box)]["number"] == 17
