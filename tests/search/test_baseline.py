"""nas_prune.search.baseline: one config per baseline sparsity on the reference width with
the space's largest fine-tune budget; a run records COMPLETE trials and resumes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from nas_prune.config.base import parse
from nas_prune.config.sweep import load_sweep
from nas_prune.config.trial import TrialConfig
from nas_prune.search.baseline import COPIED_FROM, baseline_configs, run_baseline
from nas_prune.search.record import read as trial_attrs
from nas_prune.search.storage import load_study
from tests.conftest import write_yaml

SPACE: dict[str, Any] = {
    "method": {"choices": ["importance", "magnitude"]},
    "hidden": {"choices": ["16,16", "8"]},
    "sparsity": {"low": 0.0, "high": 0.9},
    "finetune_steps": 256,
}
SWEEP: dict[str, Any] = {
    "name": "tiny", "agent": {"name": "ppo", "train_steps": 1024}, "eval": {"episodes": 4},
    "seeds": [3, 4], "finetune": {"lr": 0.003, "batch_size": 64}, "space": "space.yaml",
    "baseline": {"sparsities": [0.5, 0.9]},
}


def _sweep(tmp_path: Path, space: dict[str, Any] | None = None, **changes: Any) -> Any:
    write_yaml(tmp_path / "space.yaml", {**SPACE, **(space or {})})
    data = {**SWEEP, "out": str(tmp_path / "out"), **changes}
    return load_sweep(write_yaml(tmp_path / "sweep.yaml", data))


def test_one_config_per_sparsity(tmp_path: Path) -> None:
    cfgs = baseline_configs(_sweep(tmp_path))
    assert [c.pruning.sparsity for c in cfgs] == [0.5, 0.9]
    for cfg in cfgs:
        assert isinstance(cfg, TrialConfig)
        assert cfg.agent.hidden == [16, 16]  # the widest architecture of the space
        assert (cfg.agent.name, cfg.agent.train_steps) == ("ppo", 1024)
        assert (cfg.pruning.method, cfg.pruning.schedule) == ("global_magnitude", "gradual")
        ft = cfg.pruning.finetune
        assert (ft.mode, ft.steps, ft.lr, ft.batch_size) == ("rl", 256, 0.003, 64)
        assert (cfg.eval.episodes, cfg.seed) == (4, 3)  # the sweep's first seed


@pytest.mark.parametrize(("finetune_steps", "baseline_steps", "expected"), [
    (256, None, 256),
    ({"choices": [128, 512, 256]}, None, 512),  # the largest budget the space can pick
    ({"low": 100, "high": 300, "int": True}, None, 300),
    ({"choices": [128, 512]}, 64, 64),  # baseline.finetune_steps wins
    ({"choices": [128, 512]}, 0, 0),
])
def test_finetune_steps_of_the_largest_budget(tmp_path: Path, finetune_steps: Any,
                                              baseline_steps: int | None,
                                              expected: int) -> None:
    baseline: dict[str, Any] = {"sparsities": [0.5]}
    if baseline_steps is not None:
        baseline["finetune_steps"] = baseline_steps
    sweep = _sweep(tmp_path, {"finetune_steps": finetune_steps}, baseline=baseline)
    (cfg,) = baseline_configs(sweep)
    assert cfg.pruning.finetune.steps == expected


@pytest.mark.parametrize(("hidden", "reference", "expected"), [
    ({"choices": ["16,16", "8"]}, None, [16, 16]),
    ({"choices": ["32", "16,8"]}, None, [32]),  # widest by total units: 32 > 24
    ("8,8,8", None, [8, 8, 8]),
    ({"choices": ["16,16", "8"]}, [8], [8]),  # reference_hidden wins
])
def test_reference_width(tmp_path: Path, hidden: Any, reference: list[int] | None,
                         expected: list[int]) -> None:
    sweep = _sweep(tmp_path, {"hidden": hidden}, reference_hidden=reference)
    assert all(c.agent.hidden == expected for c in baseline_configs(sweep))


def test_baseline_method_and_schedule_from_the_sweep(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, baseline={"sparsities": [0.3, 0.6, 0.95], "method": "magnitude",
                                       "schedule": "oneshot", "finetune_mode": "distill"})
    cfgs = baseline_configs(sweep)
    assert [c.pruning.sparsity for c in cfgs] == [0.3, 0.6, 0.95]
    assert {(c.pruning.method, c.pruning.schedule, c.pruning.finetune.mode)
            for c in cfgs} == {("magnitude", "oneshot", "distill")}


# --- run_baseline -------------------------------------------------------------------------

TINY_RUN: dict[str, Any] = {"agent": {"name": "ppo", "train_steps": 256, "hidden": [16, 16]},
                            "eval": {"episodes": 2}}


def _complete(study: Any) -> dict[float, Any]:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {trial_attrs(t)["config"]["pruning"]["sparsity"]: t for t in done}


def test_run_baseline_records_complete_trials_and_skips_recorded_ones(tmp_path: Path) -> None:
    space = {"finetune_steps": 64}
    logs: list[str] = []
    sweep = _sweep(tmp_path, space, baseline={"sparsities": [0.5]}, **TINY_RUN)
    run_baseline(sweep, log=logs.append)
    assert len(logs) == 1 and logs[0].startswith("baseline sparsity=0.500: params_nonzero=")

    logs.clear()
    sweep = _sweep(tmp_path, space, baseline={"sparsities": [0.5, 0.9]}, **TINY_RUN)
    run_baseline(sweep, log=logs.append)
    assert len(logs) == 1 and logs[0].startswith("baseline sparsity=0.900: ")  # 0.5 skipped

    trials = _complete(load_study(sweep.storage, "tiny.baseline"))
    assert sorted(trials) == [0.5, 0.9]
    dense = 4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2
    nonzero = {s: t.values[1] for s, t in trials.items()}
    assert nonzero[0.9] < nonzero[0.5] < dense
    for s, t in trials.items():
        attrs = trial_attrs(t)  # the one reader of a trial's record
        assert t.values == [attrs["return_mean"], float(attrs["params_nonzero"])]
        cfg = parse(TrialConfig, attrs["config"])  # a standalone trial config
        assert (cfg.pruning.sparsity, cfg.pruning.method) == (s, "global_magnitude")
        assert cfg.pruning.finetune.steps == 64
        assert Path(attrs["out_dir"], "metrics.json").is_file()
        assert Path(attrs["out_dir"]).is_relative_to(sweep.out.resolve())

    logs.clear()
    run_baseline(sweep, log=logs.append)  # all recorded: nothing runs
    assert logs == []
    assert len(load_study(sweep.storage, "tiny.baseline").trials) == 2


def test_run_baseline_records_a_failure_and_retries_it(tmp_path: Path) -> None:
    logs: list[str] = []
    sweep = _sweep(tmp_path, {"finetune_steps": 64}, baseline={"sparsities": [0.5]},
                   env={"id": "tests.rl.toy_envs:NanRewardEnv"}, **TINY_RUN)
    run_baseline(sweep, log=logs.append)
    study = load_study(sweep.storage, "tiny.baseline")  # the sweep's study name + .baseline
    (t,) = study.trials
    assert t.state == TrialState.FAIL
    assert trial_attrs(t)["fail_reason"].startswith("FloatingPointError: ")
    assert logs[0].startswith("baseline sparsity=0.500: FAIL (")
    run_baseline(sweep, log=logs.append)  # a failed sparsity is not recorded as done
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_a_second_sampler_seed_copies_the_baseline_it_shares(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nas_prune.trial.run as run_mod

    space = {"finetune_steps": 64}
    sweep = _sweep(tmp_path, space, baseline={"sparsities": [0.5]}, **TINY_RUN)
    run_baseline(sweep, log=lambda _: None)
    (first,) = _complete(load_study(sweep.storage, "tiny.baseline")).values()

    def no_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a trial ran")

    real = run_mod.run_trial
    monkeypatch.setattr(run_mod, "run_trial", no_run)
    write_yaml(tmp_path / "space.yaml", {**SPACE, **space})
    seed1 = load_sweep(tmp_path / "sweep.yaml", sampler_seed=1)
    assert seed1.study == "tiny-seed1"
    logs: list[str] = []
    run_baseline(seed1, log=logs.append)
    (copied,) = _complete(load_study(seed1.storage, "tiny-seed1.baseline")).values()
    assert copied.values == first.values
    assert trial_attrs(copied)["config"] == trial_attrs(first)["config"]
    src, own = (Path(trial_attrs(t)["out_dir"]) for t in (first, copied))
    assert own.is_relative_to(seed1.study_dir) and not own.is_relative_to(sweep.study_dir)
    assert sorted(p.name for p in own.iterdir()) == sorted(p.name for p in src.iterdir())
    assert (own / "metrics.json").read_bytes() == (src / "metrics.json").read_bytes()
    assert copied.user_attrs[COPIED_FROM] == f"tiny.baseline#{first.number}"
    assert "copied, not run again" in logs[0]

    # a sweep whose baseline config differs (more fine-tuning) runs its own trial
    monkeypatch.setattr(run_mod, "run_trial", real)
    write_yaml(tmp_path / "space.yaml", {**SPACE, "finetune_steps": 128})
    other = load_sweep(tmp_path / "sweep.yaml", sampler_seed=2)
    logs.clear()
    run_baseline(other, log=logs.append)
    (ran,) = _complete(load_study(other.storage, "tiny-seed2.baseline")).values()
    assert COPIED_FROM not in ran.user_attrs and "copied" not in logs[0]
    assert parse(TrialConfig, trial_attrs(ran)["config"]).pruning.finetune.steps == 128


def test_workers_run_the_sparsities_at_once_with_the_serial_figures(tmp_path: Path) -> None:
    space = {"finetune_steps": 64}
    runs = {}
    for workers in (1, 2):
        d = tmp_path / f"w{workers}"
        d.mkdir()
        sweep = _sweep(d, space, baseline={"sparsities": [0.5, 0.9]}, **TINY_RUN)
        logs: list[str] = []
        run_baseline(sweep, log=logs.append, workers=workers)
        assert len(logs) == 2 and all("params_nonzero=" in line for line in logs)
        runs[workers] = {s: (t.values, trial_attrs(t)["return_std"])
                         for s, t in _complete(load_study(sweep.storage, "tiny.baseline")).items()}
    assert sorted(runs[2]) == [0.5, 0.9]
    assert runs[2] == runs[1]  # deterministic per config, wherever it ran
