"""A sweep's progress: a live bar (done/total, ETA, front size) on a terminal, one line per
finished trial otherwise (logs, pipes, CI)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import optuna
from optuna.trial import FrozenTrial

from nas_prune.config.objectives import RETURN_LIKE
from nas_prune.results.report.cells import fmt
from nas_prune.results.report.insights import budget_wins
from nas_prune.results.study import complete, front_of, trials_frame
from nas_prune.search import record
from nas_prune.search.storage import count_states, study_objectives

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Log", "ProgressBar", "ProgressLine", "ProgressState", "sweep_progress", "use_bar"]

Log = Callable[[str], None]
Callback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class ProgressState:
    """Where a sweep stands after a finished trial."""

    done: int  # COMPLETE + PRUNED trials (FAIL ones are retried, so they do not count)
    total: int
    eta_s: float
    front_size: int
    best: str  # best return under each parameter budget, e.g. "<=1%:- <=5%:200"
    trial: str  # what the finished trial gave


class _Tracker:
    """Computes ProgressState from the study; the ETA's rate counts only trials finished
    since this process started (a resumed sweep's earlier trials took no time here)."""

    def __init__(self, total: int, ref_params: int) -> None:
        self.total, self.ref = total, ref_params
        self.start = time.perf_counter()
        self.first_done: int | None = None

    def state(self, study: optuna.Study, trial: FrozenTrial) -> ProgressState:
        done = complete(trials_frame(study))
        counts = count_states(study)
        n = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        if self.first_done is None:
            self.first_done = n - 1
        rate = (time.perf_counter() - self.start) / max(1, n - self.first_done)
        wins = budget_wins(done, self.ref)
        objectives = study_objectives(study)
        best = " ".join(f"<={b:.0%}:{fmt(r, '.0f')}" for b, r in zip(wins["budget"],
                                                                      wins["return"]))
        return ProgressState(done=n, total=self.total, eta_s=max(0, self.total - n) * rate,
                             front_size=len(front_of(done, objectives=objectives)), best=best,
                             trial=_what(trial, objectives))


def _short(name: str, value: float) -> str:
    label = {"return_mean": "return", "params_nonzero": "params"}.get(name, name)
    return f"{label}={value:.1f}" if name in RETURN_LIKE or name == "latency_us" else (
        f"{label}={int(value)}")


def _what(trial: FrozenTrial, objectives: list[str]) -> str:
    if trial.values:
        return " ".join(_short(name, v) for name, v in zip(objectives, trial.values))
    if trial.state.name == "PRUNED":
        attrs = record.read(trial)
        ret = attrs.get("rung_return")
        return (f"stopped at {attrs.get('stopped_at', 'a rung')} "
                f"(params={attrs.get('params_nonzero')}"
                + (f", return={ret:.1f})" if ret is not None else ")"))
    return str(trial.user_attrs.get("fail_reason", ""))[:80]


class ProgressLine:
    """Optuna callback printing one line per finished trial: done/total, ETA, front size,
    best return under the report's parameter budgets."""

    def __init__(self, total: int, ref_params: int, log: Log) -> None:
        self.tracker, self.log = _Tracker(total, ref_params), log

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        s = self.tracker.state(study, trial)
        self.log(f"[{s.done}/{s.total}] trial {trial.number} {trial.state.name} {s.trial} | "
                 f"front {s.front_size} | best {s.best} | ETA {s.eta_s / 60:.1f} min")


class ProgressBar:
    """Optuna callback driving a live rich progress bar: done/total, ETA, front size and
    the best return under each budget. Failed trials are also printed above the bar.
    Use as a context manager (``sweep_progress`` does): the bar shows while it is open."""

    def __init__(self, total: int, ref_params: int, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.tracker = _Tracker(total, ref_params)
        self.progress = Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("ETA {task.fields[eta]}"), TextColumn("front {task.fields[front]}"),
            TextColumn("best {task.fields[best]}"), console=console, transient=False)
        self.task = self.progress.add_task("sweep", total=total, eta="-", front=0, best="-")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        s = self.tracker.state(study, trial)
        if trial.state.name == "FAIL":
            self.progress.console.print(f"trial {trial.number} FAIL {s.trial}", markup=False)
        self.progress.update(self.task, completed=s.done, front=s.front_size, best=s.best,
                             eta=f"{s.eta_s / 60:.1f} min")


def use_bar(console: Console) -> bool:
    """A live bar only where someone watches: the console is a terminal (rich's test:
    isatty, or FORCE_COLOR / TTY_COMPATIBLE set)."""
    return console.is_terminal


@contextmanager
def sweep_progress(total: int, ref_params: int, log: Log, *,
                   console: Console | None = None) -> Iterator[Callback]:
    """The sweep's progress callback: a live bar on a terminal, else one line per trial.

    Args:
        total: the trials the sweep runs to.
        ref_params: the reference network's parameters (the budgets are fractions of it).
        log: where the line log goes.
        console: the rich console of stdout (default: a new one on sys.stdout).
    """
    from rich.console import Console

    console = console if console is not None else Console()
    if not use_bar(console):
        yield ProgressLine(total, ref_params, log)
        return
    with ProgressBar(total, ref_params, console) as bar:
        yield bar
