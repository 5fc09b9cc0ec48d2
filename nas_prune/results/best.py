"""Pick one front point and write its standalone, re-validated trial config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nas_prune.results.study import (
    pareto,
)


def write_best(summary_front: Any, ret_col: str, *, max_params: int | None,
               min_return: float | None, knee: bool, out: Path) -> dict[str, Any]:
    """Pick a front point and write its standalone trial config YAML."""
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
            flag = "--max-params" if max_params is not None else "--min-return"
            raise ValueError(f"{flag}: {exc}") from None
    row = summary_front.iloc[i]
    cfg = yaml.safe_load(yaml.safe_dump(_config_of(row)))
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# nas-prune best: trial {int(row['number'])}, params_nonzero "
              f"{int(row['params_nonzero'])}, return_mean {row['return_mean']:.2f}"
              f" (eval seed {row.get('eval_seed')}, {row.get('episodes')} episodes)\n"
              f"# re-run: nas-prune trial {out}\n")
    out.write_text(header + yaml.safe_dump(cfg, sort_keys=False))
    return {"trial": int(row["number"]), "params_nonzero": int(row["params_nonzero"]),
            "return_mean": float(row["return_mean"]), ret_col: float(row[ret_col]),
            "config": str(out)}


def _config_of(row: Any) -> dict[str, Any]:
    import json

    return json.loads(row["config"])  # type: ignore[no-any-return]
