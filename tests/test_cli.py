"""CLI smoke tests with tiny budgets: trial, evaluate, bad input, plain-torch export."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from tests.conftest import TINY_PPO, write_yaml

runner = CliRunner()
TINY_FLAGS = ["--train-steps", "1024", "--finetune-steps", "256", "--episodes", "4",
              "--hidden", "16,16"]


def _json_line(output: str) -> dict:
    lines = [ln for ln in output.splitlines() if ln.startswith("{")]
    return json.loads(lines[0])


def test_trial_from_flags_writes_everything_and_evaluate_repeats(tmp_path: Path) -> None:
    out = tmp_path / "t1"
    res = runner.invoke(app, ["trial", "--env", "CartPole-v1", "--agent", "ppo", "--method",
                              "importance", "--sparsity", "0.75", "--out", str(out),
                              *TINY_FLAGS])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    assert m["hidden_pruned"] == [4, 4]
    for name in ("metrics.json", "policy.safetensors", "policy.json", "config.yaml"):
        assert (out / name).is_file()
    assert json.loads((out / "metrics.json").read_text())["returns"] == m["returns"]
    ev = runner.invoke(app, ["evaluate", str(out)])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["returns"] == m["returns"]


def test_trial_noise_and_latency_flags(tmp_path: Path) -> None:
    res = runner.invoke(app, ["trial", "--agent", "ppo", "--method", "importance", "--sparsity",
                              "0.5", "--noise-std", "0.5", "--latency", "--out",
                              str(tmp_path / "t"), *TINY_FLAGS])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    assert m["return_noise"] is not None and m["dense_return_noise"] is not None
    assert m["latency_us"] > 0 and m["latency_method"] in ("onnxruntime", "torch")
    saved = (tmp_path / "t" / "config.yaml").read_text()
    assert "noise_std: 0.5" in saved and "latency: true" in saved  # re-runs measure the same


@pytest.mark.parametrize(("agent", "network", "size"), [
    # the CNN chosen from the (10, 10, 4) image: Conv 4 x 3x3 -> 4 x 8 x 8 -> 16 -> 3
    ("dqn", [], (4 * 4 * 9 + 4) + (256 * 16 + 16) + (16 * 3 + 3)),
    ("ppo", ["--network", "cnn"], (4 * 4 * 9 + 4) + (256 * 16 + 16) + (16 * 3 + 3)),
    # an MLP over the flattened frame: 400 -> 16 -> 3
    ("dqn", ["--network", "mlp"], (400 * 16 + 16) + (16 * 3 + 3)),
])
def test_minatar_trial_smoke(tmp_path: Path, agent: str, network: list[str], size: int) -> None:
    """A MinAtar id from the [games] extra, no registration code; channel pruning of the
    CNN; evaluate repeats the trial's returns (the deployed policy only: PPO's critic is
    training-only)."""
    pytest.importorskip("minatar")
    out = tmp_path / agent
    channels = [] if "mlp" in network else ["--channels", "4"]
    res = runner.invoke(app, ["trial", "--env", "MinAtar/Breakout-v1", "--agent", agent,
                              *network, *channels, "--hidden", "16", "--train-steps", "600",
                              "--finetune-steps", "100", "--episodes", "2", "--method",
                              "importance", "--sparsity", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    assert m["env_id"] == "MinAtar/Breakout-v1"
    assert m["params_dense"] == size
    assert m["hidden_pruned"] == ([8] if "mlp" in network else [2, 8])
    ev = runner.invoke(app, ["evaluate", str(out)])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["returns"] == m["returns"]


def test_trial_from_yaml_with_per_layer_sparsity(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", TINY_PPO)
    res = runner.invoke(app, ["trial", str(cfg), "--method", "magnitude", "--sparsity",
                              "0.5,0.25,0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert _json_line(res.output)["layer_sparsity"] == pytest.approx([0.5, 0.25, 0.0],
                                                                     abs=0.01)


def test_seeds_flag_prints_summary(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", TINY_PPO)
    res = runner.invoke(app, ["trial", str(cfg), "--seeds", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert last["seeds"] == [0, 1] and len(last["ci95"]) == 2


@pytest.mark.parametrize("args, needle", [
    (["--agent", "a2c"], "agent.name"),
    (["--method", "snip"], "pruning.method"),
    (["--sparsity", "1.5"], "pruning.sparsity"),
    (["--sparsity", "x"], "pruning.sparsity"),
    (["--schedule", "weekly"], "pruning.schedule"),
    (["--env", "NoSuchEnv-v0"], "env.id"),
    (["--env", "no_such_module:Env"], "env.id"),
    (["--hidden", "0,4"], "agent.hidden"),
])
def test_bad_flags_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    res = runner.invoke(app, ["trial", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "o" / "metrics.json").exists()


@pytest.mark.parametrize("text, needle", [
    ("agent: {name: dqn, hiden: [4]}\n", "agent.hiden"),
    ("agent: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "mapping"),
    ("!!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
])
def test_bad_yaml_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = runner.invoke(app, ["trial", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert needle in res.output
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


def test_exported_policy_loads_with_plain_torch(tmp_path: Path) -> None:
    out = tmp_path / "t"
    res = runner.invoke(app, ["trial", "--agent", "ppo", "--method", "importance",
                              "--sparsity", "0.5", "--out", str(out), *TINY_FLAGS])
    assert res.exit_code == 0, res.output
    snippet = Path(__file__).parent / "export_snippet.py"
    # run in a fresh interpreter that cannot import nas_prune
    code = textwrap.dedent(f"""
        import sys
        sys.modules['nas_prune'] = None
        sys.argv = ['x', {str(out)!r}]
        exec(open({str(snippet)!r}).read())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    actions = json.loads(proc.stdout)
    import numpy as np

    from nas_prune.rl.heads import act
    from nas_prune.trial.artifacts import load_policy

    net, head = load_policy(out)
    obs = np.array([[0.01, -0.02, 0.03, 0.04], [0.1, 0.5, -0.1, -0.5]], dtype=np.float32)
    assert actions == act(net, head, obs)[0].tolist()
