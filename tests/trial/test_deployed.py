"""trial.deployed: bytes always, latency only when asked, int8 size on request; the
same-seed guarantee holds for every field but the measured ones; a SAC trial deploys,
saves and counts its actor's mean rows only, and an older 2A-output policy still loads."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nas_prune.trial.run as run_module
from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import parse
from nas_prune.pruning.counting import count, count_dense
from nas_prune.rl.heads import act
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.artifacts import load_policy, load_tensors
from nas_prune.trial.deployed import deployed_policy
from tests.conftest import TINY_PPO, TINY_SAC, snippet_actions

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


def _spy_on_deployed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[PrunableNet, PrunableNet]]:
    """(deployed copy, a copy of the net it was cut from) for every cut a trial makes."""
    cuts: list[tuple[PrunableNet, PrunableNet]] = []

    def spy(agent: Any, net: PrunableNet, *, remove_units: bool) -> PrunableNet:
        small = deployed_policy(agent, net, remove_units=remove_units)
        cuts.append((small, copy.deepcopy(net)))
        return small

    monkeypatch.setattr(run_module, "deployed_policy", spy)
    return cuts


@pytest.mark.parametrize("method", ["magnitude", "importance"])  # unstructured, structured
def test_sac_deploys_saves_and_counts_its_mean_rows_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The actor trains with A means and A log-stds; the trial's policy, its saved
    checkpoint, its counts, the ONNX export and the plain-torch snippet all have the A means
    only (Pendulum: A = 1) and act as the actor does."""
    pytest.importorskip("onnxruntime")
    from nas_prune.deploy.export import export_trial
    from nas_prune.deploy.runtime import load_onnx_policy, onnx_act

    cuts = _spy_on_deployed(monkeypatch)
    data = copy.deepcopy(TINY_SAC)
    data["pruning"]["method"] = method
    data["eval"]["latency"] = method == "importance"  # the latency path sees it too
    out = tmp_path / "t"
    result = run_trial(parse(TrialConfig, data), out=out)
    actor = next(net for small, net in cuts if small is result.policy)  # the trained actor
    assert actor.sizes[-1] == 2 and result.policy.sizes[-1] == 1
    hidden = [8, 8] if method == "importance" else [16, 16]
    assert result.policy.hidden == hidden
    m = result.metrics
    assert (m.params, m.params_dense) == (count_dense([3, *hidden, 1]), count_dense([3, 16, 16, 1]))
    assert m.params_nonzero == count(result.policy).params_nonzero <= m.params
    assert m.macs == 3 * hidden[0] + hidden[0] * hidden[1] + hidden[1]
    assert load_tensors(out / "policy.safetensors")["layers.2.weight"].shape == (1, hidden[1])
    assert json.loads((out / "policy.json").read_text())["sizes"] == [3, *hidden, 1]
    obs = (np.random.default_rng(0).normal(size=(16, 3)) * [1, 1, 4]).astype(np.float32)
    want = act(actor, result.head, obs)[0]  # the actor's deterministic actions
    saved, head = load_policy(out)
    np.testing.assert_allclose(act(saved, head, obs)[0], want, rtol=0, atol=1e-6)
    export_trial(out)
    exported = load_onnx_policy(out / "export" / "policy.onnx")
    np.testing.assert_allclose(onnx_act(exported)(obs)[0], want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(snippet_actions(out, obs, tmp_path), want, rtol=0, atol=1e-6)


def test_a_sac_trial_saved_with_its_log_std_rows_still_evaluates(tmp_path: Path) -> None:
    """A trial folder of a study written before: its policy has the actor's 2A outputs.
    ``nas-prune evaluate`` still gives the returns of the trial (the head reads the first
    A outputs)."""
    from nas_prune.app import evaluate_dir
    from nas_prune.rl.networks import MLP
    from nas_prune.trial.artifacts import save_policy

    out = tmp_path / "t"
    result = run_trial(parse(TrialConfig, TINY_SAC), out=out)
    policy = result.policy
    assert isinstance(policy, MLP)
    old = MLP([*policy.sizes[:-1], 2], policy.activation)  # the mean row, then a log-std
    with torch.no_grad():
        for a, b in zip(old.linears(), policy.linears()):
            a.weight[:len(b.weight)] = b.weight
            a.bias[:len(b.bias)] = b.bias
    save_policy(out, old, result.head)
    back, _ = load_policy(out)
    assert back.prunable_layers()[-1].n_units == 2
    got = evaluate_dir(out, episodes=None, seed=None)["returns"]
    np.testing.assert_allclose(got, result.metrics.returns, rtol=1e-6)
