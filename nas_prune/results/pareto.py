"""Pareto maths: dominance, front, hypervolume, knee, selection (robust statistics of
returns live in ``results.stats``).

Two forms. The 2-D functions take ``(params, ret)`` points: the parameter count is
MINIMISED and the return MAXIMISED. The n-D functions (``*_nd``) take a cost matrix, one
row per point and one column per objective, every column MINIMISED (a maximised objective
enters negated or mapped; ``results.study.costs`` builds it from a sweep's objectives).
Fronts and hypervolumes in n-D come from moocore (exact algorithms: WFG/HV3D+ for the
hypervolume), a maintained library; the 2-D hypervolume goes through it too. No plotting,
no Optuna.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "NoPointError",
    "dominates",
    "dominates_nd",
    "front_indices",
    "front_indices_nd",
    "hypervolume",
    "hypervolume_nd",
    "knee_index",
    "knee_index_nd",
    "normalized_hypervolume",
    "select_point",
    "select_row",
]

FloatArray = npt.NDArray[np.float64]
# Inputs: lists, tuples, numpy arrays (pandas Series work through np.asarray too).
Floats = Sequence[float] | npt.NDArray[Any]
IndexArray = npt.NDArray[np.intp]



class NoPointError(ValueError):
    """No front point satisfies the constraints given to `select_point`."""

_EPS = 1e-12  # a knee must clear its chord by more than rounding


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
    is the point farthest above the straight line joining the two extremes of the front
    (more return than the chord gives at its size). A point below the chord is a dip, the
    worst trade-off of its neighbourhood, never a knee: a front with no point above its
    chord, or of one or two points, gives its highest-return point.

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
    above = (dx * (y - y[0]) - dy * (x - x[0])) / np.hypot(dx, dy)  # signed: > 0 above
    return int(front[np.argmax(above)] if above.max() > _EPS else front[-1])






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
    limits = {} if max_params is None else {"params": (p[front], float(max_params))}
    return int(front[select_row(r[front], limits, min_return=min_return, fewest=p[front])])


def dominates_nd(a: Floats, b: Floats) -> bool:
    """True if cost vector ``a`` Pareto-dominates ``b``: no worse in every objective (all
    minimised) and strictly better in one. NaN compares False, so it never dominates."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(x <= y) and np.any(x < y))


def front_indices_nd(costs: npt.ArrayLike, tolerance: Floats | None = None) -> list[int]:
    """Indices of the non-dominated rows of a cost matrix (every column minimised), in
    input order. Identical rows keep their first occurrence; rows with NaN or inf are never
    on the front.

    Args:
        costs: points x objectives.
        tolerance: per column, differences up to this count as equal (a measurement's
            noise): ``a`` dominates ``b`` when ``a <= b + tol`` everywhere and
            ``a < b - tol`` somewhere; rows equal within it keep the first. None or zeros:
            exact dominance (moocore).

    Raises:
        ValueError: ``costs`` is not 2-D, or ``tolerance`` does not match its columns.
    """
    c = _as_costs(costs)
    finite = np.flatnonzero(np.isfinite(c).all(axis=1))
    if finite.size == 0:
        return []
    tol = np.zeros(c.shape[1]) if tolerance is None else np.asarray(tolerance, dtype=float)
    if tol.shape != (c.shape[1],):
        raise ValueError(f"tolerance must have {c.shape[1]} values, got {tol.tolist()}")
    if np.any(tol > 0):
        return [int(i) for i in finite[_front_within(c[finite], tol)]]
    import moocore

    keep = moocore.is_nondominated(c[finite], keep_weakly=False)
    return [int(i) for i in finite[keep]]


def _front_within(c: FloatArray, tol: FloatArray) -> npt.NDArray[np.bool_]:
    # pairwise [i, j]: does row i dominate (or, earlier, equal within tol) row j; O(n^2 m)
    a, b = c[:, None, :], c[None, :, :]
    no_worse = np.all(a <= b + tol, axis=2)
    better = np.any(a < b - tol, axis=2)
    same = np.all(np.abs(a - b) <= tol, axis=2) & np.triu(np.ones_like(no_worse), k=1)
    return ~np.any((no_worse & better) | same, axis=0)


def hypervolume_nd(costs: npt.ArrayLike, ref: Floats) -> float:
    """Hypervolume dominated by the rows of a cost matrix (every column minimised) up to the
    reference point ``ref`` (the worst corner). Rows not strictly inside the box and
    non-finite rows contribute nothing; 0.0 for no rows.

    Raises:
        ValueError: ``costs`` is not 2-D, or ``ref`` is not finite or does not match its
            columns.
    """
    c = _as_costs(costs)
    r = np.asarray(ref, dtype=np.float64)
    if r.shape != (c.shape[1],) or not np.isfinite(r).all():
        raise ValueError(f"ref must be {c.shape[1]} finite values, got {r.tolist()}")
    inside = c[np.isfinite(c).all(axis=1) & (c < r).all(axis=1)]
    if inside.shape[0] == 0:
        return 0.0
    import moocore

    return float(moocore.hypervolume(inside, ref=r))


def knee_index_nd(costs: npt.ArrayLike, *, scaled: bool = False) -> int:
    """The knee of the front of a cost matrix: the front point nearest the ideal point (all
    zeros). Ties: the first.

    Args:
        costs: points x objectives, on the scales they are compared on (e.g. log10 sizes).
        scaled: the columns are already on one unit scale (e.g. the hypervolume's box);
            otherwise each column is scaled to [0, 1] over the front first.

    Raises:
        ValueError: no finite rows.
    """
    c = _as_costs(costs)
    front = np.asarray(front_indices_nd(c), dtype=np.intp)
    if front.size == 0:
        raise ValueError("no finite points")
    unit = c[front] if scaled else np.column_stack(
        [_unit(c[front, j]) for j in range(c.shape[1])])
    return int(front[np.argmin(np.linalg.norm(unit, axis=1))])


def select_row(returns: Floats, limits: Mapping[str, tuple[Floats, float]], *,
               min_return: float | None = None, fewest: Floats | None = None) -> int:
    """Choose one of the given (front) points under upper limits and a return target.

    Args:
        returns: the return of each point (maximised).
        limits: name -> (values, bound): keep points with ``values <= bound``.
        min_return: keep points with ``returns >= min_return``.
        fewest: with no limit given, the kept point with the fewest of these (e.g. the
            nonzero parameters) is chosen; ties go to the higher return.

    Returns:
        With any limit: the kept point with the highest return (ties: fewest ``fewest``,
        then the first). With only ``min_return``: the one with the fewest ``fewest``.

    Raises:
        ValueError: neither a limit nor ``min_return``, or no points.
        NoPointError: no point qualifies; the message names the closest point.
    """
    r = np.asarray(returns, dtype=np.float64)
    if not limits and min_return is None:
        raise ValueError("give an upper limit, min_return or both; got neither")
    if r.size == 0:
        raise ValueError("no finite points")
    size = np.zeros(r.size) if fewest is None else np.asarray(fewest, dtype=np.float64)
    cols = {name: np.asarray(v, dtype=np.float64) for name, (v, _) in limits.items()}
    ok = np.ones(r.size, dtype=bool)
    for name, (_, bound) in limits.items():
        ok &= cols[name] <= bound
    if min_return is not None:
        ok &= r >= min_return
    if not ok.any():
        bounds = {name: bound for name, (_, bound) in limits.items()}
        shown = cols if fewest is None else {"params": size, **cols}
        raise NoPointError(_no_point_nd(r, shown, bounds, min_return))
    kept = np.flatnonzero(ok)
    if limits:  # lexsort: last key primary -> return desc, then size asc, then order
        return int(kept[np.lexsort((kept, size[kept], -r[kept]))[0]])
    return int(kept[np.lexsort((kept, -r[kept], size[kept]))[0]])


def _as_costs(costs: npt.ArrayLike) -> FloatArray:
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"costs must be 2-D (points x objectives), got shape {c.shape}")
    return c


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
    # the return is maximised: negate it into a cost
    return hypervolume_nd(np.column_stack([x, -y]), [ref_x, -ref_y])


def _unit(v: FloatArray) -> FloatArray:
    span = float(v.max() - v.min())
    return (v - v.min()) / span if span > 0.0 else np.zeros_like(v)








def _no_point_nd(r: FloatArray, cols: dict[str, FloatArray], bounds: dict[str, float],
                 min_return: float | None) -> str:
    wanted, violation = [], np.zeros(r.size)
    for name, bound in bounds.items():
        wanted.append(f"{name} <= {_fmt(bound)}")
        violation += np.maximum(cols[name] - bound, 0.0) / max(abs(bound), 1.0)
    if min_return is not None:
        wanted.append(f"return >= {float(min_return)}")
        violation += np.maximum(min_return - r, 0.0) / max(abs(min_return), 1.0)
    # Closest = smallest relative violation summed over the constraints given.
    best = int(np.argmin(violation))
    shown = [f"{name}={_fmt(v[best])}" for name, v in cols.items()]
    closest = ", ".join([*shown, f"return={float(r[best])}"])
    return f"no trial has {' and '.join(wanted)}; closest: {closest}"


def _fmt(params: float) -> str:
    value = float(params)
    return str(int(value)) if value.is_integer() else str(value)
