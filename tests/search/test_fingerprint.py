"""A study refuses a changed sweep file (fields named, nothing written) and resumes an
unchanged one; fields that do not change trials may change freely."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.search.fingerprint import changed_fields
from nas_prune.search.storage import load_study

runner = CliRunner()


@pytest.mark.parametrize("old, new, expected", [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1}, {"a": 2}, ["a: 1 -> 2"]),
    ({"agent": {"train_steps": 100000, "hyper": {}}},
     {"agent": {"train_steps": 30000, "hyper": {}}}, ["agent.train_steps: 100000 -> 30000"]),
    ({"agent": {"hyper": {}}}, {"agent": {"hyper": {"lr": 0.1}}},
     ["agent.hyper.lr: <unset> -> 0.1"]),
    ({"seeds": [0]}, {"seeds": [0, 1]}, ["seeds: [0] -> [0, 1]"]),
    ({"b": 1, "a": {"x": "u"}}, {"b": 2, "a": {"x": "v"}}, ["a.x: u -> v", "b: 1 -> 2"]),
    # a field a later release added, left off: a study created before it still resumes
    ({"agent": {"name": "dqn"}},
     {"agent": {"name": "dqn", "network": None, "channels": [], "noise": 0.0, "on": False}},
     []),
    # ... but set to something, it changes what trials compute
    ({"agent": {"name": "dqn"}}, {"agent": {"name": "dqn", "network": "cnn"}},
     ["agent.network: <unset> -> cnn"]),
    # a key the new sweep lost always counts
    ({"agent": {"name": "dqn", "network": None}}, {"agent": {"name": "dqn"}},
     ["agent.network: null -> <unset>"]),
])
def test_changed_fields_names_each_differing_leaf(old: Any, new: Any,
                                                  expected: list[str]) -> None:
    assert changed_fields(old, new) == expected


def _edit(sweep: Path, **changes: Any) -> None:
    data = yaml.safe_load(sweep.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    sweep.write_text(yaml.safe_dump(data))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def ran(tiny_sweep: Path) -> Path:
    res = runner.invoke(app, ["sweep", str(tiny_sweep), "--trials", "2", "--no-report"])
    assert res.exit_code == 0, res.output
    return tiny_sweep


@pytest.mark.parametrize("verb", [["sweep"], ["worker"], ["baseline"],
                                  ["sweep", "--backend", "ray"]])
def test_a_changed_sweep_is_refused_naming_fields_and_writing_nothing(ran: Path,
                                                                      verb: list[str]) -> None:
    sw = load_sweep(ran)
    before = _snapshot(sw.out)
    _edit(ran, agent__train_steps=512, eval__episodes=5)
    res = runner.invoke(app, [*verb, str(ran)])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "agent.train_steps: 1024 -> 512" in line and "eval.episodes: 4 -> 5" in line
    assert "--study" in line and "--out" in line
    assert _snapshot(sw.out) == before  # journal, trials and folders untouched


def test_a_changed_search_space_is_refused(ran: Path) -> None:
    space = ran.parent / "space.yaml"
    space.write_text(space.read_text().replace("256", "128"))
    res = runner.invoke(app, ["sweep", str(ran), "--no-report"])
    assert res.exit_code == 2
    assert "space.finetune_steps: 256 -> 128" in res.output


def test_the_changed_sweep_runs_as_a_new_study_beside_the_first(ran: Path) -> None:
    _edit(ran, agent__train_steps=512)
    res = runner.invoke(app, ["sweep", str(ran), "--study", "shorter", "--trials", "2",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(ran)
    assert len(load_study(sw.storage, "tiny").trials) == 2
    assert len(load_study(sw.storage, "shorter").trials) == 2


def test_unchanged_or_free_fields_resume(ran: Path) -> None:
    # trials, workers, re-evaluation and the report's box change no trial
    _edit(ran, trials=3, workers=2, reeval__seeds=1, max_return=100, return_floor=1)
    res = runner.invoke(app, ["sweep", str(ran), "--no-report"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(ran)
    assert len(load_study(sw.storage, sw.study).trials) == 3


@pytest.mark.parametrize("objectives", [
    ["return_mean", "params_nonzero", "latency_us"],
    ["return_mean", "bytes"],
    ["return_mean", "latency_us", "params_nonzero"],  # the order is part of it
])
def test_the_fingerprint_changes_with_the_objectives(tiny_sweep: Path,
                                                     objectives: list[str]) -> None:
    before = load_sweep(tiny_sweep).fingerprint()
    _edit(tiny_sweep, objectives=objectives)
    after = load_sweep(tiny_sweep).fingerprint()
    assert before["objectives"] == ["return_mean:maximize", "params_nonzero:minimize"]
    assert after["objectives"] != before["objectives"]
    assert changed_fields(before, after)[0].startswith("objectives: ")


def test_new_eval_settings_at_their_defaults_leave_old_fingerprints_alone(
        tiny_sweep: Path) -> None:
    # a study fingerprinted before noise_std/latency/deploy_int8 existed still resumes
    base = load_sweep(tiny_sweep).fingerprint()
    old = {**base, "eval": {k: base["eval"][k] for k in ("episodes", "seed")}}
    assert changed_fields(old, base) == []
    _edit(tiny_sweep, eval__noise_std=0.5)
    assert changed_fields(old, load_sweep(tiny_sweep).fingerprint()) == [
        "eval.noise_std: <unset> -> 0.5"]


def test_changed_objectives_are_refused_on_resume(ran: Path) -> None:
    _edit(ran, objectives=["return_mean", "params_nonzero", "macs_nonzero"])
    res = runner.invoke(app, ["sweep", str(ran), "--no-report"])
    assert res.exit_code == 2, res.output
    assert "objectives: " in res.output and "--study" in res.output


def test_a_worker_joins_the_second_sampler_seeds_study_and_fills_it(ran: Path) -> None:
    """``worker --sampler-seed N`` finds the study ``sweep --sampler-seed N`` made (same
    fingerprint, same name) and runs trials until it holds its total; the first study is
    left alone."""
    res = runner.invoke(app, ["sweep", str(ran), "--sampler-seed", "1", "--trials", "1",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["worker", str(ran), "--sampler-seed", "1", "--trials", "2"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(ran)
    assert len(load_study(sw.storage, "tiny-seed1").trials) == 2
    assert len(load_study(sw.storage, "tiny").trials) == 2
    # without the seed, the worker's file says seed 0: the seeded study is not joined
    res = runner.invoke(app, ["worker", str(ran), "--study", "tiny-seed1", "--trials", "3"])
    assert res.exit_code == 2 and "sampler_seed: 1 -> 0" in res.output, res.output


def test_the_baseline_of_a_second_sampler_seed_runs_beside_its_search(ran: Path) -> None:
    """``baseline --sampler-seed N`` fills the study ``<name>-seed<N>.baseline`` (and is
    refused without the seed, as the worker is), so it can run while the search runs."""
    res = runner.invoke(app, ["sweep", str(ran), "--sampler-seed", "2", "--trials", "1",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["baseline", str(ran), "--study", "tiny-seed2"])
    assert res.exit_code == 2 and "sampler_seed: 2 -> 0" in res.output, res.output
    res = runner.invoke(app, ["baseline", str(ran), "--sampler-seed", "2"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(ran)
    done = load_study(sw.storage, "tiny-seed2.baseline").trials
    assert len(done) == len(sw.config.baseline.sparsities)
