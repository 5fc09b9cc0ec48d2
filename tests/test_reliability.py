"""Failures isolated, kills survived, storage intact, workers without lock errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.search.storage import load_study
from tests.conftest import write_yaml
from tests.envs import SLOW_ENV

runner = CliRunner()


def _sweep_file(tmp: Path, *, env: dict | None = None, trials: int = 4, name: str = "rel",
                space: dict | None = None, **extra: object) -> Path:
    write_yaml(tmp / "space.yaml", space or {
        "method": {"choices": ["importance", "magnitude"]}, "hidden": "8",
        "sparsity": {"low": 0.0, "high": 0.8}, "finetune_steps": 256})
    data = {"name": name, "agent": {"name": "ppo", "train_steps": 512,
                                    "hyper": {"n_epochs": 2}},
            "eval": {"episodes": 3}, "space": "space.yaml", "trials": trials,
            "out": str(tmp / "out"), "reeval": {"seeds": 0}, "baseline": {"enabled": False},
            **extra}
    if env is not None:
        data["env"] = env
    return write_yaml(tmp / "sweep.yaml", data)


def _study(sweep_file: Path) -> optuna.Study:
    sw = load_sweep(sweep_file)
    return load_study(sw.storage, sw.study)


def _states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials():
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.mark.parametrize("env, reason", [
    ({"id": "tests.envs:RaisingCartPole", "kwargs": {"fail_at": 30}, "max_episode_steps": 500},
     "injected env failure"),
    ({"id": "tests.envs:NanRewardCartPole", "max_episode_steps": 500}, "nan"),
])
def test_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path: Path, env: dict,
                                                           reason: str) -> None:
    sweep = _sweep_file(tmp_path, env=env, trials=2)
    res = runner.invoke(app, ["sweep", str(sweep)])
    assert res.exit_code == 0, res.output
    study = _study(sweep)
    states = _states(study)
    assert states.get("COMPLETE", 0) == 0 and states["FAIL"] >= 2
    # a trial drawn but not run when the failure cap stopped the sweep is WAITING, not FAIL
    reasons = [t.user_attrs.get("fail_reason", "") for t in study.trials
               if t.state.name == "FAIL"]
    assert all(reason.lower() in r.lower() for r in reasons), reasons
    assert "0 COMPLETE" in res.output  # the report renders with an empty front


def _start_sweep(sweep: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nas_prune", "sweep", str(sweep),
                             "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_running(sweep: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    sw = load_sweep(sweep)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if Path(sw.storage).exists():
            running = [t for t in _study(sweep).trials if t.state.name == "RUNNING"]
            if running and Path(sw.out / "dense").exists():
                return
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.3)
    raise AssertionError("no trial started")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_sweep_resumes_to_exactly_n(tmp_path: Path, sig: signal.Signals) -> None:
    # 2 ms per env step: a trial lasts seconds, so one is caught running
    sweep = _sweep_file(tmp_path, trials=3, env=SLOW_ENV)
    proc = _start_sweep(sweep)
    _wait_running(sweep, proc)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    study = _study(sweep)
    killed = [t for t in study.trials if t.state.name in ("RUNNING", "FAIL")]
    assert len(killed) == 1
    if sig == signal.SIGTERM:  # a clean stop: the trial is told FAIL, never left RUNNING
        assert killed[0].state.name == "FAIL"
    res = runner.invoke(app, ["sweep", str(sweep), "--no-report"])
    assert res.exit_code == 0, res.output
    study = _study(sweep)
    states = _states(study)
    assert states == {"FAIL": 1, "COMPLETE": 3}
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == killed[0].number]
    if sig == signal.SIGKILL:
        assert len(retries) == 1 and retries[0].params == killed[0].params


def test_torn_journal_line_is_cut_and_the_sweep_resumes(tmp_path: Path) -> None:
    sweep = _sweep_file(tmp_path, trials=2)
    assert runner.invoke(app, ["sweep", str(sweep), "--trials", "1", "--no-report"]).exit_code == 0
    journal = Path(load_sweep(sweep).storage)
    with open(journal, "ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "dead", "trial_id": 0, "sta')
    res = runner.invoke(app, ["sweep", str(sweep), "--no-report"])
    assert res.exit_code == 0, res.output
    assert "half-written" in res.output
    assert _states(_study(sweep)) == {"COMPLETE": 2}
    assert journal.read_bytes().endswith(b"\n")


def test_four_workers_twenty_trials_no_lock_errors(tmp_path: Path) -> None:
    sweep = _sweep_file(tmp_path, trials=20, space={
        "method": "magnitude", "hidden": "4", "sparsity": {"low": 0.0, "high": 0.8},
        "finetune_steps": 0}, sampler="random")
    proc = subprocess.run([sys.executable, "-m", "nas_prune", "sweep", str(sweep),
                           "--workers", "4", "--no-report"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = proc.stdout + proc.stderr
    assert "locked" not in log.lower() and "Traceback" not in log
    study = _study(sweep)
    assert _states(study) == {"COMPLETE": 20}
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    # workers seed their samplers apart (NSGA-II children may copy a parent, random may not)
    assert len(set(params)) == len(params)


def test_unwritable_out_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sweep = _sweep_file(tmp_path, trials=1)
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(blocker / "sub")])
    assert res.exit_code == 2
    assert "out" in res.output and "cannot write" in res.output
    res = runner.invoke(app, ["trial", "--out", str(blocker / "t"), "--train-steps", "10"])
    assert res.exit_code == 2 and "--out" in res.output


def test_write_check_is_safe_for_workers_sharing_one_out(tmp_path: Path) -> None:
    # workers joining one study check the same out folder at the same moment: a shared probe
    # file let one worker delete the other's and fail with "No such file or directory"
    from concurrent.futures import ThreadPoolExecutor

    from nas_prune.util.files import check_writable

    def check_many(_: int) -> None:
        for _ in range(300):
            check_writable(tmp_path / "out", "out")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check_many, range(8)))
    assert list((tmp_path / "out").iterdir()) == []
