"""nas_prune.deploy.export and ``nas-prune export`` / ``evaluate FILE.onnx``: exported files
are checked, self-contained, and evaluate to the trial's returns; bad input is one line."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from nas_prune.cli import app  # noqa: E402
from nas_prune.deploy.export import CHECK_ATOL, check_onnx, export_trial  # noqa: E402
from nas_prune.deploy.onnx import DeployError, to_onnx  # noqa: E402
from nas_prune.deploy.runtime import META_CONFIG, META_POLICY  # noqa: E402
from nas_prune.rl.networks import MLP  # noqa: E402
from nas_prune.trial.artifacts import load_policy  # noqa: E402

runner = CliRunner()


def _cli(*args: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _trial_returns(directory: Path) -> list[float]:
    return json.loads((directory / "metrics.json").read_text())["returns"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["categorical", "q", "gaussian", "squashed"])
def test_evaluate_onnx_gives_the_trials_returns(kind: str, trial_dirs: dict[str, Path]) -> None:
    directory = trial_dirs[kind]
    row = _cli("export", str(directory))
    path = Path(row["out"])
    assert path == directory / "export" / "policy.onnx" and path.stat().st_size == row["bytes"]
    assert row["check"]["states"] == 1024 and row["check"]["max_abs_diff"] <= CHECK_ATOL
    got = _cli("evaluate", str(path))["returns"]
    want = _trial_returns(directory)
    if kind in ("gaussian", "squashed"):
        # continuous actions: onnxruntime's 1e-7 rounding differences move a pendulum a
        # little; greedy heads pick identical actions
        np.testing.assert_allclose(got, want, rtol=1e-6)
    else:
        assert got == want


def test_exported_file_carries_spec_and_config(trial_dirs: dict[str, Path],
                                               tmp_path: Path) -> None:
    directory = trial_dirs["categorical"]
    out = tmp_path / "ship" / "p.onnx"
    export_trial(directory, out=out)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta[META_POLICY]) == json.loads((directory / "policy.json").read_text())
    assert json.loads(meta[META_CONFIG])["env"]["id"] == "CartPole-v1"
    # moved away from its trial folder it still evaluates on its own
    alone = tmp_path / "alone.onnx"
    shutil.move(out, alone)
    assert _cli("evaluate", str(alone), "--episodes", "2")["episodes"] == 2


def test_int8_export_evaluates_and_records_the_return_drop(trial_dirs: dict[str, Path]) -> None:
    directory = trial_dirs["categorical"]
    row = _cli("export", str(directory), "--int8")
    q = row["int8"]
    assert Path(row["out"]).name == "policy.int8.onnx"
    assert q["return_mean_fp32"] == pytest.approx(np.mean(_trial_returns(directory)))
    assert q["return_drop"] == pytest.approx(q["return_mean_fp32"] - q["return_mean_int8"])
    assert q["calibration_states"] == 1024 and q["quantization"].startswith("static")
    assert _cli("evaluate", row["out"])["return_mean"] == pytest.approx(q["return_mean_int8"])
    ops = {n.op_type for n in onnx.load(row["out"]).graph.node}
    assert "QuantizeLinear" in ops


def test_safetensors_export_holds_the_weights_and_metadata(trial_dirs: dict[str, Path]) -> None:
    from safetensors import safe_open

    directory = trial_dirs["q"]
    row = _cli("export", str(directory), "--format", "safetensors")
    net, _ = load_policy(directory)
    with safe_open(row["out"], "pt") as f:
        meta = f.metadata()
        for key, value in net.state_dict().items():
            assert torch.equal(f.get_tensor(key), value)
    assert json.loads(meta[META_POLICY])["sha256"] == json.loads(
        (directory / "policy.json").read_text())["sha256"]
    assert row["bytes"] > row["fp32_safetensors_bytes"]  # the same tensors plus metadata


def test_check_refuses_a_graph_that_computes_something_else() -> None:
    torch.manual_seed(0)
    net, other = MLP([4, 8, 2]), MLP([4, 8, 2])
    states = np.random.default_rng(0).standard_normal((32, 4), dtype=np.float32)
    assert check_onnx(net, to_onnx(net), states) <= CHECK_ATOL
    with pytest.raises(DeployError, match="differ from torch"):
        check_onnx(net, to_onnx(other), states)


# --- bad input: exit 2, one line naming the problem (tests/test_bad_input.py's contract) ---

def _not_a_policy(tmp: Path, trial: Path) -> list[str]:
    shutil.copy(trial / "config.yaml", tmp / "config.yaml")
    return ["export", str(tmp)]


def _garbage_onnx(tmp: Path, trial: Path) -> list[str]:
    (tmp / "x.onnx").write_text("not a model")
    return ["evaluate", str(tmp / "x.onnx")]


def _foreign_onnx(tmp: Path, trial: Path) -> list[str]:
    to_onnx(MLP([4, 8, 2]), tmp / "plain.onnx")
    return ["evaluate", str(tmp / "plain.onnx")]


CASES = {
    "missing-dir": (lambda tmp, trial: ["export", str(tmp / "nope")], ["not a trial folder"]),
    "not-a-policy": (_not_a_policy, ["not a trial folder", "policy.json"]),
    "bad-format": (lambda tmp, trial: ["export", str(trial), "--format", "tflite"],
                   ["--format", "allowed: onnx, safetensors"]),
    "int8-safetensors": (lambda tmp, trial: ["export", str(trial), "--format", "safetensors",
                                             "--int8"], ["--int8", "--format onnx"]),
    "missing-onnx-file": (lambda tmp, trial: ["evaluate", str(tmp / "nope.onnx")], ["not found"]),
    "garbage-onnx": (_garbage_onnx, ["not a valid ONNX model"]),
    "onnx-without-metadata": (_foreign_onnx, ["no nas_prune metadata", "nas-prune export"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2(case: str, trial_dirs: dict[str, Path],
                                      tmp_path: Path) -> None:
    build, needles = CASES[case]
    res = runner.invoke(app, build(tmp_path, trial_dirs["categorical"]))
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and all(n in lines[0] for n in needles), lines[0]


def test_missing_extra_is_one_line_naming_the_install(trial_dirs: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    res = runner.invoke(app, ["export", str(trial_dirs["categorical"])])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == ('error: export: onnx is not installed; run '
                                  'pip install -e ".[deploy]"')
