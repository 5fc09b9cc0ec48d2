"""nas_prune.trial.dense_cache: what keys the dense agent, cache hits and misses, explicit
checkpoints, the cached dense evaluation, one trainer per key."""
from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from nas_prune.config.base import parse
from nas_prune.config.trial import TrialConfig
from nas_prune.rl.evaluation import EvalResult
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP
from nas_prune.trial import dense_cache
from nas_prune.trial.artifacts import save_tensors
from nas_prune.trial.dense_cache import (
    DENSE_FILE,
    dense_evaluation,
    dense_key,
    obtain_dense,
)
from tests.conftest import TINY_DQN, TINY_PPO

SMALL_PPO = copy.deepcopy(TINY_PPO)
SMALL_PPO["agent"]["train_steps"] = 256  # one rollout of 8 envs x 32 steps
SMALL_DQN = copy.deepcopy(TINY_DQN)
SMALL_DQN["agent"].update(train_steps=256, hyper={"learning_starts": 64, "train_freq": 64,
                                                  "gradient_steps": 4})


def _cfg(base: dict[str, Any], **changes: Any) -> TrialConfig:
    """``base`` with changes at ``__``-separated paths, e.g. ``agent__hidden=[8]``."""
    data = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return parse(TrialConfig, data)  # type: ignore[no-any-return]


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the key ------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "same"), [
    ({"pruning__sparsity": 0.9}, True),  # pruning does not touch the dense agent
    ({"pruning__method": "random"}, True),
    ({"pruning__finetune": {"steps": 64, "mode": "distill"}}, True),
    ({"eval__episodes": 50}, True),
    ({"threads": 2}, True),
    ({"device": "cpu"}, True),  # an MLP trains on the CPU whatever the device
    ({"seed": 1}, False),
    ({"agent__hidden": [8, 8]}, False),
    ({"agent__hidden": [16]}, False),
    ({"agent__train_steps": 512}, False),
    ({"agent__activation": "relu"}, False),
    ({"agent__hyper": {"lr": 3e-4}}, False),
    ({"env__max_episode_steps": 100}, False),
    ({"env__id": "Acrobot-v1"}, False),
])
def test_dense_key(change: dict[str, Any], same: bool) -> None:
    base = dense_key(_cfg(SMALL_PPO))
    assert (dense_key(_cfg(SMALL_PPO, **change)) == base) is same


def test_dense_key_has_the_device_only_for_a_cnn_on_cuda(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cnn = {**copy.deepcopy(SMALL_DQN), "env": {"id": "MinAtar/Breakout-v1"}}
    cnn["agent"]["network"] = "minatar"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = dense_key(_cfg(cnn, device="cpu"))
    assert dense_key(_cfg(cnn, device="auto")) == cpu  # auto without CUDA: the CPU's key
    mlp_cpu = dense_key(_cfg(SMALL_DQN, device="auto"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dense_key(_cfg(cnn, device="cpu")) == cpu
    assert dense_key(_cfg(cnn, device="auto")) != cpu  # CUDA rounds differently: own key
    assert dense_key(_cfg(cnn, device="cuda")) == dense_key(_cfg(cnn, device="auto"))
    assert dense_key(_cfg(SMALL_DQN, device="cuda")) == mlp_cpu


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_build_agent_trains_a_cnn_on_the_resolved_device(
        agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # CUDA faked: nothing touches the device before the first training forward
    from nas_prune.rl.optim.flatcnn import FlatCNN
    from nas_prune.rl.optim.flatnet import AutogradNet, FlatMLP

    base = SMALL_DQN if agent == "dqn" else SMALL_PPO
    cnn = {**copy.deepcopy(base), "env": {"id": "MinAtar/Breakout-v1"}}
    cnn["agent"]["network"] = "minatar"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for data, device, path in ((cnn, "auto", AutogradNet), (cnn, "cpu", FlatCNN),
                               (base, "cuda", FlatMLP)):
        built = dense_cache.build_agent(_cfg(data, device=device), 0)
        built.close()
        fast = built.trainer[built.policy]
        assert isinstance(fast, path), (device, type(fast))
        assert built.spec.device == ("cuda" if path is AutogradNet else "cpu")
        if isinstance(fast, AutogradNet):
            assert fast.device.type == "cuda"


def test_dense_key_spells_defaults_out() -> None:
    # writing a default explicitly is the same dense agent as leaving it out
    explicit = _cfg(SMALL_PPO, agent__activation="tanh", agent__hyper={"n_envs": 8})
    assert dense_key(explicit) == dense_key(_cfg(SMALL_PPO))


# --- hits and misses ----------------------------------------------------------------------

@pytest.mark.parametrize("base", [SMALL_PPO, SMALL_DQN], ids=["ppo", "dqn"])
def test_second_obtain_is_a_hit_with_identical_tensors(tmp_path: Path,
                                                       base: dict[str, Any]) -> None:
    cfg = _cfg(base)
    first = obtain_dense(cfg, tmp_path)
    assert not first.cached
    assert first.env_steps == 256
    assert first.wall_s > 0
    folder = tmp_path / dense_key(cfg)
    assert (folder / DENSE_FILE).is_file()
    meta = json.loads((folder / "dense.json").read_text())
    assert meta["seed"] == 0
    assert meta["config"]["hidden"] == [16, 16]

    second = obtain_dense(_cfg(base, pruning__sparsity=0.8), tmp_path)  # another trial
    assert second.cached
    assert (second.env_steps, second.wall_s) == (0, 0.0)
    assert _same_tensors(first.tensors, second.tensors)


@pytest.mark.parametrize("change", [{"seed": 1}, {"agent__hidden": [8, 8]}])
def test_another_seed_or_width_is_a_miss(tmp_path: Path, change: dict[str, Any]) -> None:
    first = obtain_dense(_cfg(SMALL_PPO), tmp_path)
    other = obtain_dense(_cfg(SMALL_PPO, **change), tmp_path)
    assert not other.cached
    assert other.env_steps == 256
    assert not _same_tensors(first.tensors, other.tensors)
    assert len([p for p in tmp_path.iterdir() if (p / DENSE_FILE).is_file()]) == 2
    assert obtain_dense(_cfg(SMALL_PPO), tmp_path).cached  # the first is still there


def test_no_cache_dir_trains_every_time_and_repeats(tmp_path: Path) -> None:
    a = obtain_dense(_cfg(SMALL_PPO))
    b = obtain_dense(_cfg(SMALL_PPO))
    assert not a.cached and not b.cached
    assert _same_tensors(a.tensors, b.tensors)  # same seed, same dense agent
    # and the cache stores exactly what training gives
    assert _same_tensors(obtain_dense(_cfg(SMALL_PPO), tmp_path).tensors, a.tensors)


def test_explicit_checkpoint_is_loaded_not_trained(tmp_path: Path) -> None:
    trained = obtain_dense(_cfg(SMALL_PPO)).tensors
    doubled = {k: v * 2 for k, v in trained.items()}
    path = tmp_path / "mine.safetensors"
    save_tensors(path, doubled)
    dense = obtain_dense(_cfg(SMALL_PPO, dense_checkpoint=str(path)), tmp_path / "cache")
    assert dense.cached
    assert (dense.env_steps, dense.wall_s) == (0, 0.0)
    assert _same_tensors(dense.tensors, doubled)
    assert not (tmp_path / "cache").exists()  # nothing trained, nothing cached


def test_one_trainer_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = dense_cache.train_dense

    def slow_train(cfg: TrialConfig) -> dict[str, torch.Tensor]:
        calls.append(1)
        time.sleep(0.2)  # the second trial arrives while the first trains
        return real(cfg)

    monkeypatch.setattr(dense_cache, "train_dense", slow_train)
    results: list[Any] = [None, None]

    def obtain(i: int) -> None:
        results[i] = obtain_dense(_cfg(SMALL_PPO), tmp_path)

    threads = [threading.Thread(target=obtain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(calls) == 1
    assert sorted(r.cached for r in results) == [False, True]
    assert _same_tensors(results[0].tensors, results[1].tensors)


# --- dense evaluation ---------------------------------------------------------------------

def _policy() -> tuple[MLP, Head]:
    torch.manual_seed(0)
    return MLP([4, 8, 2]), Head("categorical")


def _count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = dense_cache.evaluate

    def counted(*args: Any, **kwargs: Any) -> EvalResult:
        calls.append(kwargs["episodes"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dense_cache, "evaluate", counted)
    return calls


def test_dense_evaluation_is_computed_once_per_protocol(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_evaluations(monkeypatch)
    net, head = _policy()
    cfg = _cfg(SMALL_PPO)
    (tmp_path / dense_key(cfg)).mkdir()
    first = dense_evaluation(cfg, net, head, seed=3, cache_dir=tmp_path)
    again = dense_evaluation(_cfg(SMALL_PPO, pruning__sparsity=0.9), net, head, seed=3,
                             cache_dir=tmp_path)
    assert again == first
    assert calls == [5]
    assert len(first.returns) == 5
    assert (tmp_path / dense_key(cfg) / "eval-5-3.json").is_file()
    # another seed or episode count is another protocol
    dense_evaluation(cfg, net, head, seed=4, cache_dir=tmp_path)
    dense_evaluation(_cfg(SMALL_PPO, eval__episodes=2), net, head, seed=3, cache_dir=tmp_path)
    assert calls == [5, 5, 2]


def test_dense_evaluation_without_cache_always_evaluates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_evaluations(monkeypatch)
    net, head = _policy()
    a = dense_evaluation(_cfg(SMALL_PPO), net, head, seed=3, cache_dir=None)
    b = dense_evaluation(_cfg(SMALL_PPO), net, head, seed=3, cache_dir=None)
    assert a == b
    # an explicit checkpoint is not what the cache folder holds: not cached either
    ckpt = _cfg(SMALL_PPO, dense_checkpoint=str(tmp_path / "x.safetensors"))
    dense_evaluation(ckpt, net, head, seed=3, cache_dir=tmp_path)
    assert calls == [5, 5, 5]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_options_added_later_leave_old_cache_keys_alone(agent: str) -> None:
    """A release that adds an option (agent.network & co, PPO's ortho_init, DQN's
    random_warmup) keeps the keys
    of dense agents cached before it while the option is off: the key is the hash the
    earlier release computed, over the fields it had."""
    import hashlib

    from nas_prune.trial.dense_cache import dense_key

    cfg = parse(TrialConfig, {"agent": {"name": agent}})
    a = cfg.agent.model_dump(mode="json")
    for key in ("network", "channels", "kernels", "strides"):
        a.pop(key)
    for switch in ("ortho_init", "normalize_obs", "normalize_reward", "random_warmup"):
        a["hyper"].pop(switch, None)
    old = json.dumps({"env": cfg.env.model_dump(mode="json"), "agent": a, "seed": cfg.seed},
                     sort_keys=True).encode()
    assert dense_key(cfg) == hashlib.sha256(old).hexdigest()[:16]
    # switched on, each is a different dense agent
    switches = (("ortho_init", "normalize_obs", "normalize_reward") if agent == "ppo"
                else ("random_warmup",))
    keys = {dense_key(parse(TrialConfig, {"agent": {"name": agent, "hyper": {s: True}}}))
            for s in switches}
    assert dense_key(cfg) not in keys and len(keys) == len(switches)
