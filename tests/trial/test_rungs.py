"""Multi-objective early stopping: the dominance rule, the trial-side monitor, a real sweep."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nas_prune import TrialConfig, run_trial
from nas_prune.cli import app
from nas_prune.config.base import parse
from nas_prune.config.sweep import load_sweep
from nas_prune.search.record import read as trial_attrs
from nas_prune.search.storage import load_study
from nas_prune.trial.early_stop import SIZE_CHECK, dominated_count
from nas_prune.trial.run import Rungs, TrialStopped
from tests.conftest import TINY_PPO, write_yaml


@pytest.mark.parametrize("point, others, expected", [
    ((100, 50.0), [], 0),
    ((100, 50.0), [(100, 50.0)], 0),  # equal is not domination
    ((100, 50.0), [(90, 50.0), (100, 60.0), (80, 70.0)], 3),
    ((100, 50.0), [(110, 60.0), (90, 40.0)], 0),  # trade-offs
])
def test_dominated_count(point: tuple, others: list, expected: int) -> None:
    assert dominated_count(point, others) == expected


def _cfg() -> TrialConfig:
    data = copy.deepcopy(TINY_PPO)
    data["pruning"]["finetune"] = {"steps": 1024}
    return parse(TrialConfig, data)


def test_trial_reports_every_rung_when_not_stopped() -> None:
    seen: list[int] = []
    m = run_trial(_cfg(), rungs=Rungs([0.25, 0.5],
                                      lambda i, p: seen.append(i) or False)).metrics.as_dict()
    assert seen == [0, 1] and len(m["rung_points"]) == 2
    assert m["rung_points"][0][0] == m["params_nonzero"]  # one-shot: already at final size


def test_stopped_trial_carries_partial_metrics() -> None:
    full = run_trial(_cfg()).metrics.as_dict()
    with pytest.raises(TrialStopped) as err:
        run_trial(_cfg(), rungs=Rungs([0.25], lambda i, p: True))
    part = err.value.metrics.as_dict()
    assert part["stopped_at_rung"] == 0
    assert part["finetune_env_steps"] < full["finetune_env_steps"]
    assert "return_mean" not in part and part["params_nonzero"] == full["params_nonzero"]


def test_sweep_with_early_stopping_prunes_dominated_trials(tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", {
        "method": {"choices": ["importance", "magnitude", "random"]}, "hidden": "16",
        "sparsity": {"low": 0.0, "high": 0.9}, "finetune_steps": 1024})
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "es", "agent": {"name": "ppo", "train_steps": 1024}, "eval": {"episodes": 3},
        "space": "space.yaml", "trials": 8, "sampler": "random", "out": str(tmp_path / "o"),
        "reeval": {"seeds": 0}, "baseline": {"enabled": False},
        "early_stop": {"enabled": True, "rungs": [0.5], "min_dominators": 1, "episodes": 3}})
    res = CliRunner().invoke(app, ["sweep", str(sweep)])
    assert res.exit_code == 0, res.output
    sw = load_sweep(sweep)
    trials = load_study(sw.storage, sw.study).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 8
    assert "PRUNED" in states
    for t in trials:
        if t.state.name == "PRUNED":  # the rule held when it stopped
            earlier = [tuple(o.user_attrs["rung_0"]) for o in trials
                       if _earlier(o, t) and o.state.name in ("COMPLETE", "PRUNED")]
            assert dominated_count(tuple(t.user_attrs["rung_0"]), earlier) >= 1
            assert trial_attrs(t)["env_steps"] < max(
                trial_attrs(o)["env_steps"] for o in trials if o.state.name == "COMPLETE")


def test_size_check_stops_before_fine_tuning_with_the_final_size() -> None:
    full = run_trial(_cfg()).metrics.as_dict()
    seen: list[float] = []
    kept = run_trial(_cfg(), rungs=Rungs([], lambda i, p: False,
                                         at_size=lambda n: seen.append(n) or False)
                     ).metrics.as_dict()
    assert seen == [float(full["params_nonzero"])]  # asked once, with the final size
    assert kept["return_mean"] == full["return_mean"]  # asking changes nothing
    with pytest.raises(TrialStopped) as err:
        run_trial(_cfg(), rungs=Rungs([], lambda i, p: False, at_size=lambda n: True))
    part = err.value.metrics.as_dict()
    assert part["stopped_at_rung"] == SIZE_CHECK and "final size" in part["stopped_at"]
    assert part["finetune_env_steps"] == 0  # one-shot: stopped before any fine-tuning
    assert part["trial_env_steps"] < full["trial_env_steps"]
    assert part["params_nonzero"] == full["params_nonzero"] and "rung_return" not in part


def _earlier(o: Any, t: Any) -> bool:
    """What a trial's stop decision may see: a reproducible sweep's earlier generations,
    an asynchronous sweep's earlier trials (one worker)."""
    if "generation" in t.user_attrs:
        return bool(o.user_attrs["generation"] < t.user_attrs["generation"])
    return bool(o.number < t.number)


@pytest.mark.parametrize("reproducible", [True, False])
def test_sweep_size_check_stops_only_certainly_dominated_trials(tmp_path: Path,
                                                                reproducible: bool) -> None:
    write_yaml(tmp_path / "space.yaml", {
        "method": "importance", "hidden": "16", "sparsity": {"low": 0.0, "high": 0.9},
        "finetune_steps": 512})
    # bound 1: every finished trial reaches it, so any later trial with more
    # nonzero parameters than a finished one is dominated whatever it would score
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "size", "agent": {"name": "ppo", "train_steps": 1024},
        "eval": {"episodes": 2}, "space": "space.yaml", "trials": 8, "sampler": "random",
        "out": str(tmp_path / "o"), "reeval": {"seeds": 0}, "baseline": {"enabled": False},
        "workers": 1, "reproducible": reproducible,
        "early_stop": {"enabled": True, "rungs": [], "size_check": True,
                       "return_upper_bound": 1}})
    res = CliRunner().invoke(app, ["sweep", str(sweep)])
    assert res.exit_code == 0, res.output
    sw = load_sweep(sweep)
    trials = load_study(sw.storage, sw.study).trials
    stopped = [t for t in trials if t.state.name == "PRUNED"]
    assert stopped, [t.state.name for t in trials]
    for t in trials:
        smaller_done = [o for o in trials if _earlier(o, t) and o.state.name == "COMPLETE"
                        and o.values[1] < trial_attrs(t)["params_nonzero"]]
        assert ("generation" in t.user_attrs) == reproducible
        # stopped exactly when a smaller finished trial existed (it scored >= 1)
        assert (t.state.name == "PRUNED") == bool(smaller_done), t.number
