"""The Optuna backend's NSGA-II: generations fill with finished trials, stopped ones too."""
from __future__ import annotations

import optuna
import pytest

from nas_prune.search.backends.optuna_backend import make_sampler


def _generations(prune: bool) -> list[int]:
    sampler = make_sampler("nsga2", 0, 4)  # population 4
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    gens = []
    for i in range(12):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        gens.append(sampler.get_trial_generation(study, study._storage.get_trial(
            trial._trial_id)))
        if prune and i % 2:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [x, 1.0 - x])
    return gens


@pytest.mark.parametrize("prune", [False, True])
def test_generations_advance_every_population_of_finished_trials(prune: bool) -> None:
    # with half the trials stopped, Optuna's own NSGA-II would still be in generation 1
    assert _generations(prune) == [0] * 4 + [1] * 4 + [2] * 4


def test_stopped_trials_are_never_parents() -> None:
    sampler = make_sampler("nsga2", 0, 4)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(8):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        if i % 2:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [x, 1.0 - x])
    parents = sampler.get_parent_population(study, 2)
    assert parents and all(t.state == optuna.trial.TrialState.COMPLETE for t in parents)


def test_a_generation_of_stopped_trials_still_samples() -> None:
    # 1 COMPLETE + 3 PRUNED fill generation 0: its parents (COMPLETE only) are too few for
    # a crossover, so the next children are drawn at random instead of failing
    sampler = make_sampler("nsga2", 0, 4)  # population 4
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(24):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_int("y", 0, 5)
        if 0 < i < 4:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [x, float(y)])
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.FAIL not in states
    assert len(states) == 24


def test_generation_keys_are_optunas_own() -> None:
    sampler = make_sampler("nsga2", 0, 4)
    assert sampler._get_generation_key() == optuna.samplers.NSGAIISampler._get_generation_key()


@pytest.mark.parametrize("name", ["nsga2", "tpe", "random"])
def test_samplers_survive_pickling_and_keep_sampling(name: str) -> None:
    # Ray Tune pickles its searcher, sampler included (Optuna 5.1 put a lock on GA samplers)
    import pickle

    sampler = pickle.loads(pickle.dumps(make_sampler(name, 0, 4)))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0.0, 1.0), 1.0), n_trials=10)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 10
