"""Pareto maths for (params, return) trials: dominance, front, hypervolume, knee, selection
(robust statistics of returns live in ``results.stats``).

Objectives convention: every point is ``(params, ret)`` where the parameter count is
MINIMISED and the return is MAXIMISED. Pure numpy; no plotting, no Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "NoPointError",
    "dominates",
    "front_indices",
    "hypervolume",
    "knee_index",
    "normalized_hypervolume",
    "select_point",
]

FloatArray = npt.NDArray[np.float64]
# Inputs: lists, tuples, numpy arrays (pandas Series work through np.asarray too).
Floats = Sequence[float] | npt.NDArray[Any]
IndexArray = npt.NDArray[np.intp]



class NoPointError(ValueError):
    """No front point satisfies the constraints given to `select_point`."""


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Return True if ``a = (params, ret)`` Pareto-dominates ``b``.

    ``a`` dominates ``b`` when it has no more parameters, no less return, and is
    strictly better in at least one of the two. Comparisons with NaN are False, so a
    point with NaN never dominates.
    """
    no_worse = a[0] <= b[0] and a[1] >= b[1]
    return no_worse and (a[0] < b[0] or a[1] > b[1])


def front_indices(params: Floats, returns: Floats) -> list[int]:
    """Return the indices of the non-dominated points, sorted by params ascending.

    Identical points keep only their first occurrence; points with NaN or inf in
    either objective are never on the front. O(n log n): one sort and one sweep.

    Raises:
        ValueError: if ``params`` and ``returns`` differ in length or are not 1-D.
    """
    p, r = _as_arrays(params, returns)
    return [int(i) for i in _front(p, r)]


def hypervolume(
    params: Floats,
    returns: Floats,
    *,
    ref_params: float,
    ref_return: float,
    log_params: bool = False,
) -> float:
    """Return the 2-D hypervolume (area) dominated by the points.

    Reference point = (dense parameter count of the reference architecture, return
    floor), i.e. the worst corner of the box. Points with ``params > ref_params`` or
    ``return < ref_return`` contribute nothing; non-finite points are ignored.

    Args:
        params: parameter count per trial (minimised).
        returns: return per trial (maximised).
        ref_params: worst parameter count, e.g. the dense network's count.
        ref_return: worst return, e.g. 0 or the environment's minimum.
        log_params: measure the params axis as log10(params); params below 1 are
            clipped to 1, so the box's lower params bound is log10(1) = 0.

    Returns:
        Area in (params units x return units), or (decades x return units) with
        log_params; 0.0 for empty input.

    Raises:
        ValueError: for mismatched lengths, a non-finite reference, or
            ``ref_params < 1`` with ``log_params``.
    """
    p, r = _as_arrays(params, returns)
    ref_x = _ref_x(ref_params, ref_return, log_params)
    return _area(_x_axis(p, log_params), r, ref_x, float(ref_return))


def normalized_hypervolume(
    params: Floats,
    returns: Floats,
    *,
    ref_params: float,
    ref_return: float,
    max_return: float,
    log_params: bool = False,
) -> float:
    """Return the hypervolume divided by the box area, in [0, 1].

    The box spans params in [0, ref_params] (or [log10(1), log10(ref_params)] with
    ``log_params``) and returns in [ref_return, max_return], so its area is
    ``ref_params * (max_return - ref_return)``. Reference point = (dense parameter
    count of the reference architecture, return floor); ``max_return`` is the best
    achievable return (e.g. 500 for CartPole-v1) and returns above it are clipped to it.

    Raises:
        ValueError: as `hypervolume`, or if ``max_return <= ref_return`` or the box
            has zero width (``ref_params <= 0``, or ``<= 1`` with ``log_params``).
    """
    p, r = _as_arrays(params, returns)
    ref_x = _ref_x(ref_params, ref_return, log_params)
    if not np.isfinite(max_return) or max_return <= ref_return:
        raise ValueError(
            f"max_return must be finite and > ref_return, got {max_return}"
        )
    if ref_x <= 0.0:
        bound = "> 1 with log_params" if log_params else "> 0"
        raise ValueError(f"ref_params must be {bound}, got {ref_params}")
    area = _area(
        _x_axis(p, log_params), np.minimum(r, max_return), ref_x, float(ref_return)
    )
    return area / (ref_x * (max_return - ref_return))


def knee_index(params: Floats, returns: Floats) -> int:
    """Return the index (into the inputs) of the front's knee point.

    Front points are scaled to [0, 1] on both axes (params on a log10 scale); the knee
    is the point farthest from the straight line joining the two extremes of the front.
    A front of one or two points gives its highest-return point.

    Raises:
        ValueError: for mismatched lengths or if there are no finite points.
    """
    p, r = _as_arrays(params, returns)
    front = _front(p, r)
    if front.size == 0:
        raise ValueError("no finite points")
    if front.size <= 2:
        return int(front[-1])  # returns strictly increase along the front
    x = _unit(_x_axis(p[front], log_params=True))
    y = _unit(r[front])
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    distance = np.abs(dy * (x - x[0]) - dx * (y - y[0])) / np.hypot(dx, dy)
    return int(front[np.argmax(distance)])






def select_point(
    params: Floats,
    returns: Floats,
    *,
    max_params: float | None = None,
    min_return: float | None = None,
) -> int:
    """Return the index of the front point best meeting a params budget / return target.

    With ``max_params``: the highest-return front point with ``params <= max_params``.
    With only ``min_return``: the fewest-params front point with return >= min_return.
    With both: the highest-return front point meeting both constraints.

    Raises:
        ValueError: if neither constraint is given, lengths mismatch, or no point is
            finite.
        NoPointError: if no point qualifies; the message names the closest front point.
    """
    if max_params is None and min_return is None:
        raise ValueError("give max_params, min_return or both; got neither")
    p, r = _as_arrays(params, returns)
    front = _front(p, r)
    if front.size == 0:
        raise ValueError("no finite points")
    fp, fr = p[front], r[front]
    ok = np.ones(front.size, dtype=bool)
    if max_params is not None:
        ok &= fp <= max_params
    if min_return is not None:
        ok &= fr >= min_return
    if not ok.any():
        raise NoPointError(_no_point_message(fp, fr, max_params, min_return))
    chosen = np.flatnonzero(ok)
    # Along the front params and returns both increase:
    # last = highest return, first = fewest params.
    return int(front[chosen[-1] if max_params is not None else chosen[0]])


def _as_arrays(params: Floats, returns: Floats) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(params, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if p.ndim != 1 or r.ndim != 1:
        raise ValueError(
            f"params and returns must be 1-D, got shapes {p.shape} and {r.shape}"
        )
    if p.size != r.size:
        raise ValueError(f"params and returns differ in length: {p.size} != {r.size}")
    return p, r




def _front(p: FloatArray, r: FloatArray) -> IndexArray:
    """Front indices sorted by params ascending (so returns strictly increase)."""
    finite = np.flatnonzero(np.isfinite(p) & np.isfinite(r))
    # lexsort: last key is primary -> params asc, return desc, then original index.
    order = finite[np.lexsort((finite, -r[finite], p[finite]))]
    r_sorted = r[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(r_sorted)[:-1]))
    # Strict '>' drops duplicates and points matched by an earlier, no-larger point.
    return order[r_sorted > best_before]


def _ref_x(ref_params: float, ref_return: float, log_params: bool) -> float:
    if not (np.isfinite(ref_params) and np.isfinite(ref_return)):
        raise ValueError(
            f"ref_params and ref_return must be finite, got {ref_params}, {ref_return}"
        )
    if log_params:
        if ref_params < 1.0:
            raise ValueError(
                f"ref_params must be >= 1 with log_params, got {ref_params}"
            )
        return float(np.log10(ref_params))
    return float(ref_params)


def _x_axis(p: FloatArray, log_params: bool) -> FloatArray:
    return np.log10(np.clip(p, 1.0, None)) if log_params else p


def _area(x: FloatArray, y: FloatArray, ref_x: float, ref_y: float) -> float:
    front = _front(x, y)
    inside = front[(x[front] <= ref_x) & (y[front] >= ref_y)]
    # Staircase: each front point owns the strip up to the next front point (or ref_x).
    widths = np.diff(np.append(x[inside], ref_x))
    return float(np.sum(widths * (y[inside] - ref_y)))


def _unit(v: FloatArray) -> FloatArray:
    span = float(v.max() - v.min())
    return (v - v.min()) / span if span > 0.0 else np.zeros_like(v)








def _no_point_message(
    fp: FloatArray, fr: FloatArray, max_params: float | None, min_return: float | None
) -> str:
    wanted, violation = [], np.zeros(fp.size)
    if max_params is not None:
        wanted.append(f"params <= {_fmt(max_params)}")
        violation += np.maximum(fp - max_params, 0.0) / max(abs(max_params), 1.0)
    if min_return is not None:
        wanted.append(f"return >= {float(min_return)}")
        violation += np.maximum(min_return - fr, 0.0) / max(abs(min_return), 1.0)
    # Closest = smallest relative violation summed over the constraints given.
    best = int(np.argmin(violation))
    closest = f"params={_fmt(fp[best])}, return={float(fr[best])}"
    return f"no trial has {' and '.join(wanted)}; closest: {closest}"


def _fmt(params: float) -> str:
    value = float(params)
    return str(int(value)) if value.is_integer() else str(value)
