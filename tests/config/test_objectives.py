"""config.objectives: one table of names and directions; a sweep's objective list
validated (return_mean first) and turning on what its trials must measure."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nas_prune.config.base import ConfigError
from nas_prune.config.objectives import DEFAULT_OBJECTIVES, DIRECTIONS, check_objectives, direction
from nas_prune.config.sweep import load_sweep


def test_every_objective_has_a_fixed_direction() -> None:
    assert set(DIRECTIONS) == {"return_mean", "params_nonzero", "macs_nonzero", "bytes",
                               "latency_us", "return_noise"}
    assert [direction(n) for n in DEFAULT_OBJECTIVES] == ["maximize", "minimize"]
    assert direction("return_noise") == "maximize" and direction("latency_us") == "minimize"


@pytest.mark.parametrize(("names", "match"), [
    (["return_mean", "flops"], "unknown objective 'flops'; allowed: return_mean, "
                               "params_nonzero, macs_nonzero, bytes, latency_us, return_noise"),
    (["params_nonzero", "return_mean"], "need 'return_mean' first"),
    (["return_mean"], "at least one more"),
    (["return_mean", "bytes", "bytes"], "twice"),
])
def test_bad_objective_lists_are_refused(names: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_objectives(names)


@pytest.mark.parametrize("names", [
    ["return_mean", "params_nonzero"], ["return_mean", "latency_us"],
    ["return_mean", "params_nonzero", "macs_nonzero", "bytes", "latency_us"],
])
def test_good_objective_lists_pass(names: list[str]) -> None:
    assert check_objectives(names) == names


def _sweep(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "space.yaml").write_text("sparsity: {low: 0.0, high: 0.9}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "space": "space.yaml", **extra}))
    return path


def test_the_default_is_return_and_params_and_measures_no_latency(tmp_path: Path) -> None:
    sw = load_sweep(_sweep(tmp_path))
    assert sw.objectives == list(DEFAULT_OBJECTIVES)
    assert sw.template(0).eval.latency is False


def test_latency_objective_turns_on_the_measurement(tmp_path: Path) -> None:
    sw = load_sweep(_sweep(tmp_path, objectives=["return_mean", "params_nonzero", "latency_us"]))
    assert sw.template(0).eval.latency is True


def test_return_noise_needs_noise(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="objectives: return_noise needs eval.noise_std > 0"):
        load_sweep(_sweep(tmp_path, objectives=["return_mean", "return_noise"]))
    sw = load_sweep(_sweep(tmp_path, objectives=["return_mean", "return_noise"],
                           eval={"noise_std": 0.3}))
    assert sw.template(0).eval.noise_std == 0.3
