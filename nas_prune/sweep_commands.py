"""Helpers of the sweep verbs (sweep_run.py): the study's sweep info, the per-trial progress
line, writing the chosen front point's config, and pre-flight checks."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml
from optuna.trial import FrozenTrial

from nas_prune import pareto
from nas_prune.agents import agents
from nas_prune.backends.storage import count_states
from nas_prune.commands import check_writable
from nas_prune.envs import act_dim, make_env, obs_dim
from nas_prune.results import SWEEP_ATTR, complete, front_of, trial_attrs, trials_frame
from nas_prune.sweep import Sweep

Log = Callable[[str], None]
BUDGETS = (0.01, 0.05, 0.10)  # fractions of the reference parameters shown in progress


def record_info(study: optuna.Study, sweep: Sweep, *, overwrite: bool = True) -> None:
    """Store what reports need in the study itself (so a report needs only the storage);
    a joining worker (``overwrite`` False) only fills it in when missing."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    ref = sweep.reference_params(obs_dim(env.observation_space), act_dim(env.action_space))
    env.close()
    info = {"name": c.name, "env": c.env.id, "agent": c.agent.name, "ref_params": ref,
            "return_floor": c.return_floor, "max_return": c.max_return,
            "reeval_seeds": c.reeval.seeds, "reeval_episodes": c.reeval.episodes,
            "out": str(sweep.out.resolve())}
    current = study.user_attrs.get(SWEEP_ATTR)
    if current != info and (overwrite or current is None):
        study.set_user_attr(SWEEP_ATTR, info)


class ProgressLine:
    """Optuna callback printing one line per finished trial: done/total, ETA, front size,
    best return under a few parameter budgets."""

    def __init__(self, total: int, ref_params: int, log: Log) -> None:
        self.total, self.ref, self.log = total, ref_params, log
        self.start = time.perf_counter()
        self.first_done: int | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        df = trials_frame(study)
        done = complete(df)
        counts = count_states(study)
        n = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        if self.first_done is None:
            self.first_done = n - 1
        rate = (time.perf_counter() - self.start) / max(1, n - self.first_done)
        eta = max(0, self.total - n) * rate
        front = front_of(done)
        best = []
        for frac in BUDGETS:
            ok = done[done["params_nonzero"] <= frac * self.ref] if not done.empty else done
            best.append(f"<={frac:.0%}:{ok['return_mean'].max():.0f}" if len(ok) else
                        f"<={frac:.0%}:-")
        if trial.values:
            what = f"return={trial.values[0]:.1f} params={int(trial.values[1])}"
        elif trial.state.name == "PRUNED":
            attrs = trial_attrs(trial)
            ret = attrs.get("rung_return")
            what = (f"stopped at {attrs.get('stopped_at', 'a rung')} "
                    f"(params={attrs.get('params_nonzero')}"
                    + (f", return={ret:.1f})" if ret is not None else ")"))
        else:
            what = str(trial.user_attrs.get("fail_reason", ""))[:80]
        self.log(f"[{n}/{self.total}] trial {trial.number} {trial.state.name} {what} | "
                 f"front {len(front)} | best {' '.join(best)} | ETA {eta / 60:.1f} min")


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


def prepare(sweep: Sweep) -> None:
    """Fail early, before storage is touched: an env the agent cannot act in, or an
    unwritable output folder."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    try:
        agents.get(c.agent.name).check_env(env)
    finally:
        env.close()
    check_writable(sweep.out, "out")
