"""Trained tiny trials, one per head kind, shared by the deploy tests (each trains in ~1 s)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas_prune.config.base import parse
from nas_prune.config.trial import TrialConfig
from nas_prune.trial.run import run_trial
from tests.conftest import TINY_DQN, TINY_PPO, TINY_SAC

TRIALS: dict[str, dict[str, Any]] = {
    "categorical": {**TINY_PPO, "env": {"id": "CartPole-v1"}},
    "q": {**TINY_DQN, "env": {"id": "CartPole-v1"}},
    "gaussian": {**TINY_PPO, "env": {"id": "Pendulum-v1"}, "eval": {"episodes": 3}},
    "squashed": TINY_SAC,
}


@pytest.fixture(scope="session")
def trial_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Head kind -> a finished trial folder (config.yaml, policy.*, metrics.json)."""
    out = {}
    for kind, data in TRIALS.items():
        out[kind] = tmp_path_factory.mktemp(f"trial_{kind}")
        run_trial(parse(TrialConfig, data), out=out[kind])
    return out
