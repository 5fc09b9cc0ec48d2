"""Pick one front point and write its standalone, re-validated trial config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nas_prune.config.base import dump_yaml, format_error
from nas_prune.config.trial import TrialConfig
from nas_prune.results import pareto

__all__ = ["write_best"]


def write_best(summary_front: Any, ret_col: str, *, max_params: int | None,
               min_return: float | None, knee: bool, out: Path) -> dict[str, Any]:
    """Pick a front point and write its standalone trial config YAML, validated by the
    model that ``nas-prune trial`` reads it with.

    Returns:
        The chosen trial's number, size, returns and the config's path.

    Raises:
        ValueError: no completed trial, or no point meets the constraint (naming the flag
            that excludes every point, and the closest point).
    """
    params = summary_front["params_nonzero"].astype(float).tolist()
    rets = summary_front[ret_col].astype(float).tolist()
    if not params:
        raise ValueError("best: the study has no completed trial")
    if knee or (max_params is None and min_return is None):
        i = pareto.knee_index(params, rets)
    else:
        try:
            i = pareto.select_point(params, rets, max_params=max_params, min_return=min_return)
        except pareto.NoPointError as exc:
            small = max_params is not None and min(params) > max_params
            flag = "--max-params" if small or min_return is None else "--min-return"
            raise ValueError(f"{flag}: {exc}") from None
    row = summary_front.iloc[i]
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
    return {"trial": int(row["number"]), "params_nonzero": int(row["params_nonzero"]),
            "return_mean": float(row["return_mean"]), ret_col: float(row[ret_col]),
            "config": str(out)}

