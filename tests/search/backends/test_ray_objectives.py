"""The Ray backend follows the sweep's objectives without starting Ray: Tune's modes, and
the recorder writing a finished Ray trial's values in the study's objective order."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import yaml

from nas_prune.config.sweep import load_sweep
from nas_prune.search.backends.ray_backend import RAY_ID, _Recorder, modes
from nas_prune.search.storage import create_study, load_study
from nas_prune.trial.metrics import TrialMetrics
from tests.trial.test_metrics import BASE

OBJ3 = ["return_mean", "latency_us", "return_noise"]


def _sweep(tmp_path: Path) -> Path:
    (tmp_path / "space.yaml").write_text("sparsity: {low: 0.0, high: 0.9}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "name": "r", "space": "space.yaml", "backend": "ray", "out": str(tmp_path / "out"),
        "objectives": OBJ3, "eval": {"noise_std": 0.2}}))
    return path


def test_modes_follow_the_objectives(tmp_path: Path) -> None:
    assert modes(load_sweep(_sweep(tmp_path))) == ["max", "min", "max"]


def test_recorder_writes_values_in_objective_order(tmp_path: Path) -> None:
    sw = load_sweep(_sweep(tmp_path))
    create_study(sw.storage, sw.study, optuna.samplers.RandomSampler(), sw.objectives)
    metrics = TrialMetrics(**BASE, params_nonzero=9, return_mean=50.0, latency_us=7.5,
                           return_noise=41.0)
    trial = SimpleNamespace(trial_id="t1", config={}, last_result={
        "metrics_json": metrics.model_dump_json(exclude_unset=True), "out_dir": "/x"})
    _Recorder(sw).record(trial, failed=False)
    (t,) = load_study(sw.storage, sw.study).trials
    assert t.values == [50.0, 7.5, 41.0] and t.user_attrs[RAY_ID] == "t1"


def test_searched_parameters_reach_the_study(tmp_path: Path) -> None:
    """The define-by-run space sends the searched parameters with the config, and the
    recorder stores them with their distributions, as the Optuna backend does (parameter
    importances need them)."""
    from nas_prune.search.backends.ray_backend import DefineByRun

    sw = load_sweep(_sweep(tmp_path))
    drawn = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask()
    config = DefineByRun(sw)(drawn)
    assert drawn.params  # the space searched something
    create_study(sw.storage, sw.study, optuna.samplers.RandomSampler(), sw.objectives)
    metrics = TrialMetrics(**BASE, params_nonzero=9, return_mean=50.0, latency_us=7.5,
                           return_noise=41.0)
    trial = SimpleNamespace(trial_id="t2", config=config, last_result={
        "metrics_json": metrics.model_dump_json(exclude_unset=True), "out_dir": "/x"})
    _Recorder(sw).record(trial, failed=False)
    (t,) = load_study(sw.storage, sw.study).trials
    assert t.params == drawn.params
    assert t.distributions == drawn.distributions
