"""CLI smoke tests with tiny budgets: trial, evaluate, bad input, plain-torch export."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from tests.conftest import TINY_PPO, TINY_SAC, snippet_actions, write_yaml

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
    # a CNN student distilled from its dense teacher on a gradual schedule
    ("ppo", ["--network", "cnn", "--finetune-mode", "distill", "--schedule", "gradual"],
     (4 * 4 * 9 + 4) + (256 * 16 + 16) + (16 * 3 + 3)),
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
    mode = "distill" if "distill" in network else "rl"
    res = runner.invoke(app, ["trial", "--env", "MinAtar/Breakout-v1", "--agent", agent,
                              *network, *channels, "--hidden", "16", "--train-steps", "600",
                              "--finetune-steps", "100", "--episodes", "2", "--method",
                              "importance", "--sparsity", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    assert m["env_id"] == "MinAtar/Breakout-v1" and m["finetune_mode"] == mode
    assert m["params_dense"] == size
    assert m["hidden_pruned"] == [8]
    assert m.get("channels_pruned") == (None if "mlp" in network else [2])
    assert m.get("channels") == (None if "mlp" in network else [4])
    ev = runner.invoke(app, ["evaluate", str(out)])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["returns"] == m["returns"]


def test_atari_trial_smoke(tmp_path: Path) -> None:
    """An ALE game with the standard preprocessing (84 x 84 grayscale, 4 stacked frames,
    channels first) and the nature torso: a trial of a few hundred steps runs, prunes
    channels and saves a CNN policy that evaluate reloads."""
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    cfg = write_yaml(tmp_path / "atari.yaml", {
        "env": {"id": "ALE/Breakout-v5", "max_episode_steps": 60},
        "agent": {"name": "dqn", "network": "nature", "hidden": [32], "train_steps": 200,
                  "hyper": {"learning_starts": 100, "batch_size": 8, "buffer_size": 500,
                            "train_freq": 50, "gradient_steps": 2}},
        "pruning": {"method": "importance", "sparsity": 0.5, "finetune": {"steps": 50}},
        "eval": {"episodes": 1}})
    out = tmp_path / "t"
    res = runner.invoke(app, ["trial", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    assert (m["channels_pruned"], m["hidden_pruned"]) == ([16, 32, 32], [16])  # of 32,64,64; 32
    assert json.loads((out / "policy.json").read_text())["image"] == [4, 84, 84]
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


@pytest.mark.parametrize(("flags", "n_obs"), [
    (["--agent", "ppo", *TINY_FLAGS], 4),  # an MLP on CartPole
    (["--env", "tests.rl.toy_envs:BoolImageEnv", "--agent", "dqn", "--channels", "3",
      "--hidden", "5", "--train-steps", "300", "--finetune-steps", "50", "--episodes", "2"],
     32),  # a CNN on (4, 4, 2) frames, channels pruned
])
def test_exported_policy_loads_with_plain_torch(tmp_path: Path, flags: list[str],
                                                n_obs: int) -> None:
    import numpy as np

    from nas_prune.rl.heads import act
    from nas_prune.trial.artifacts import load_policy

    out = tmp_path / "t"
    res = runner.invoke(app, ["trial", "--method", "importance", "--sparsity", "0.5",
                              "--out", str(out), *flags])
    assert res.exit_code == 0, res.output
    obs = np.random.default_rng(0).integers(0, 2, (6, n_obs)).astype(np.float32)
    net, head = load_policy(out)
    assert snippet_actions(out, obs, tmp_path) == act(net, head, obs)[0].tolist()


def test_sac_trial_on_pendulum_and_its_plain_torch_reload(tmp_path: Path) -> None:
    import numpy as np

    from nas_prune.rl.heads import act
    from nas_prune.trial.artifacts import load_policy

    out = tmp_path / "t"
    res = runner.invoke(app, ["trial", str(write_yaml(tmp_path / "c.yaml", TINY_SAC)),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["agent"] == "sac" and metrics["params_training_only"] > metrics["params"]
    obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    net, head = load_policy(out)
    want = act(net, head, obs)[0]
    assert head.kind == "squashed" and want.shape == (6, 1)
    np.testing.assert_allclose(snippet_actions(out, obs, tmp_path), want, rtol=1e-6)


@pytest.mark.parametrize(("agent", "schedule", "method"), [
    ("dqn", "sparse", "rigl"), ("ppo", "sparse", "set"), ("ppo", "during", "importance")])
def test_minatar_cnn_trains_sparse_from_scratch(tmp_path: Path, agent: str, schedule: str,
                                                method: str) -> None:
    """Issue 15 on a CNN policy: a from-scratch trial pays its training, reaches its plan
    (structured during: channels and neurons removed at the end)."""
    pytest.importorskip("minatar")
    res = runner.invoke(app, ["trial", "--env", "MinAtar/Breakout-v1", "--agent", agent,
                              "--channels", "4", "--hidden", "16", "--train-steps", "600",
                              "--finetune-steps", "100", "--episodes", "2", "--schedule",
                              schedule, "--method", method, "--sparsity", "0.8",
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    m = _json_line(res.output)
    train = 600 if agent == "dqn" else 512  # PPO: whole rollouts of 8 x 32 steps
    assert (m["schedule"], m["dense_env_steps"], m["train_env_steps"]) == (schedule, 0, train)
    assert m["env_steps"] == m["train_env_steps"] + m["finetune_env_steps"]
    if method == "importance":
        assert (m["channels_pruned"], m["hidden_pruned"]) == ([1], [3])
    else:
        assert m["layer_sparsity"] == pytest.approx([0.8, 0.8, 0.8], abs=0.01)
