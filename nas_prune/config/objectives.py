"""The objectives a sweep may trade off, in one table: each metric's fixed direction and
whether its axis is a size (log10 scale in hypervolumes and knees). A sweep names its
objectives (``objectives:`` in the sweep file); everything else reads them from here."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["DEFAULT_OBJECTIVES", "DIRECTIONS", "RELATIVE_TOLERANCE", "RETURN", "RETURN_LIKE",
           "check_objectives", "direction", "pairs"]

Direction = Literal["maximize", "minimize"]

RETURN = "return_mean"  # always an objective, always the first (see check_objectives)
# metric -> direction; every minimised metric is a size-like count, measured on log10
# from 1 unit up to its reference (results.study.hypervolumes)
DIRECTIONS: dict[str, Direction] = {
    "return_mean": "maximize",
    "params_nonzero": "minimize",
    "macs_nonzero": "minimize",
    "bytes": "minimize",
    "latency_us": "minimize",
    "return_noise": "maximize",
}
RETURN_LIKE = ("return_mean", "return_noise")  # maximised, linear axis in [floor, top]
# relative differences that count as equal when fronts are chosen: a measurement's noise.
# Latency: run to run within 1.5% and an IQR of ~2% of the median (README, measured), so
# two policies 0.1 us apart at 6 us are a tie, not a trade-off
RELATIVE_TOLERANCE: dict[str, float] = {"latency_us": 0.05}
DEFAULT_OBJECTIVES: tuple[str, ...] = ("return_mean", "params_nonzero")


def direction(name: str) -> Direction:
    """The fixed direction of objective ``name``.

    Raises:
        ValueError: an unknown name; the message lists the allowed ones.
    """
    if name not in DIRECTIONS:
        raise ValueError(f"objectives: unknown objective {name!r}; allowed: "
                         f"{', '.join(DIRECTIONS)}")
    return DIRECTIONS[name]


def check_objectives(names: Sequence[str]) -> list[str]:
    """Validate a sweep's objective list.

    ``return_mean`` comes first and stays: the size check, the progress line, the
    re-evaluation and ``best`` all read the return as objective 0.

    Raises:
        ValueError: unknown or repeated names, no ``return_mean`` first, or fewer than two.
    """
    names = list(names)
    for name in names:
        direction(name)
    if len(set(names)) != len(names):
        raise ValueError(f"objectives: {names} names an objective twice")
    if len(names) < 2 or names[0] != RETURN:
        raise ValueError(f"objectives: need {RETURN!r} first and at least one more of "
                         f"{', '.join(n for n in DIRECTIONS if n != RETURN)}; got {names}")
    return names


def pairs(names: Sequence[str]) -> list[tuple[str, Direction]]:
    """(name, direction) per objective, in order."""
    return [(n, direction(n)) for n in names]
