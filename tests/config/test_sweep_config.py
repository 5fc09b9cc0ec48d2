"""nas_prune.config.sweep: a sweep file resolved into a Sweep (space path, flags over the
file, default storage), the fixed part of every trial, and one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas_prune.config.base import ConfigError
from nas_prune.config.sweep import Sweep, default_storage, load_sweep
from nas_prune.config.trial import TrialConfig, with_picks
from tests.conftest import write_yaml

SPACE: dict[str, Any] = {"method": {"choices": ["magnitude", "importance"]},
                         "hidden": {"choices": ["16,16", "32", "8"]}}


def _load(tmp_path: Path, space: dict[str, Any] | None = None, **sweep: Any) -> Sweep:
    write_yaml(tmp_path / "space.yaml", SPACE if space is None else space)
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "s", "space": "space.yaml", **sweep})
    return load_sweep(path)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sw = _load(tmp_path)
    assert (sw.out, sw.storage, sw.study) == (Path("runs/s"), "runs/s/study.journal", "s")
    assert sw.storage == default_storage(sw.out)
    c = sw.config
    assert (c.trials, c.sampler, c.backend, c.seeds, c.eval.episodes) == (
        20, "nsga2", "optuna", [0], 20)


def test_flags_override_the_file(tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", SPACE)
    path = write_yaml(tmp_path / "sweep.yaml", {
        "name": "s", "space": "space.yaml", "out": str(tmp_path / "file_out"),
        "storage": str(tmp_path / "file.journal"), "study": "file_study"})
    sw = load_sweep(path)
    assert (sw.out, sw.storage, sw.study) == (tmp_path / "file_out",
                                              str(tmp_path / "file.journal"), "file_study")
    sw = load_sweep(path, storage="sqlite:///x.db", study="flag_study", out=tmp_path / "o")
    assert (sw.out, sw.storage, sw.study) == (tmp_path / "o", "sqlite:///x.db", "flag_study")


def test_sampler_seed_flag_gets_its_own_study_beside_the_first(tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", SPACE)
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "s", "space": "space.yaml",
                                                 "sampler_seed": 3})
    first = load_sweep(path, out=tmp_path / "o")
    second = load_sweep(path, out=tmp_path / "o", sampler_seed=1)
    assert (first.config.sampler_seed, first.study) == (3, "s")
    assert (second.config.sampler_seed, second.study) == (1, "s-seed1")
    # same out folder and dense cache, different study folders and fingerprints
    assert (second.storage, second.dense_cache) == (first.storage, first.dense_cache)
    assert second.study_dir != first.study_dir
    assert second.fingerprint()["sampler_seed"] != first.fingerprint()["sampler_seed"]
    # the file's own seed keeps the file's study; an explicit --study wins
    assert load_sweep(path, sampler_seed=3).study == "s"
    assert load_sweep(path, sampler_seed=1, study="mine").study == "mine"


def test_default_storage_follows_the_out_folder(tmp_path: Path) -> None:
    sw = _load(tmp_path, out=str(tmp_path / "elsewhere"))
    assert sw.storage == str(tmp_path / "elsewhere" / "study.journal")


def test_space_is_found_beside_the_sweep_file(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no space.yaml here
    sw = _load(tmp_path)
    assert sw.space.method.choices == ["magnitude", "importance"]  # type: ignore[union-attr]


def test_template_is_the_fixed_part_of_every_trial(tmp_path: Path) -> None:
    sw = _load(tmp_path, agent={"name": "ppo", "train_steps": 2048, "hidden": [99]},
               seeds=[5, 6], threads=2, eval={"episodes": 7},
               finetune={"lr": 0.01, "batch_size": 32})
    template = sw.template()
    assert isinstance(template, TrialConfig)  # a TrialConfig, never a dict shaped like one
    assert (template.seed, template.threads, template.eval.episodes) == (5, 2, 7)
    assert sw.template(1).seed == 6 and sw.template(2).seed == 5  # seeds rotate by number
    ft = template.pruning.finetune
    assert (ft.lr, ft.batch_size) == (0.01, 32)
    # with a width and the pruning a space picks: the distillation settings stay
    cfg = with_picks(template, hidden=[8], pruning={
        "method": "importance", "sparsity": 0.5, "finetune": {"mode": "distill", "steps": 64}})
    assert (cfg.agent.name, cfg.agent.train_steps, cfg.seed, cfg.agent.hidden) == (
        "ppo", 2048, 5, [8])
    assert (cfg.pruning.finetune.mode, cfg.pruning.finetune.steps,
            cfg.pruning.finetune.lr, cfg.pruning.finetune.batch_size) == ("distill", 64, 0.01, 32)


@pytest.mark.parametrize(("reference", "params"), [
    (None, 4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2),  # widest: 16,16 (32 units) beats 32
    ([8], 4 * 8 + 8 + 8 * 2 + 2),
])
def test_reference_params(tmp_path: Path, reference: list[int] | None, params: int) -> None:
    sw = _load(tmp_path, reference_hidden=reference)
    assert sw.reference_params(4, 2) == params


@pytest.mark.parametrize(("sweep", "error"), [
    ({"backend": "ray", "early_stop": {"enabled": True}},
     "early_stop.enabled: multi-objective early stopping runs on the optuna backend only; "
     "allowed backends: optuna"),
    ({"name": "../x"}, "name: '../x' must be letters, digits, '_', '.', '-' (no paths)"),
    ({"study": "a/b"}, "study: 'a/b' must be letters, digits, '_', '.', '-' (no paths)"),
    ({"baseline": {"sparsities": []}}, "baseline.sparsities: need one or more values in [0, 1)"),
    ({"baseline": {"sparsities": [0.5, 1.0]}},
     "baseline.sparsities: 1.0 is outside [0, 1)"),
    ({"early_stop": {"rungs": [0.5, 0.2]}},
     "early_stop.rungs: need increasing fractions in (0, 1), got [0.5, 0.2]"),
    ({"seeds": []}, "seeds: List should have at least 1 item after validation, not 0"),
    ({"sampler": "cmaes"}, "sampler: Input should be 'nsga2', 'tpe' or 'random'"),
    ({"trials": 0}, "trials: Input should be greater than or equal to 1"),
    ({"trails": 5}, "trails: unknown key"),
])
def test_sweep_errors_are_one_line(tmp_path: Path, sweep: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **sweep)
    assert str(info.value) == error


def test_ray_backend_without_early_stop_in_the_file_is_fine(tmp_path: Path) -> None:
    sw = _load(tmp_path, backend="ray")
    assert sw.config.early_stop.enabled  # on by default, but not requested: ray may run
    assert not sw.config.early_stop.requested()


def test_unknown_baseline_method_names_only_its_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, baseline={"method": "nope"})
    assert str(info.value).startswith("baseline.method: unknown pruning method 'nope'; ")


@pytest.mark.parametrize(("space", "error"), [
    ({}, "is empty; declare at least one dimension"),
    ({"method": "magnitude", "method_params": {"l1_coef": 0.1}},
     "space.method_params.l1_coef: applies to none of ['magnitude']"),
    ({"hidden": "x"}, "hidden: 'x' is not a comma list of widths"),
])
def test_space_errors_are_one_line(tmp_path: Path, space: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, space)
    assert error in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_space_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "s", "space": "nope.yaml"})
    with pytest.raises(ConfigError, match=r"^config: file .*nope\.yaml' not found$"):
        load_sweep(path)


def test_unsafe_study_flag(tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", SPACE)
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "s", "space": "space.yaml"})
    with pytest.raises(ConfigError) as info:
        load_sweep(path, study="../escape")
    assert str(info.value) == "--study: '../escape' must be letters, digits, '_', '.', '-'"


def test_studies_from_before_the_sparse_dimensions_still_resume(tmp_path: Path) -> None:
    from nas_prune.search.fingerprint import changed_fields

    new = _load(tmp_path).fingerprint()
    old = {**new, "space": {k: v for k, v in new["space"].items()
                            if k not in ("sparse_method", "distribution")}}
    assert changed_fields(old, new) == []  # unset: nothing changed
    mixed = _load(tmp_path, {**SPACE, "schedule": {"choices": ["oneshot", "sparse"]},
                             "sparse_method": {"choices": ["set", "rigl"]}}).fingerprint()
    assert any(c.startswith("space.sparse_method") for c in changed_fields(old, mixed))


def test_cnn_reference_is_the_largest_torso_counted_on_the_network(tmp_path: Path) -> None:
    from nas_prune.pruning.counting import count
    from nas_prune.rl.cnn import CNN
    from nas_prune.search.baseline import baseline_configs

    sw = _load(tmp_path, {"method": "importance", "hidden": {"choices": ["8", "16"]},
                          "channels": {"choices": ["2", "5"]}},
               env={"id": "tests.rl.toy_envs:BoolImageEnv"},
               agent={"name": "dqn", "network": "cnn", "kernels": [2], "train_steps": 100})
    ref = sw.reference()
    assert (ref.agent.channels, ref.agent.hidden, ref.agent.kernels) == ([5], [16], [2])
    # (4, 4, 2) frames, channels last: 5 x 2x2 -> 3x3 -> 16 -> 2 actions, on the network
    expected = count(CNN((2, 4, 4), [5], [2], [1], [16], 2)).params
    assert expected == (5 * 2 * 4 + 5) + (45 * 16 + 16) + (16 * 2 + 2)
    assert sw.reference_params(32, 2) == expected
    assert all(c.agent.channels == [5] for c in baseline_configs(sw))


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parents[2] / "sweeps")
                                        .glob("*.yaml")))
def test_shipped_sweeps_load_and_their_envs_are_installed(name: str) -> None:
    from nas_prune.rl.envs import make_env

    sw = load_sweep(Path(__file__).parents[2] / "sweeps" / name)
    make_env(sw.config.env.id, sw.config.env.kwargs).close()  # every shipped env installs
    trial = with_picks(sw.template(0), hidden=[8],
                       pruning={"method": "magnitude", "sparsity": 0.5})
    assert trial.env.id == sw.config.env.id and trial.agent.hidden == [8]
