"""Table-driven tests for nas_prune.results.stats (IQM, bootstrap intervals), by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from nas_prune.results.stats import bootstrap_ci, iqm

NAN = math.nan


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # cut 2 each side -> mean(3, 4, 5, 6)
        ([8, 3, 1, 6, 2, 7, 5, 4], 4.5),  # order does not matter
        ([1, 2, 3, 4], 2.5),  # cut 1 -> mean(2, 3)
        ([1, 2, 3, 4, 100], 3.0),  # cut int(1.25) = 1 -> mean(2, 3, 4)
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5.5),  # cut 2 -> mean(3..8)
        ([5], 5.0),
        ([1, 1000], 500.5),  # cut 0
    ],
)
def test_iqm(values: list[float], expected: float) -> None:
    assert iqm(values) == pytest.approx(expected)


@pytest.mark.parametrize("values", [[], [1.0, NAN], [[1.0, 2.0]]])
def test_iqm_rejects_bad_values(values: list[float]) -> None:
    with pytest.raises(ValueError, match="values"):
        iqm(values)


@pytest.mark.parametrize("stat", ["mean", "iqm"])
def test_bootstrap_ci_contains_estimate_and_is_deterministic(stat: str) -> None:
    values = np.random.default_rng(3).normal(100.0, 10.0, size=50)
    low, high = bootstrap_ci(values, stat=stat, seed=7)
    point = float(np.mean(values)) if stat == "mean" else iqm(values)
    assert low < point < high
    assert bootstrap_ci(values, stat=stat, seed=7) == (low, high)
    assert bootstrap_ci(values, stat=stat, seed=8) != (low, high)


@pytest.mark.parametrize("stat", ["mean", "iqm"])
def test_bootstrap_ci_narrows_with_more_data(stat: str) -> None:
    rng = np.random.default_rng(4)
    small = bootstrap_ci(rng.normal(0.0, 1.0, size=10), stat=stat)
    large = bootstrap_ci(rng.normal(0.0, 1.0, size=1000), stat=stat)
    assert large[1] - large[0] < (small[1] - small[0]) / 3.0  # width ~ 1/sqrt(n)


def test_bootstrap_ci_wider_with_higher_confidence() -> None:
    values = np.random.default_rng(5).normal(0.0, 1.0, size=40)
    narrow = bootstrap_ci(values, confidence=0.5)
    wide = bootstrap_ci(values, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_bootstrap_ci_of_constant_values() -> None:
    assert bootstrap_ci([2.0, 2.0, 2.0], stat="iqm", resamples=10) == (2.0, 2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stat": "median"}, r"stat must be one of \['iqm', 'mean'\]"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"resamples": 0}, "resamples"),
    ],
)
def test_bootstrap_ci_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_ci([1.0, 2.0, 3.0], **kwargs)
