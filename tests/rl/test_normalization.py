"""Observation normalisation and reward scaling: the statistics, the input stage on every
path that runs the policy, freezing, and what a saved trial carries."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import parse
from nas_prune.rl.heads import act
from nas_prune.rl.networks import MLP
from nas_prune.rl.normalization import (
    CLIP,
    EPS,
    ObsNorm,
    RewardScaler,
    RunningMeanStd,
    attach_obs_norm,
    freeze_obs_norm,
)
from nas_prune.rl.optim.flatnet import FlatTrainer
from nas_prune.trial.artifacts import load_policy, load_tensors
from nas_prune.trial.dense_cache import DENSE_FILE, build_agent, dense_key
from tests.conftest import TINY_SAC, snippet_actions

NORM_PPO: dict[str, Any] = {
    "env": {"id": "Pendulum-v1"},
    "agent": {"name": "ppo", "hidden": [16, 16], "train_steps": 1024,
              "hyper": {"normalize_obs": True, "normalize_reward": True}},
    "pruning": {"method": "magnitude", "sparsity": 0.5, "finetune": {"steps": 512}},
    "eval": {"episodes": 3},
}


def _cfg(**pruning: Any) -> TrialConfig:
    data = copy.deepcopy(NORM_PPO)
    data["pruning"].update(pruning)
    return parse(TrialConfig, data)


def _batches(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(loc=[3.0, -50.0, 0.1], scale=[0.5, 20.0, 1e-3], size=(n, 3))
            for n in (1, 7, 64, 3)]


def test_running_stats_match_numpy_over_the_same_batches() -> None:
    stats = RunningMeanStd((3,))
    for batch in _batches():
        stats.update(batch)
    data = np.concatenate(_batches())
    np.testing.assert_allclose(stats.mean.numpy(), data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.var.numpy(), data.var(0), rtol=1e-5)
    assert float(stats.count) == len(data)


def test_frozen_stats_ignore_updates() -> None:
    norm = ObsNorm(3)
    norm.update(_batches()[2])
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    freeze_obs_norm(torch.nn.Module())  # a net without a stage: nothing to do
    norm.frozen = True
    norm.update(_batches(1)[2])
    assert all(torch.equal(before[k], v) for k, v in norm.state_dict().items())


def test_obs_norm_is_sb3s_transform_in_torch_and_numpy() -> None:
    norm = ObsNorm(3)
    norm.update(_batches()[2])
    x = np.concatenate(_batches(1)).astype(np.float32)
    x[0] = [1e6, -1e6, 0.0]  # clipped to +-CLIP
    mean, var = norm.mean.numpy(), norm.var.numpy()
    want = np.clip((x - mean) / np.sqrt(var + np.float32(EPS)), -CLIP, CLIP)
    np.testing.assert_allclose(norm(torch.from_numpy(x)).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(norm.normalize(x.copy()), norm(torch.from_numpy(x)).numpy(),
                               rtol=1e-6, atol=1e-6)  # torch's vector division: 1 ulp apart
    assert norm(torch.from_numpy(x))[0].abs().max() == CLIP


def _normalised_mlp(activation: str = "tanh") -> MLP:
    torch.manual_seed(0)
    net = MLP([3, 8, 8, 2], activation)
    attach_obs_norm(net, 3).update(np.concatenate(_batches()))
    return net


@pytest.mark.parametrize("activation", ["tanh", "gelu"])  # numpy acting / torch acting
def test_fast_path_applies_the_same_stage(activation: str) -> None:
    """FlatMLP's forward, its numpy acting and its hand-written backward see the stage the
    module's forward applies (one set of statistics: the net's buffers)."""
    net = _normalised_mlp(activation)
    trainer = FlatTrainer([net], lr=1e-3)
    x = torch.from_numpy(np.concatenate(_batches(2)).astype(np.float32))
    with torch.no_grad():
        want = net(x)
    fast = trainer[net]
    np.testing.assert_allclose(fast.act_forward(x.numpy()), want.numpy(), rtol=1e-5, atol=1e-6)
    out = fast.forward(x, record=True)
    torch.testing.assert_close(out, want)
    d_out = torch.randn_like(out)
    fast.backward(d_out)
    w0 = net.linears()[0].weight
    got = w0.grad.clone()  # type: ignore[union-attr]
    ref = copy.deepcopy(net)
    ref.zero_grad()
    (ref(x) * d_out).sum().backward()
    torch.testing.assert_close(got, ref.linears()[0].weight.grad)


def test_reward_scaler_divides_by_the_running_std_of_the_discounted_return() -> None:
    """SB3's norm_reward, by brute force: per env ret = gamma ret + r (0 after an episode
    ends, skipped on autoreset steps); rewards over sqrt(var of every ret so far + eps)."""
    gamma, rng = 0.9, np.random.default_rng(0)
    scaler = RewardScaler(2, gamma)
    ret, seen = np.zeros(2), []
    for t in range(20):
        r = rng.normal(5.0, 3.0, 2)
        valid = np.array([True, t % 7 != 0])
        done = np.array([t % 5 == 4, False])
        got = scaler(r, valid, done)
        ret = np.where(valid, ret * gamma + r, 0.0)
        seen += list(ret[valid])
        want = np.clip(r / np.sqrt(np.var(seen) + EPS), -CLIP, CLIP)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        ret[done] = 0.0


def test_ppo_updates_stats_while_training_and_freezes_them_for_finetuning() -> None:
    cfg = _cfg()
    agent = build_agent(cfg, 0)
    try:
        norm = agent.policy.obs_norm
        assert norm is not None and agent.reward_scaler is not None  # type: ignore[attr-defined]
        agent.train(768)  # 3 rollouts of 8 x 32: the stats take the first two
        assert float(norm.count) == 512
        state = agent.state_tensors()
        assert {"actor.obs_norm.mean", "reward_norm.var"} <= set(state)
        agent.begin_finetune()
        frozen = {k: v.clone() for k, v in state.items() if "norm" in k}
        first = agent.policy.prunable_layers()[0].weight
        weights = first.clone()
        agent.train(512)  # a fine-tune step: weights move, statistics do not
        after = agent.state_tensors()
        assert all(torch.equal(after[k], v) for k, v in frozen.items())
        assert not torch.equal(first, weights)
    finally:
        agent.close()


@pytest.mark.parametrize("mode", ["rl", "distill"])
def test_trial_keeps_the_dense_statistics_from_the_cache(tmp_path: Path, mode: str) -> None:
    """The dense cache stores the statistics with the weights; pruning, fine-tuning and
    the deployed (structured: shrunk) policy keep them unchanged."""
    cfg = _cfg(method="importance", finetune={"steps": 512, "mode": mode})
    result = run_trial(cfg, cache_dir=tmp_path)
    dense = load_tensors(tmp_path / dense_key(cfg) / DENSE_FILE)
    norm = result.policy.obs_norm
    assert norm is not None and float(norm.count) > 0
    assert torch.equal(norm.mean, dense["actor.obs_norm.mean"])
    assert torch.equal(norm.var, dense["actor.obs_norm.var"])
    assert "reward_norm.var" in dense
    assert result.metrics.params == sum(p.numel() for p in result.policy.parameters())


NORM_SAC: dict[str, Any] = {
    **TINY_SAC, "agent": {**TINY_SAC["agent"],
                          "hyper": {**TINY_SAC["agent"]["hyper"], "normalize_obs": True}}}


@pytest.mark.parametrize("agent", ["ppo", "sac"])
def test_export_reload_with_plain_torch_acts_as_the_trials_policy(tmp_path: Path,
                                                                  agent: str) -> None:
    """The must-show: the README snippet (no nas_prune) reloads a normalising policy and
    acts as the trial's own policy on the same observations; without the stage it would
    not."""
    out = tmp_path / "t"
    result = run_trial(_cfg() if agent == "ppo" else parse(TrialConfig, NORM_SAC), out=out)
    obs = (np.random.default_rng(0).normal(size=(8, 3)) * [1, 1, 6]).astype(np.float32)
    want = act(result.policy, result.head, obs)[0]
    np.testing.assert_allclose(np.asarray(snippet_actions(out, obs, tmp_path)), want,
                               rtol=1e-6, atol=1e-6)
    bare = copy.deepcopy(result.policy)
    bare.obs_norm = None
    assert not np.allclose(act(bare, result.head, obs)[0], want, atol=1e-3)
    spec = json.loads((out / "policy.json").read_text())
    assert spec["obs_norm"]["mean"] == result.policy.obs_norm.mean.tolist()  # type: ignore[union-attr]


def test_sac_statistics_follow_the_observations_acted_on_then_freeze() -> None:
    """SAC updates the actor's stage from every observation it acts on (numpy's mean/var
    over the same rows), its critics read the same statistics, and begin_finetune freezes
    them (a fine-tune round moves the weights, not the statistics)."""
    from nas_prune.rl.agents import agents

    cfg = parse(TrialConfig, NORM_SAC)
    agent = build_agent(cfg, 0)
    seen: list[np.ndarray] = []
    explore = agent._explore  # type: ignore[attr-defined]

    def record(obs: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(obs, np.float64).copy())
        return explore(obs)

    agent._explore = record  # type: ignore[attr-defined]
    agent.train(300)
    norm = agent.policy.obs_norm
    assert norm is not None and isinstance(agent, agents.get("sac"))
    rows = np.stack(seen)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), rows.var(0), rtol=1e-3, atol=1e-5)
    obs = rows[:4].astype(np.float32)
    np.testing.assert_allclose(agent.critic_input(obs), norm.normalize(obs))
    assert not np.allclose(agent.critic_input(obs), obs)
    agent.begin_finetune()
    weight = agent.policy.state_dict()["layers.0.weight"]
    before = (norm.mean.clone(), norm.var.clone(), weight.clone())
    agent.train(64)
    assert torch.equal(norm.mean, before[0]) and torch.equal(norm.var, before[1])
    assert not torch.equal(agent.policy.state_dict()["layers.0.weight"], before[2])
    agent.close()


def test_cli_trial_then_evaluate_reproduces_its_returns(tmp_path: Path) -> None:
    """A tiny ``nas-prune trial`` with both switches on, then ``nas-prune evaluate`` of the
    saved folder: the same returns (the statistics travel with the policy)."""
    from typer.testing import CliRunner

    from nas_prune.cli import app
    from tests.conftest import write_yaml

    runner, out = CliRunner(), tmp_path / "t"
    res = runner.invoke(app, ["trial", str(write_yaml(tmp_path / "c.yaml", NORM_PPO)),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    ev = runner.invoke(app, ["evaluate", str(out)])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["returns"] == metrics["returns"]
    net, _ = load_policy(out)
    assert net.obs_norm is not None and net.obs_norm.frozen and float(net.obs_norm.count) > 0


def test_onnx_export_carries_the_stage() -> None:
    pytest.importorskip("onnxruntime")
    from nas_prune.deploy.export import check_onnx
    from nas_prune.deploy.onnx import to_onnx

    net = _normalised_mlp()
    states = np.concatenate(_batches(3)).astype(np.float32)
    assert check_onnx(net, to_onnx(net), states) < 1e-4  # raises when outputs differ


def test_saved_statistics_must_match_the_spec(tmp_path: Path) -> None:
    from nas_prune.rl.heads import Head
    from nas_prune.trial.artifacts import CheckpointError, save_policy

    save_policy(tmp_path, _normalised_mlp(), Head("gaussian", [-1.0, -1.0], [1.0, 1.0]))
    spec = json.loads((tmp_path / "policy.json").read_text())
    spec["obs_norm"]["mean"][0] += 1.0
    (tmp_path / "policy.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match="observation statistics"):
        load_policy(tmp_path)


def test_shrunk_cnn_keeps_the_stage_through_save_and_load(tmp_path: Path) -> None:
    """Surgery copies the stage (the first layer keeps every input); a CNN's saved stage
    loads back and the reloaded policy gives the same outputs."""
    from nas_prune.pruning.surgery import shrink
    from nas_prune.rl.cnn import CNN
    from nas_prune.rl.heads import Head
    from nas_prune.trial.artifacts import save_policy

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cnn = CNN((2, 4, 4), [3], [3], [1], [5], 2)
    attach_obs_norm(cnn, 32).update(rng.random((50, 32)) * 5)
    cnn.set_unit_mask("convs.0", torch.tensor([True, False, True]))
    small = shrink(cnn)
    save_policy(tmp_path, small, Head("categorical"))
    back, _ = load_policy(tmp_path)
    x = torch.from_numpy(rng.random((4, 32)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(small(x), cnn(x))
        assert torch.equal(back(x), small(x))
    assert back.obs_norm is not None and torch.equal(back.obs_norm.mean, cnn.obs_norm.mean)  # type: ignore[union-attr]
