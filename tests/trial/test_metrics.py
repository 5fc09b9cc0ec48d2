"""TrialMetrics: the one schema of a trial's figures."""
from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from nas_prune.trial.metrics import TrialMetrics

BASE: dict[str, Any] = {
    "env_id": "CartPole-v1", "agent": "ppo", "method": "magnitude", "schedule": "oneshot",
    "finetune_mode": "rl", "hidden": [8], "layer_sparsity_plan": [0.5, 0.5],
    "params_dense": 58, "dense_return_mean": 20.0, "dense_return_std": 1.0,
    "dense_return_iqm": 20.0, "dense_cached": False, "dense_env_steps": 1024, "seed": 0,
    "eval_seed": 0, "dense_wall_s": 0.5}


def test_a_stopped_trials_metrics_dump_only_what_was_measured() -> None:
    m = TrialMetrics(**BASE, stopped_at_rung=-1, params_nonzero=30, stopped_at="final size")
    out = m.as_dict()
    assert list(out)[:len(BASE)] == list(BASE)  # schema order, the base first
    assert out["params_nonzero"] == 30 and "return_mean" not in out
    assert "q_mean" not in out  # unset: not written


def test_none_set_explicitly_is_written() -> None:
    # q_mean is None for policy-gradient heads: the column still exists
    out = TrialMetrics(**BASE, q_mean=None).as_dict()
    assert "q_mean" in out and out["q_mean"] is None


def test_unknown_or_mistyped_metrics_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="retrun_mean"):
        TrialMetrics(**BASE, retrun_mean=1.0)
    with pytest.raises(pydantic.ValidationError, match="params_dense"):
        TrialMetrics(**{**BASE, "params_dense": "many"})


def test_json_round_trip_is_exact() -> None:
    m = TrialMetrics(**BASE, returns=[1.0, 2.5], return_mean=1.75, rung_points=[[3.0, 1.0]])
    back = TrialMetrics.model_validate_json(json.dumps(m.as_dict()))
    assert back == m and back.as_dict() == m.as_dict()


def test_nan_dense_figures_survive_json() -> None:
    """A trial trained from scratch has NaN dense figures; the Ray backend sends metrics as
    JSON, which must bring them back (null would fail validation)."""
    import math

    nan = float("nan")
    m = TrialMetrics(**{**BASE, "dense_return_mean": nan, "dense_return_std": nan,
                        "dense_return_iqm": nan}, return_mean=1.0, params_nonzero=3)
    back = TrialMetrics.model_validate_json(m.model_dump_json(exclude_unset=True))
    assert math.isnan(back.dense_return_mean) and back.return_mean == 1.0
