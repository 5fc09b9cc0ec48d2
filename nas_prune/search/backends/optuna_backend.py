"""Optuna backend: ask the space for a TrialConfig, run it, tell the objectives."""
from __future__ import annotations

import math
import multiprocessing as mp
import signal
import threading
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import optuna
from filelock import FileLock
from optuna.trial import FrozenTrial, TrialState

from nas_prune.config.objectives import DEFAULT_OBJECTIVES
from nas_prune.config.space import suggest
from nas_prune.config.sweep import Sweep
from nas_prune.search import record
from nas_prune.search.backends import Backend, Callback, RunOptions, backends
from nas_prune.search.generations import GENERATION_ATTR, RETRY_OF, ask_in_generation
from nas_prune.search.record import objective_values
from nas_prune.search.storage import is_local, load_study, lock_path, n_finished
from nas_prune.search.sweep import population_of
from nas_prune.trial.early_stop import RUNG_COUNTS, dominated_count

__all__ = ["make_sampler", "objective", "open_sweep_study", "optimize", "recover_stale",
           "run_sweep", "run_workers"]

if TYPE_CHECKING:
    from nas_prune.trial.run import Rungs  # noqa: F401



class _NSGAII(optuna.samplers.NSGAIISampler):
    """NSGA-II whose generations fill with finished trials, stopped (PRUNED) ones included.

    Optuna's counts only COMPLETE trials, so with early stopping a generation waits for
    ``population_size`` trials that were not stopped, and the search stays random far
    longer than without it. Stopped trials still never become parents: only COMPLETE ones
    have both objectives (and a stopped trial is dominated by a COMPLETE one).
    """

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        key = self._get_generation_key()
        generation = trial.system_attrs.get(key)
        if generation is not None:
            return int(generation)
        done = study._get_trials(  # noqa: SLF001 (as Optuna's own implementation)
            deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED], use_cache=True)
        generations = [g for g in (t.system_attrs.get(key, -1) for t in done) if g >= 0]
        latest = max(generations, default=0)
        generation = latest + int(sum(g == latest for g in generations) >= self._population_size)
        study._storage.set_trial_system_attr(trial._trial_id, key, generation)  # noqa: SLF001
        return generation

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        # a generation of mostly stopped trials can leave fewer than the two parents a
        # crossover needs: sample that child at random (as generation 0 does)
        parents = self.get_parent_population(study, self.get_trial_generation(study, trial))
        if len(parents) < 2:
            return {}
        return super().sample_relative(study, trial, search_space)

    # Optuna >= 5.1 keeps a threading.Lock on GA samplers; Ray Tune pickles its searcher
    # (and this sampler with it) into the sweep's Ray folder: drop the lock, make a new one
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_thread_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()  # unused by Optuna < 5.1


# keep Optuna's own keys (the subclass would get "_NSGAII:..."): studies stay resumable
_NSGAII._GENERATION_KEY = optuna.samplers.NSGAIISampler._GENERATION_KEY  # noqa: SLF001
_NSGAII._PARENT_CACHE_KEY_PREFIX = (
    optuna.samplers.NSGAIISampler._PARENT_CACHE_KEY_PREFIX)  # noqa: SLF001


def make_sampler(name: str, seed: int, population: int) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), TPE or random for asynchronous sampling; seeded."""
    if name == "nsga2":
        return _NSGAII(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)


def open_sweep_study(sweep: Sweep, worker: int = 0) -> optuna.Study:
    """Load the sweep's study (created by ``search.sweep.claim_study``) with its sampler.

    Asynchronous sampling: the sampler's seed mixes the sweep's seed, the worker index and
    the trials already in the study, so concurrent workers and a resumed sweep never replay
    the same samples. Generation-synchronous sampling draws in ``search.generations``; the
    study's own sampler then only sees enqueued (fixed) parameters.
    """
    c = sweep.config
    study = load_study(sweep.storage, sweep.study)
    if c.reproducible:
        study.sampler = optuna.samplers.RandomSampler(seed=c.sampler_seed)
        return study
    seed = (c.sampler_seed + 1_000_003 * worker
            + 7_919 * len(study.get_trials(deepcopy=False))) % 2**32
    study.sampler = make_sampler(c.sampler, seed, population_of(study))
    return study


def objective(sweep: Sweep) -> Callable[[optuna.Trial], tuple[float, ...]]:
    """The Optuna objective: the sweep's objectives in order; metrics as user attrs."""
    from nas_prune.trial.run import TrialStopped, run_trial

    def run(trial: optuna.Trial) -> tuple[float, ...]:
        out = sweep.trial_dir(trial.number)
        cfg = None
        try:
            cfg = suggest(trial, sweep.space, sweep.template(trial.number))
            # written before the run, so a failed trial keeps its config and folder
            record.write_running(trial, cfg, str(out.resolve()))
            result = run_trial(cfg, cache_dir=sweep.dense_cache, out=out,
                               rungs=_rungs(sweep, trial))
        except TrialStopped as stop:
            record.write_running(trial, cfg, str(out.resolve()), stop.metrics)
            raise optuna.TrialPruned(str(stop)) from None
        except BaseException as exc:
            trial.set_user_attr(record.FAIL_REASON, _reason(exc))
            raise
        # one write (the rung points were written by decide() as they were reached)
        record.write_running(trial, cfg, str(out.resolve()), result.metrics)
        values = tuple(objective_values(result.metrics, sweep.objectives))
        if not all(math.isfinite(v) for v in values):
            trial.set_user_attr(record.FAIL_REASON, f"non-finite objectives {values}")
            raise FloatingPointError(f"non-finite objectives {values}")
        return values

    return run


def _rungs(sweep: Sweep, trial: optuna.Trial) -> Rungs | None:
    from nas_prune.trial.run import Rungs

    es = sweep.config.early_stop
    if not es.enabled:
        return None
    study = trial.study

    schedule = str(trial.params.get("schedule", "fixed"))
    # a reproducible sweep decides from finished generations only (what they hold is
    # fixed); an asynchronous one from every trial finished so far
    mine = trial.user_attrs.get(GENERATION_ATTR)

    def earlier(t: FrozenTrial) -> bool:
        return mine is None or t.user_attrs.get(GENERATION_ATTR, mine) < mine

    def decide(rung: int, point: tuple[float, ...]) -> bool:
        # compared within one schedule: a gradual trial is not yet at its final size
        key = f"rung_{rung}"
        trial.set_user_attr(key, list(point))
        trial.set_user_attr("rung_schedule", schedule)
        done = study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED))
        others = [tuple(t.user_attrs[key]) for t in done if key in t.user_attrs
                  and t.user_attrs.get("rung_schedule") == schedule and earlier(t)]
        return dominated_count(point, others) >= es.min_dominators  # type: ignore[arg-type]

    bound = es.return_upper_bound

    def certainly_dominated(params: float) -> bool:
        # a finished trial with fewer params already scored the return's upper bound
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return any(t.values is not None and t.values[0] >= bound and t.values[1] < params
                   and earlier(t) for t in done)

    # certain only when the return is the one objective not final at the last pruning step
    # (with latency, bytes or noise among them a bigger trial could still win)
    default = sweep.objectives == list(DEFAULT_OBJECTIVES)
    at_size = certainly_dominated if es.size_check and bound is not None and default else None
    extra = tuple(n for n in sweep.objectives if n in RUNG_COUNTS)
    return Rungs(list(es.rungs), decide, es.episodes, at_size, extra)


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
        if RETRY_OF not in t.user_attrs:  # a retry stays in its generation
            keep = {k: t.user_attrs[k] for k in (GENERATION_ATTR,) if k in t.user_attrs}
            study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number, **keep})
    return [t.number for t in stale]


def optimize(sweep: Sweep, trials: int, callbacks: list[Callback], worker: int = 0, *,
             study: optuna.Study | None = None) -> None:
    """Ask/tell loop in this process until the study holds ``trials`` finished trials.

    A worker stops asking once finished + running trials reach the total, so concurrent
    workers never overshoot; failures are told FAIL with their reason and the loop goes on
    (at most ``trials + 2`` failures per worker, so a broken env cannot spin forever).
    """
    study = study or open_sweep_study(sweep, worker)
    population = population_of(study)
    run = objective(sweep)
    failures = 0
    while failures <= trials + 2:
        trial = (ask_in_generation(study, sweep, trials, population)
                 if sweep.config.reproducible else _ask(study, sweep, trials))
        if trial is None:
            return
        try:
            values = run(trial)
        except optuna.TrialPruned:  # stopped early at a rung: counts toward the total
            study.tell(trial, state=TrialState.PRUNED)
        except (KeyboardInterrupt, SystemExit):
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception:  # recorded with its reason; the sweep goes on
            study.tell(trial, state=TrialState.FAIL)
            failures += 1
        else:
            study.tell(trial, list(values))
        frozen = study.get_trials(deepcopy=False)[trial.number]
        for cb in callbacks:
            cb(study, frozen)


def _ask(study: optuna.Study, sweep: Sweep, total: int) -> optuna.Trial | None:
    # Local storages: a file lock makes count-then-ask atomic across processes. Server
    # storages (many machines): a trial whose rank is past the total is told FAIL as surplus.
    local = is_local(sweep.storage)
    lock = FileLock(str(lock_path(sweep.storage))) if local else nullcontext()
    with lock:
        busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        if len(study.get_trials(deepcopy=False, states=busy)) >= total:
            return None
        trial = study.ask()
    ahead = [t for t in study.get_trials(deepcopy=False, states=busy) if t.number < trial.number]
    if len(ahead) >= total:
        trial.set_user_attr("fail_reason", "surplus: the study was already full")
        study.tell(trial, state=TrialState.FAIL)
        return None
    return trial


def run_workers(sweep: Sweep, study: optuna.Study, trials: int, workers: int,
                callbacks: list[Callback] | None = None) -> None:
    """Run the sweep with ``workers`` local processes sharing the study's storage; this
    process reports progress by watching the storage (one worker: runs in this process)."""
    if workers == 1:
        optimize(sweep, trials, callbacks or [], study=study)
        return
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(sweep, trials, i)) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        _watch(study, procs, callbacks or [])
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each worker tells its running trial FAIL, then exits
        for p in procs:
            p.join()
        raise


def _watch(study: optuna.Study, procs: list[Any], callbacks: list[Callback]) -> None:
    done_states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    seen = {t.number for t in study.get_trials(deepcopy=False, states=done_states)}
    while True:
        alive = any(p.is_alive() for p in procs)
        if any(p.exitcode not in (0, None) for p in procs):
            # a dead worker's trial stays RUNNING and would hold the others at the next
            # generation boundary: stop them too (re-running the command resumes)
            for p in procs:
                p.terminate()
        for t in study.get_trials(deepcopy=False, states=done_states):
            if t.number not in seen:
                seen.add(t.number)
                for cb in callbacks:
                    cb(study, t)
        if not alive:
            break
        time.sleep(1.0)
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise RuntimeError(f"{len(failed)} sweep worker(s) exited with codes {failed}")


def _worker_main(sweep: Sweep, trials: int, index: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        optimize(sweep, trials, [], worker=index)
    except KeyboardInterrupt:
        pass


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_sweep(sweep: Sweep, *, trials: int | None = None, workers: int | None = None,
              callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Create or resume the study, recover stale trials, and run to ``trials`` finished.

    Rounds repeat while trials that were running elsewhere failed and left room, so the
    study ends with exactly ``trials`` finished ones unless failures keep recurring.
    """
    total = trials or sweep.config.trials
    study = open_sweep_study(sweep)
    # Only a local storage's owner knows no other process is running its trials; on a
    # server storage, RUNNING trials may belong to live workers on other machines.
    stale = recover_stale(study) if is_local(sweep.storage) else []
    for _ in range(3):
        before = n_finished(study)
        run_workers(sweep, study, total, workers or sweep.config.workers, callbacks)
        after = n_finished(study)
        if after >= total or after == before:
            break
    return {"study": sweep.study, "storage": sweep.storage, "recovered": stale}


def _run(sweep: Sweep, opts: RunOptions) -> list[int]:
    res = run_sweep(sweep, trials=opts.trials, workers=opts.workers, callbacks=opts.callbacks)
    return list(res["recovered"])


backends.register("optuna")(Backend(run=_run, early_stop=True, reproducible=True))
