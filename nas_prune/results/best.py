"""Pick one front point and write its standalone, re-validated trial config."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from nas_prune.config.base import dump_yaml, format_error
from nas_prune.config.objectives import DEFAULT_OBJECTIVES
from nas_prune.config.trial import TrialConfig
from nas_prune.results import pareto
from nas_prune.results.costs import column_of, knee_position, objective_columns

__all__ = ["write_best"]


def write_best(summary_front: Any, ret_col: str, *, max_params: int | None,
               min_return: float | None, knee: bool, out: Path,
               max_latency_us: float | None = None, max_bytes: int | None = None,
               objectives: Sequence[str] = DEFAULT_OBJECTIVES,
               box: dict[str, float] | None = None) -> dict[str, Any]:
    """Pick a front point and write its standalone trial config YAML, validated by the
    model that ``nas-prune trial`` reads it with.

    The rule: ``knee`` or no constraint: the front's knee (``costs.knee_position``, in the
    hypervolume's normalised ``box`` when given: the report's knee). With
    an upper limit (params, latency, bytes): the highest-return point within every limit
    and ``min_return`` (ties: fewer params). With only ``min_return``: the fewest-params
    point reaching it. Latency is the report's re-measured figure where there is one.

    Returns:
        The chosen trial's number, size, returns (and latency/bytes when recorded) and the
        config's path.

    Raises:
        ValueError: no completed trial, or no point meets the constraints (naming the flag
            that excludes every point, and the closest point).
    """
    front = summary_front
    if front.empty:
        raise ValueError("best: the study has no completed trial")
    columns = {**objective_columns(objectives, front), "return_mean": ret_col}
    params = _floats(front, "params_nonzero")
    wanted = {flag: (name, bound) for flag, name, bound in (
        ("--max-params", "params", max_params),
        ("--max-latency-us", "latency_us", max_latency_us),
        ("--max-bytes", "bytes", max_bytes)) if bound is not None}
    if knee or (not wanted and min_return is None):
        i = knee_position(front, objectives, columns, box)
    else:
        limits = {name: (_floats(front, _source(name, front)), float(bound))
                  for name, bound in wanted.values()}
        rets = _floats(front, ret_col)
        try:
            i = pareto.select_row(rets, limits, min_return=min_return, fewest=params)
        except pareto.NoPointError as exc:
            raise ValueError(f"{_culprit(limits, wanted, rets, min_return)}: {exc}") from None
    return _write(front.iloc[i], ret_col, out)


def _source(name: str, front: Any) -> str:
    return {"params": "params_nonzero", "latency_us": column_of("latency_us", front),
            "bytes": "bytes"}[name]


def _floats(front: Any, column: str) -> np.ndarray:
    if column not in front.columns:
        raise ValueError(f"best: the study's trials recorded no {column} (add it to the "
                         f"sweep's objectives, or set eval.latency: true)")
    return np.asarray(front[column].astype(float).tolist(), dtype=np.float64)


def _culprit(limits: dict[str, tuple[np.ndarray, float]], wanted: dict[str, tuple[str, Any]],
             rets: np.ndarray, min_return: float | None) -> str:
    """The flag that alone excludes every point (else the last one given)."""
    for flag, (name, _) in wanted.items():
        values, bound = limits[name]
        if not (values <= bound).any():
            return flag
    if min_return is not None:
        return "--min-return"
    return list(wanted)[-1]


def _write(row: Any, ret_col: str, out: Path) -> dict[str, Any]:
    try:
        cfg = TrialConfig.model_validate_json(row["config"])
    except ValidationError as exc:
        raise ValueError(f"best: trial {int(row['number'])}'s recorded config no longer "
                         f"validates ({format_error(exc)})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# nas-prune best: trial {int(row['number'])}, params_nonzero "
              f"{int(row['params_nonzero'])}, return_mean {row['return_mean']:.2f}"
              f" (eval seed {row.get('eval_seed')}, {row.get('episodes')} episodes)\n"
              f"# re-run: nas-prune trial {out}\n")
    out.write_text(header + dump_yaml(cfg))
    info = {"trial": int(row["number"]), "params_nonzero": int(row["params_nonzero"]),
            "return_mean": float(row["return_mean"]), ret_col: float(row[ret_col]),
            "config": str(out)}
    for key in ("latency_us", "latency_remeasured_us", "bytes"):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            info[key] = float(value)
    return info
