"""Generation-synchronous sampling: a parallel sweep that gives the same trials for any
number of workers.

With asynchronous sampling (Optuna's and Ray Tune's way) which trial lands in which NSGA-II
generation, and which finished trials a sampler sees, follow timing, so two runs of one
sweep with two workers differ. Here a generation of ``population`` trials is drawn at once,
when the previous generation has finished: the worker that finds the study at a generation
boundary (holding the storage lock) replays the study's finished trials into an in-memory
study, asks the sampler there for the whole generation, and enqueues the parameter sets in
order (``Study.enqueue_trial``). Workers then pop enqueued trials; one that finds none
while trials still run waits at the boundary. A generation's parameters therefore depend
only on the sampler seed, the generation number and the finished trials of earlier
generations, and its trials' numbers (hence their seeds) on the order of enqueueing.
"""
from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from nas_prune.config.space import suggest
from nas_prune.config.sweep import Sweep
from nas_prune.search.storage import directions, storage_lock

__all__ = ["GENERATION_ATTR", "POLL_S", "RETRY_OF", "ask_in_generation", "generation_of",
           "population_size", "sample_generation"]

GENERATION_ATTR = "generation"  # trial user attr: the generation the trial was drawn in
RETRY_OF = "retry_of"  # trial user attr: the number of the failed trial this one repeats
POLL_S = 0.2  # a worker at a generation boundary re-checks the study this often
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def population_size(trials: int) -> int:
    """NSGA-II's population (and every sampler's generation size): about a third of the
    budget, so NSGA-II gets a few generations; 4 to 50."""
    return max(4, min(50, trials // 3))


def generation_of(trial: FrozenTrial) -> int | None:
    """The generation a trial was drawn in (None: drawn asynchronously)."""
    g = trial.user_attrs.get(GENERATION_ATTR)
    return None if g is None else int(g)


class _GenerationNSGAII(optuna.samplers.NSGAIISampler):
    """NSGA-II for one generation, drawn at once: every trial asked is in ``generation``,
    and a generation's population is its COMPLETE trials by the ``generation`` user attr.
    Stopped (PRUNED) and failed trials fill a generation but never become parents."""

    def __init__(self, *, generation: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = generation

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        return self._generation

    def get_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get(GENERATION_ATTR) == generation]

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        # a generation of mostly stopped trials can leave fewer than the two parents a
        # crossover needs: sample that child at random (as generation 0 does)
        if len(self.get_parent_population(study, self._generation)) < 2:
            return {}
        return super().sample_relative(study, trial, search_space)


def _sampler(name: str, seed: int, generation: int,
             population: int) -> optuna.samplers.BaseSampler:
    seed = (seed * 1_000_003 + generation) % 2**32
    if name == "nsga2":
        return _GenerationNSGAII(population_size=population, seed=seed, generation=generation)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)


def sample_generation(sweep: Sweep, history: list[FrozenTrial], generation: int,
                      size: int, population: int) -> list[dict[str, Any]]:
    """The parameter sets of ``generation`` (``size`` of them), from the finished trials of
    earlier generations in ``history`` alone.

    Returns:
        One Optuna params dict per trial, in the order they are to be numbered.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    memory = optuna.create_study(directions=directions(sweep.objectives), sampler=_sampler(
        sweep.config.sampler, sweep.config.sampler_seed, generation, population))
    for t in sorted(history, key=lambda t: t.number):
        g = generation_of(t)
        if t.state not in _FINISHED or g is None or g >= generation:
            continue
        memory.add_trial(create_trial(
            state=t.state, values=t.values if t.state == TrialState.COMPLETE else None,
            params=t.params, distributions=t.distributions, user_attrs={GENERATION_ATTR: g}))
    drawn, template = [], sweep.template(0)
    for _ in range(size):
        trial = memory.ask()
        suggest(trial, sweep.space, template)
        drawn.append(dict(trial.params))
    return drawn


def ask_in_generation(study: optuna.Study, sweep: Sweep, total: int,
                      population: int) -> optuna.Trial | None:
    """The next trial of a generation-synchronous sweep, or None when the study holds
    ``total`` finished (or running) trials. Blocks at a generation boundary until the
    running trials of the previous generation finish."""
    while True:
        with storage_lock(sweep.storage, sweep.study):
            trials = study.get_trials(deepcopy=False)
            finished = sum(t.state in _FINISHED for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if finished + running >= total:
                return None
            if any(t.state == TrialState.WAITING for t in trials):
                return study.ask()
            if running == 0:
                _enqueue_next(study, sweep, trials, total - finished, population)
                return study.ask()
        time.sleep(POLL_S)


def _enqueue_next(study: optuna.Study, sweep: Sweep, trials: list[FrozenTrial],
                  room: int, population: int) -> None:
    # A generation cut short by the total is filled first when a resumed sweep has room:
    # its draw depends only on earlier generations, so drawing it again and enqueueing the
    # part not yet run gives the trials one longer run would have had.
    drawn = [g for t in trials if (g := generation_of(t)) is not None
             and RETRY_OF not in t.user_attrs]
    generation = max(drawn, default=-1)
    done = drawn.count(generation)
    if generation < 0 or done >= population:
        generation, done = generation + 1, 0
    params = sample_generation(sweep, trials, generation, population, population)
    for p in params[done:done + room]:
        study.enqueue_trial(p, user_attrs={GENERATION_ATTR: generation})
