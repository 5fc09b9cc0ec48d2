"""trial.deployed: bytes always, latency only when asked, int8 size on request; the
same-seed guarantee holds for every field but the measured ones."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import parse
from tests.conftest import TINY_PPO

# measured, not computed from the seed: left out of same-seed comparisons explicitly
MEASURED = {"wall_s", "dense_wall_s", "latency_us", "latency_iqr_us"}


def _cfg(**evaluation: Any) -> TrialConfig:
    data = copy.deepcopy(TINY_PPO)
    data["eval"].update(evaluation)
    return parse(TrialConfig, data)  # type: ignore[no-any-return]


def test_bytes_is_the_saved_policy_file_and_latency_is_off_by_default(tmp_path: Path) -> None:
    m = run_trial(_cfg(), out=tmp_path).metrics
    assert m.bytes == (tmp_path / "policy.safetensors").stat().st_size
    assert m.bytes_format == "fp32_safetensors"
    assert m.latency_us is None and "latency_us" not in m.as_dict()


def test_latency_is_measured_when_asked_and_the_rest_repeats() -> None:
    a = run_trial(_cfg(latency=True)).metrics.as_dict()
    b = run_trial(_cfg(latency=True)).metrics.as_dict()
    assert a["latency_method"] in ("onnxruntime", "torch")
    assert a["latency_us"] > 0 and a["latency_iqr_us"] >= 0
    assert {k: v for k, v in a.items() if k not in MEASURED} == {
        k: v for k, v in b.items() if k not in MEASURED}


def test_int8_bytes_are_the_quantized_onnx_file() -> None:
    pytest.importorskip("onnxruntime")
    fp32 = run_trial(_cfg()).metrics
    int8 = run_trial(_cfg(deploy_int8=True)).metrics
    assert int8.bytes_format == "int8_onnx" and int8.bytes is not None and int8.bytes > 0
    assert int8.bytes != fp32.bytes
    assert int8.weights_hash == fp32.weights_hash  # the format changes no training
