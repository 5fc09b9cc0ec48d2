"""Ray Tune backend on a real local Ray cluster: a head on 127.0.0.1 plus a second node
joined to it; a 4-trial sweep runs across it via --address and the report is correct."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from nas_prune.search import record
from nas_prune.search.storage import load_study
from tests.conftest import write_yaml
from tests.envs import SLOW_ENV

REQUIRED = os.environ.get("NAS_PRUNE_REQUIRE_SERVERS") == "1"
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # Ray 2.60 turns token auth on by default


def _ray() -> str:
    exe = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    if not Path(exe).exists():
        if REQUIRED:
            pytest.fail("the ray CLI is not installed")
        pytest.skip("ray not installed")
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    ray = _ray()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = [ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
            "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"]
    node = [ray, "start", f"--address={address}", "--node-ip-address=127.0.0.1",
            "--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run(head, check=True, capture_output=True, env=ENV, timeout=120)
        subprocess.run(node, check=True, capture_output=True, env=ENV, timeout=120)
        yield address
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=ENV, timeout=120)


def test_ray_sweep_across_two_nodes(cluster: str, tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]}, "hidden": "8",
        "sparsity": {"low": 0.0, "high": 0.8}, "finetune_steps": 256})
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "raytiny", "env": SLOW_ENV, "agent": {"name": "ppo", "train_steps": 512,
                                     "hyper": {"n_epochs": 2}},
        "eval": {"episodes": 3}, "space": "space.yaml", "trials": 4, "backend": "ray",
        "out": str(tmp_path / "out"), "reeval": {"seeds": 1, "episodes": 3},
        "baseline": {"enabled": False}})
    proc = subprocess.run([sys.executable, "-m", "nas_prune", "sweep", str(sweep),
                           "--address", cluster, "--max-concurrent", "2"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = load_study(str(tmp_path / "out" / "study.journal"), "raytiny")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    assert len({t.user_attrs["ray_trial_id"] for t in complete}) == 4
    assert all("method" in t.params for t in complete)  # searched parameters recorded
    # one CPU per node and two trials at once: the trials ran on both nodes of the cluster
    assert len({record.read(t)["ray_node_id"] for t in complete}) == 2
    trials = pd.read_csv(tmp_path / "out" / "raytiny" / "report" / "trials.csv")
    assert len(trials) == 4
    stored = {t.number: t.values for t in study.trials}
    for _, row in trials.iterrows():
        assert row["return_mean"] == pytest.approx(stored[row["number"]][0])
    assert (tmp_path / "out" / "raytiny" / "report" / "report.html").stat().st_size > 1000


def test_interrupted_ray_sweep_is_restored_not_restarted(tmp_path: Path) -> None:
    import signal
    import time

    _ray()
    write_yaml(tmp_path / "space.yaml", {
        "method": "magnitude", "hidden": "8", "sparsity": {"low": 0.0, "high": 0.8},
        "finetune_steps": 2048})
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "rayresume", "env": SLOW_ENV, "agent": {"name": "ppo", "train_steps": 512,
                                       "hyper": {"n_epochs": 2}},
        "eval": {"episodes": 3}, "space": "space.yaml", "trials": 4, "backend": "ray",
        "sampler": "random", "out": str(tmp_path / "out"), "reeval": {"seeds": 0},
        "baseline": {"enabled": False}})
    cmd = [sys.executable, "-m", "nas_prune", "sweep", str(sweep), "--max-concurrent", "1",
           "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                            start_new_session=True)
    journal = tmp_path / "out" / "study.journal"
    deadline = time.time() + 300
    while time.time() < deadline:  # stop the driver once the first trial is recorded
        if journal.exists() and any(t.state.name == "COMPLETE"
                                    for t in load_study(str(journal), "rayresume").trials):
            break
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    first = {t.user_attrs["ray_trial_id"] for t in load_study(str(journal), "rayresume").trials}
    assert 1 <= len(first) < 4
    again = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    trials = load_study(str(journal), "rayresume").trials
    ids = [t.user_attrs["ray_trial_id"] for t in trials if t.state.name == "COMPLETE"]
    assert len(ids) == len(set(ids)) == 4
    assert first <= set(ids)  # restored: the finished trials were kept, not re-run
    # Tune's own loggers: only result.json (ResultGrid reads it); no CSV, no TensorBoard
    ray_dir = tmp_path / "out" / "rayresume" / "ray"
    assert len(list(ray_dir.rglob("result.json"))) >= 4
    assert not list(ray_dir.rglob("progress.csv"))
    assert not list(ray_dir.rglob("events.out.tfevents*"))


def test_tune_logger_switch_is_set_for_the_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from nas_prune.search.backends.ray_backend import _env_default

    key = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
    monkeypatch.delenv(key, raising=False)
    with _env_default(key, "1"):
        assert os.environ[key] == "1"
    assert key not in os.environ  # the caller's process is left as it was
    monkeypatch.setenv(key, "0")
    with _env_default(key, "1"):
        assert os.environ[key] == "0"  # a user's own setting wins
    assert os.environ[key] == "0"
