"""Optuna workers on a real PostgreSQL server (started here on 127.0.0.1, stopped after):
two worker processes fill one study with exactly N trials, no duplicates."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from nas_prune.search.record import read as trial_attrs
from nas_prune.search.storage import load_study
from tests.conftest import write_yaml
from tests.envs import SLOW_ENV

REQUIRED = os.environ.get("NAS_PRUNE_REQUIRE_SERVERS") == "1"  # CI: fail, never skip


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # the server refuses to run as root: run its tools as the postgres user
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _pg_bin()
    if bindir is None:
        if REQUIRED:
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL not installed")
    # pytest's tmp folders are private to root; the postgres user needs its own folder
    root = Path(tempfile.mkdtemp(prefix="nas_prune_pg_"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                                 "-U", "postgres"]), check=True, capture_output=True)
    opts = f"-p {port} -k {data} -h 127.0.0.1"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                                 str(data / "log"), "-w", "start"]), check=True,
                   capture_output=True)
    try:
        subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p",
                                     str(port), "-U", "postgres", "nas"]), check=True,
                       capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/nas"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                     "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_fill_exactly_n_trials(pg_url: str, tmp_path: Path) -> None:
    write_yaml(tmp_path / "space.yaml", {"method": "magnitude", "hidden": "4",
                                         "sparsity": {"low": 0.0, "high": 0.8},
                                         "finetune_steps": 256})
    # SlowCartPole: trials last about a second, so both workers get some
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "pg", "env": SLOW_ENV,
        "agent": {"name": "ppo", "train_steps": 256, "hyper": {"n_epochs": 1}},
        "eval": {"episodes": 2}, "space": "space.yaml", "trials": 6, "sampler": "random",
        "out": str(tmp_path / "out"), "reeval": {"seeds": 0}, "baseline": {"enabled": False}})
    cmd = [sys.executable, "-m", "nas_prune", "worker", str(sweep), "--storage", pg_url]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trials = load_study(pg_url, "pg").trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    assert len({trial_attrs(t)["out_dir"] for t in complete}) == 6  # no trial ran twice
    assert all(t.state.name == "COMPLETE" or "surplus" in t.user_attrs.get("fail_reason", "")
               for t in trials)
    # both workers took part
    assert all("COMPLETE" in out for out in outputs), outputs


def test_two_postgres_workers_reproduce_the_one_process_sweep(pg_url: str,
                                                               tmp_path: Path) -> None:
    """Generation-synchronous sampling on a server storage (PostgreSQL advisory lock): two
    `worker` processes give the trials a single local process gives."""
    write_yaml(tmp_path / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]}, "hidden": {"choices": ["8", "4"]},
        "sparsity": {"low": 0.0, "high": 0.8}, "finetune_steps": 256})
    sweep = write_yaml(tmp_path / "sweep.yaml", {
        "name": "pgrep", "agent": {"name": "ppo", "train_steps": 512},
        "eval": {"episodes": 2}, "space": "space.yaml", "trials": 6,
        "out": str(tmp_path / "out"), "reeval": {"seeds": 0}, "baseline": {"enabled": False}})
    local = subprocess.run([sys.executable, "-m", "nas_prune", "sweep", str(sweep),
                            "--workers", "1", "--no-report", "--out", str(tmp_path / "local")],
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr
    cmd = [sys.executable, "-m", "nas_prune", "worker", str(sweep), "--storage", pg_url]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs

    def record(storage: str) -> list[tuple[object, ...]]:
        return [(t.number, t.state.name, t.params, t.values, trial_attrs(t)["weights_hash"])
                for t in load_study(storage, "pgrep").trials]

    served = record(pg_url)
    assert len(served) == 6 and served == record(str(tmp_path / "local" / "study.journal"))
