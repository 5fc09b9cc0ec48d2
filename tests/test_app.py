"""End-to-end sweeps with tiny budgets: report files agree with storage, best -> trial
reproduces, resume adds only the missing trials, stale trials are recovered."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.results import pareto
from nas_prune.search.record import METRICS_ATTR
from nas_prune.search.storage import load_study
from nas_prune.search.sweep import claim_study

runner = CliRunner()


def _states(sweep_file: Path) -> dict[str, int]:
    sw = load_sweep(sweep_file)
    study = load_study(sw.storage, sw.study)
    out: dict[str, int] = {}
    for t in study.get_trials():
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 4-trial sweep with baseline and report, shared by the tests below."""
    from tests.conftest import write_yaml

    tmp = tmp_path_factory.mktemp("sweep")
    write_yaml(tmp / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]},
        "hidden": {"choices": ["16,16", "8"]}, "sparsity": {"low": 0.0, "high": 0.9},
        "finetune_mode": {"choices": ["rl", "distill"]}, "finetune_steps": 256})
    sweep = write_yaml(tmp / "sweep.yaml", {
        "name": "tiny", "agent": {"name": "ppo", "train_steps": 1024},
        "eval": {"episodes": 4}, "space": "space.yaml", "trials": 4, "out": str(tmp / "out"),
        "reeval": {"seeds": 2, "episodes": 3}, "baseline": {"sparsities": [0.5, 0.9]}})
    res = runner.invoke(app, ["sweep", str(sweep)])
    assert res.exit_code == 0, res.output
    return sweep


def test_report_files_agree_with_storage(finished: Path) -> None:
    sw = load_sweep(finished)
    study = load_study(sw.storage, sw.study)
    trials = pd.read_csv(sw.study_dir / "report" / "trials.csv")
    assert len(trials) == len(study.trials) == 4
    stored = {t.number: t.values for t in study.trials}
    for _, row in trials.iterrows():
        assert row["return_mean"] == pytest.approx(stored[row["number"]][0])
        assert row["params_nonzero"] == stored[row["number"]][1]
    front = pd.read_csv(sw.study_dir / "report" / "pareto.csv")
    # the report's front is the front of the re-evaluated figures of the raw front
    raw = pareto.front_indices([t.values[1] for t in study.trials],
                               [t.values[0] for t in study.trials])
    raw_numbers = {study.trials[i].number for i in raw}
    assert set(front["number"]) <= raw_numbers
    re = front[["params_nonzero", "reeval_mean"]].to_numpy()
    assert len(pareto.front_indices(re[:, 0], re[:, 1])) == len(front)
    assert list(front["params_nonzero"]) == sorted(front["params_nonzero"])
    for name in ("report.html", "pareto.png"):
        assert (sw.study_dir / "report" / name).stat().st_size > 1000
    baseline = load_study(sw.storage, sw.study + ".baseline")
    assert len(baseline.trials) == 2


def test_the_report_re_evaluates_the_dense_agents_beside_the_front(finished: Path) -> None:
    from nas_prune.results.reeval import DENSE_REEVAL_ATTR
    from nas_prune.results.summary import summarize

    sw = load_sweep(finished)
    study = load_study(sw.storage, sw.study)
    store = study.user_attrs[DENSE_REEVAL_ATTR]  # written by the sweep's report
    s = summarize(sw.storage, sw.study)
    dense, front = s.data.dense, s.data.front
    assert set(dense["out_dir"]) and dense["reeval_iqm"].notna().all()
    assert len(store) == len(dense)  # one dense agent per width here, each re-evaluated
    assert (dense["reeval_episodes"] == 2 * 3).all()
    for _, row in front.iterrows():  # % of the dense agent of the point's own width
        ref = dense[dense["hidden"].astype(str) == str(row["hidden"])]["reeval_iqm"].iloc[0]
        if ref:
            assert row["reeval_iqm_pct_dense"] == pytest.approx(100 * row["reeval_iqm"] / ref)
    text = (sw.study_dir / "report" / "report.html").read_text()
    assert "re-evaluated on 6 fresh episodes" in text and "IQM % of dense" in text


def test_a_trials_metrics_are_one_storage_write(finished: Path) -> None:
    sw = load_sweep(finished)
    for t in load_study(sw.storage, sw.study).trials:
        metrics = t.user_attrs[METRICS_ATTR]
        assert metrics["return_mean"] == t.values[0]
        assert "return_mean" not in t.user_attrs  # not written a second time on its own
        # the config and the trial folder ride in the same write
        assert "config" not in t.user_attrs and "out_dir" not in t.user_attrs
        assert metrics["config"]["seed"] == metrics["seed"]
        assert Path(metrics["out_dir"]).is_dir()


def test_best_then_trial_reproduces(finished: Path, tmp_path: Path) -> None:
    best = tmp_path / "best.yaml"
    res = runner.invoke(app, ["best", str(finished), "--knee", "--out", str(best)])
    assert res.exit_code == 0, res.output
    chosen = json.loads(res.output.strip().splitlines()[-1])
    rerun = runner.invoke(app, ["trial", str(best), "--out", str(tmp_path / "rerun")])
    assert rerun.exit_code == 0, rerun.output
    m = json.loads([ln for ln in rerun.output.splitlines() if ln.startswith("{")][0])
    assert m["return_mean"] == chosen["return_mean"]
    assert m["params_nonzero"] == chosen["params_nonzero"]


def test_the_reports_reuse_commands_run_as_written(finished: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import html
    import re
    import shlex

    sw = load_sweep(finished)
    page = (sw.study_dir / "report" / "report.html").read_text(encoding="utf-8")
    found = re.search(r'<pre id="reuse">(.*?)</pre>', page, re.S)
    assert found is not None
    best, trial, export = [shlex.split(c) for c in html.unescape(found.group(1)).splitlines()]
    monkeypatch.chdir(tmp_path)  # the commands write best.yaml and runs/ where they run
    res = runner.invoke(app, best[1:])  # [0] is the console script, nas-prune
    assert res.exit_code == 0, res.output
    chosen = json.loads(res.output.strip().splitlines()[-1])
    front = pd.read_csv(sw.study_dir / "report" / "pareto.csv")
    knee = front[front["number"] == chosen["trial"]].iloc[0]
    assert trial == ["nas-prune", "trial", "best.yaml", "--cache", str(sw.dense_cache.resolve())]
    rerun = runner.invoke(app, trial[1:])
    assert rerun.exit_code == 0, rerun.output
    m = json.loads([ln for ln in rerun.output.splitlines() if ln.startswith("{")][0])
    assert m["return_mean"] == chosen["return_mean"]
    # export (its own verb) gets the knee's trial folder, which holds the policy
    assert export[:2] == ["nas-prune", "export"] and export[3:] == ["--format", "onnx"]
    assert export[2] == knee["out_dir"]
    assert (Path(export[2]) / "policy.safetensors").is_file()


def test_best_constraint_nobody_meets_names_closest(finished: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["best", str(finished), "--max-params", "1",
                              "--out", str(tmp_path / "b.yaml")])
    assert res.exit_code == 2
    assert "closest" in res.output
    assert not (tmp_path / "b.yaml").exists()


def test_resume_adds_only_missing_trials(tiny_sweep: Path) -> None:
    res = runner.invoke(app, ["sweep", str(tiny_sweep), "--trials", "2", "--no-report"])
    assert res.exit_code == 0, res.output
    sw = load_sweep(tiny_sweep)
    before = {t.number: (t.values, t.datetime_start) for t in load_study(sw.storage,
                                                                          sw.study).trials}
    res = runner.invoke(app, ["sweep", str(tiny_sweep), "--trials", "4", "--no-report"])
    assert res.exit_code == 0, res.output
    after = load_study(sw.storage, sw.study).trials
    assert len(after) == 4
    for t in after[:2]:
        assert (t.values, t.datetime_start) == before[t.number]


def test_stale_running_trial_is_failed_and_retried(tiny_sweep: Path) -> None:
    sw = load_sweep(tiny_sweep)
    study = claim_study(sw, 4)
    ghost = study.ask()  # a worker that died mid-trial leaves this RUNNING
    ghost.suggest_categorical("method", ["importance", "magnitude"])
    res = runner.invoke(app, ["sweep", str(tiny_sweep), "--trials", "3", "--no-report"])
    assert res.exit_code == 0, res.output
    trials = load_study(sw.storage, sw.study).trials
    assert trials[0].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].params["method"] == trials[0].params["method"]
    assert _states(tiny_sweep) == {"FAIL": 1, "COMPLETE": 3}


def test_report_on_missing_study_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--storage", str(tmp_path / "x.journal"),
                              "--study", "nope"])
    assert res.exit_code == 2
    assert "no study 'nope'" in res.output


def test_report_after_resume_equals_report_before(finished: Path) -> None:
    sw = load_sweep(finished)
    before = (sw.study_dir / "report" / "pareto.csv").read_text()
    res = runner.invoke(app, ["sweep", str(finished)])  # resume: nothing left to run
    assert res.exit_code == 0, res.output
    assert len(load_study(sw.storage, sw.study).trials) == 4
    assert (sw.study_dir / "report" / "pareto.csv").read_text() == before


def test_report_refuses_a_modified_front_checkpoint(finished: Path, tmp_path: Path) -> None:
    import shutil

    sw = load_sweep(finished)
    front = pd.read_csv(sw.study_dir / "report" / "pareto.csv")
    path = Path(front.iloc[0]["out_dir"]) / "policy.safetensors"
    backup = tmp_path / "backup"
    shutil.copy(path, backup)
    try:
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01  # one bit of one weight
        path.write_bytes(bytes(data))
        res = runner.invoke(app, ["report", str(finished), "--out", str(tmp_path / "r")])
        assert res.exit_code == 2
        assert "SHA-256" in res.output
    finally:
        shutil.copy(backup, path)


def test_early_stopping_default_on_optuna_only_and_explicit_request_checked(
        tmp_path: Path) -> None:
    from nas_prune.config.base import ConfigError

    (tmp_path / "space.yaml").write_text("method: magnitude\nsparsity: {low: 0.1, high: 0.5}\n")
    base = "name: s\nspace: space.yaml\ntrials: 2\n"
    (tmp_path / "a.yaml").write_text(base)
    assert load_sweep(tmp_path / "a.yaml").config.early_stop.enabled  # on by default
    (tmp_path / "b.yaml").write_text(base + "backend: ray\n")
    assert not load_sweep(tmp_path / "b.yaml").config.early_stop.requested()  # ray: off
    (tmp_path / "c.yaml").write_text(base + "backend: ray\nearly_stop: {enabled: true}\n")
    with pytest.raises((ConfigError, ValueError), match="early_stop"):
        load_sweep(tmp_path / "c.yaml")
