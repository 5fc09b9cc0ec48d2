"""Optuna backend: ask the space for a TrialConfig, run it, tell the objectives."""
from __future__ import annotations

import multiprocessing as mp
import traceback
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from nas_prune.backends.storage import create_study, n_finished
from nas_prune.space import suggest
from nas_prune.sweep import Sweep

Callback = Callable[[optuna.Study, FrozenTrial], None]
RETRY_OF = "retry_of"


def make_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), TPE or random; multi-objective capable, seeded."""
    if name == "nsga2":
        # a population of about a third of the budget gives NSGA-II a few generations
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(50, trials // 3)),
                                             seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)


def open_sweep_study(sweep: Sweep, trials: int) -> optuna.Study:
    """Create or resume the sweep's study."""
    c = sweep.config
    return create_study(sweep.storage, sweep.study, make_sampler(c.sampler, c.sampler_seed, trials))


def trial_dir(sweep: Sweep, number: int) -> Path:
    """Where trial ``number`` writes its policy, config and metrics."""
    return sweep.out / "trials" / f"{number:05d}"


def objective(sweep: Sweep) -> Callable[[optuna.Trial], tuple[float, float]]:
    """The Optuna objective: (return_mean up, params_nonzero down); metrics as user attrs."""
    from nas_prune.trial import run_trial

    def run(trial: optuna.Trial) -> tuple[float, float]:
        base = sweep.base()
        seeds = sweep.config.seeds
        if len(seeds) > 1:
            base["seed"] = trial.suggest_categorical("seed", seeds)
        try:
            cfg = suggest(trial, sweep.space, base)
            trial.set_user_attr("config", cfg.model_dump(mode="json"))
            out = trial_dir(sweep, trial.number)
            trial.set_user_attr("out_dir", str(out.resolve()))
            result = run_trial(cfg, cache_dir=sweep.out / "dense", out=out)
        except BaseException as exc:
            trial.set_user_attr("fail_reason", _reason(exc))
            raise
        for key, value in result.metrics.items():
            trial.set_user_attr(key, value)
        return result.metrics["return_mean"], float(result.metrics["params_nonzero"])

    return run


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def recover_stale(study: optuna.Study) -> list[int]:
    """Mark trials left RUNNING by a killed sweep as FAIL and queue each for one retry with
    the same parameters. Only the sweep's owner calls this (never a joining worker)."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    storage = study._storage  # noqa: SLF001 (Optuna has no public API to fail a trial)
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, "fail_reason", "stale: worker died")  # noqa: SLF001
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)  # noqa: SLF001
        if RETRY_OF not in t.user_attrs:
            study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number})
    return [t.number for t in stale]


def optimize(sweep: Sweep, trials: int, callbacks: list[Callback]) -> None:
    """Run trials in this process until the study holds ``trials`` finished ones."""
    study = open_sweep_study(sweep, trials)
    remaining = trials - n_finished(study)
    if remaining <= 0:
        return
    stop = MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    # the cap stops a sweep whose every trial fails (a broken env) from running forever
    study.optimize(objective(sweep), n_trials=2 * remaining + 2, catch=(Exception,),
                   callbacks=[stop, *callbacks], gc_after_trial=False)


def run_workers(sweep: Sweep, trials: int, workers: int,
                callbacks: list[Callback] | None = None) -> None:
    """Run the sweep with ``workers`` local processes sharing the study's storage."""
    if workers == 1:
        optimize(sweep, trials, callbacks or [])
        return
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(sweep, trials), daemon=False)
             for _ in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
            p.join()
        raise


def _worker_main(sweep: Sweep, trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        optimize(sweep, trials, [])
    except KeyboardInterrupt:
        pass


def run_sweep(sweep: Sweep, *, trials: int | None = None, workers: int | None = None,
              callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Create or resume the study, recover stale trials, and run to ``trials`` finished."""
    total = trials or sweep.config.trials
    study = open_sweep_study(sweep, total)
    stale = recover_stale(study)
    run_workers(sweep, total, workers or sweep.config.workers, callbacks)
    return {"study": sweep.study, "storage": sweep.storage, "recovered": stale}
