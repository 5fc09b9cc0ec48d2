"""Shared fixtures: tiny-budget configs so every test runs in seconds on one core."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

torch.set_num_threads(1)

TINY_PPO: dict[str, Any] = {
    "agent": {"name": "ppo", "hidden": [16, 16], "train_steps": 1024},
    "pruning": {"method": "importance", "sparsity": 0.5, "finetune": {"steps": 512}},
    "eval": {"episodes": 5},
}
TINY_SAC: dict[str, Any] = {
    "env": {"id": "Pendulum-v1"},
    "agent": {"name": "sac", "hidden": [16, 16], "train_steps": 400,
              "hyper": {"learning_starts": 100, "batch_size": 32, "buffer_size": 5000,
                        "critic_hidden": [16, 16]}},
    "pruning": {"method": "magnitude", "sparsity": 0.5, "finetune": {"steps": 200}},
    "eval": {"episodes": 3},
}
TINY_DQN: dict[str, Any] = {
    "agent": {"name": "dqn", "hidden": [16, 16], "train_steps": 800,
              "hyper": {"learning_starts": 200, "train_freq": 64, "gradient_steps": 8}},
    "pruning": {"method": "magnitude", "sparsity": 0.5, "finetune": {"steps": 300}},
    "eval": {"episodes": 5},
}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML and return the path."""
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def tiny_sweep(tmp_path: Path) -> Path:
    """A 4-trial PPO sweep file with tiny budgets, its space beside it."""
    write_yaml(tmp_path / "space.yaml", {
        "method": {"choices": ["importance", "magnitude"]},
        "hidden": {"choices": ["16,16", "8"]},
        "sparsity": {"low": 0.0, "high": 0.9},
        "finetune_mode": {"choices": ["rl", "distill"]},
        "finetune_steps": 256,
    })
    return write_yaml(tmp_path / "sweep.yaml", {
        "name": "tiny", "agent": {"name": "ppo", "train_steps": 1024},
        "eval": {"episodes": 4}, "space": "space.yaml", "trials": 4,
        "out": str(tmp_path / "out"), "reeval": {"seeds": 2, "episodes": 3},
        "baseline": {"sparsities": [0.5, 0.9]},
    })


def snippet_actions(out: Path, obs: Any, tmp_path: Path) -> list[Any]:
    """The README's plain-torch snippet's actions for ``obs`` from the trial folder ``out``."""
    (tmp_path / "obs.json").write_text(json.dumps(obs.tolist()))
    snippet = Path(__file__).parent / "export_snippet.py"
    # run in a fresh interpreter that cannot import nas_prune
    code = textwrap.dedent(f"""
        import sys
        sys.modules['nas_prune'] = None
        sys.argv = ['x', {str(out)!r}, {str(tmp_path / "obs.json")!r}]
        exec(open({str(snippet)!r}).read())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]
