"""The per-trial progress line a sweep prints."""
from __future__ import annotations

import time
from typing import Callable

import optuna
from optuna.trial import FrozenTrial

from nas_prune.results.study import complete, front_of, trials_frame
from nas_prune.search import record
from nas_prune.search.storage import count_states, study_objectives

__all__ = ["BUDGETS", "Log", "ProgressLine"]

BUDGETS = (0.01, 0.05, 0.10)  # fractions of the reference parameters shown in progress


Log = Callable[[str], None]


def _short(name: str, value: float) -> str:
    label = {"return_mean": "return", "params_nonzero": "params"}.get(name, name)
    return f"{label}={value:.1f}" if name.startswith("return") or name == "latency_us" else (
        f"{label}={int(value)}")


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
        objectives = study_objectives(study)
        front = front_of(done, objectives=objectives)
        best = []
        for frac in BUDGETS:
            ok = done[done["params_nonzero"] <= frac * self.ref] if not done.empty else done
            best.append(f"<={frac:.0%}:{ok['return_mean'].max():.0f}" if len(ok) else
                        f"<={frac:.0%}:-")
        if trial.values:
            what = " ".join(_short(name, v) for name, v in zip(objectives, trial.values))
        elif trial.state.name == "PRUNED":
            attrs = record.read(trial)
            ret = attrs.get("rung_return")
            what = (f"stopped at {attrs.get('stopped_at', 'a rung')} "
                    f"(params={attrs.get('params_nonzero')}"
                    + (f", return={ret:.1f})" if ret is not None else ")"))
        else:
            what = str(trial.user_attrs.get("fail_reason", ""))[:80]
        self.log(f"[{n}/{self.total}] trial {trial.number} {trial.state.name} {what} | "
                 f"front {len(front)} | best {' '.join(best)} | ETA {eta / 60:.1f} min")
