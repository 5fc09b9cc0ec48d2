"""A tiny 3-objective sweep end to end (Optuna backend): the study records its objectives,
every trial's values are its metrics, the report's front is a valid n-D front with
latency re-measured, and ``best --max-latency-us`` chooses within the limit."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.results import pareto
from nas_prune.results.reeval import LATENCY_ATTR
from nas_prune.search.record import read as trial_attrs
from nas_prune.search.storage import load_study, study_objectives
from tests.conftest import write_yaml

runner = CliRunner()
OBJ3 = ["return_mean", "params_nonzero", "latency_us"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 6-trial sweep on three objectives, with noise, baseline and report."""
    tmp = tmp_path_factory.mktemp("sweep3")
    write_yaml(tmp / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]},
        "hidden": {"choices": ["16,16", "8"]}, "sparsity": {"low": 0.0, "high": 0.9},
        "finetune_mode": {"choices": ["rl", "distill"]}, "finetune_steps": 256})
    sweep = write_yaml(tmp / "sweep.yaml", {
        "name": "three", "agent": {"name": "ppo", "train_steps": 1024},
        "eval": {"episodes": 4, "noise_std": 0.5}, "space": "space.yaml", "trials": 6,
        "out": str(tmp / "out"), "reeval": {"seeds": 1, "episodes": 3},
        "baseline": {"sparsities": [0.5, 0.9]}, "objectives": OBJ3})
    res = runner.invoke(app, ["sweep", str(sweep)])
    assert res.exit_code == 0, res.output
    (tmp / "sweep_output.txt").write_text(res.output)
    return sweep


def test_the_study_records_its_objectives_and_values(finished: Path) -> None:
    sw = load_sweep(finished)
    study = load_study(sw.storage, sw.study)
    assert study_objectives(study) == study.metric_names == OBJ3
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 4
    for t in done:
        attrs = trial_attrs(t)
        assert t.values == [float(attrs[n]) for n in OBJ3]
        assert attrs["latency_method"] in ("onnxruntime", "torch")
        assert attrs["return_noise"] is not None  # eval.noise_std > 0: measured too
    baseline = load_study(sw.storage, sw.study + ".baseline")
    assert baseline.metric_names == OBJ3


def test_the_report_front_is_a_valid_3d_front(finished: Path) -> None:
    sw = load_sweep(finished)
    report = sw.study_dir / "report"
    front = pd.read_csv(report / "pareto.csv")
    trials = pd.read_csv(report / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert len(front) >= 1
    # chosen on the re-evaluated return and the re-measured latency, both in the file
    cols = ["reeval_mean", "params_nonzero", "latency_remeasured_us"]
    assert front[cols].notna().all().all()
    costs = front[cols].to_numpy() * [-1, 1, 1]
    for a, b in itertools.permutations(range(len(costs)), 2):
        assert not pareto.dominates_nd(costs[a], costs[b])
    # every front point was on the trials' own 3-D front (brute force on raw metrics)
    raw = done[OBJ3].to_numpy(dtype=float) * [-1, 1, 1]
    on_raw_front = {int(n) for n, a in zip(done["number"], raw)
                    if not any(pareto.dominates_nd(b, a) for b in raw)}
    assert set(front["number"].astype(int)) <= on_raw_front
    # the re-measurements are kept in the study, one per front point
    stored = load_study(sw.storage, sw.study).user_attrs[LATENCY_ATTR]
    assert {int(k) for k in stored} >= set(front["number"].astype(int))


def test_the_report_shows_projections_every_objective_and_noise(finished: Path) -> None:
    sw = load_sweep(finished)
    page = (sw.study_dir / "report" / "report.html").read_text()
    assert "Pairwise projections of the 3-objective front" in page
    assert "latency µs (IQR)" in page and "Robustness under observation noise" in page
    out = (finished.parent / "sweep_output.txt").read_text()
    assert "latency µs" in out and "ref_latency_us" in out and "ratio" in out


def test_best_max_latency_chooses_within_the_limit(finished: Path, tmp_path: Path) -> None:
    sw = load_sweep(finished)
    front = pd.read_csv(sw.study_dir / "report" / "pareto.csv")
    limit = float(front["latency_remeasured_us"].max())
    res = runner.invoke(app, ["best", str(finished), "--max-latency-us", str(limit),
                              "--out", str(tmp_path / "best.yaml")])
    assert res.exit_code == 0, res.output
    chosen = json.loads(res.output.strip().splitlines()[-1])
    assert chosen["latency_remeasured_us"] <= limit
    assert chosen["reeval_mean"] == front["reeval_mean"].max()  # all within: best return
    res = runner.invoke(app, ["best", str(finished), "--max-latency-us", "0.001",
                              "--out", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2
    assert res.output.startswith("error: --max-latency-us: no trial has latency_us <= 0.001")


def test_rungs_compare_on_the_count_objectives(tmp_path: Path) -> None:
    """Early stopping with macs_nonzero as a third objective: each rung point carries it,
    and stopped trials count toward the total."""
    write_yaml(tmp_path / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]}, "hidden": "16",
        "sparsity": {"low": 0.0, "high": 0.9}, "finetune_steps": 256})
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "rungs3", "agent": {"name": "ppo", "train_steps": 1024},
        "eval": {"episodes": 2}, "space": "space.yaml", "trials": 6,
        "out": str(tmp_path / "out"), "baseline": {"enabled": False},
        "objectives": ["return_mean", "params_nonzero", "macs_nonzero"],
        "early_stop": {"rungs": [0.5], "min_dominators": 1, "episodes": 2}})
    res = runner.invoke(app, ["sweep", str(sweep), "--no-report"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(sweep)
    trials = load_study(sw.storage, sw.study).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 6
    points = [t.user_attrs["rung_0"] for t in trials if "rung_0" in t.user_attrs]
    assert points and all(len(p) == 3 for p in points)  # (params, return, MACs)
    for t in trials:
        if t.state.name == "COMPLETE":
            attrs = trial_attrs(t)
            assert t.values == [attrs["return_mean"], attrs["params_nonzero"],
                                attrs["macs_nonzero"]]
