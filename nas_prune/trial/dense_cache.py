"""The dense agent of a trial: trained once per (env, agent, width, seed), cached as
safetensors, and reused by every trial that prunes it."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from pydantic import BaseModel

from nas_prune.config.trial import TrialConfig
from nas_prune.rl.agents import Agent, AgentSpec, agents
from nas_prune.rl.evaluation import EnvSpec, EvalResult, evaluate
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.artifacts import load_tensors, save_tensors
from nas_prune.trial.finetune import SnapshotKeeper
from nas_prune.util.device import resolve_device

__all__ = ["DENSE_FILE", "Dense", "build_agent", "dense_evaluation", "dense_key", "env_spec",
           "obtain_dense", "train_dense", "train_device"]

DENSE_FILE = "dense.safetensors"
# agent.hyper switches added after dense agents were cached: off, they leave keys alone
# (a cache made before them stays valid); switched on, a different dense agent
LATER_HYPER = ("ortho_init", "normalize_obs", "normalize_reward", "random_warmup")


@dataclass(frozen=True)
class Dense:
    """Weights of every network of the trained dense agent, and how they were obtained."""

    tensors: dict[str, torch.Tensor]
    cached: bool
    env_steps: int
    wall_s: float


def env_spec(cfg: TrialConfig) -> EnvSpec:
    """The EnvSpec of a trial config."""
    return EnvSpec(cfg.env.id, dict(cfg.env.kwargs), cfg.env.max_episode_steps)


def build_agent(cfg: TrialConfig, seed: int) -> Agent:
    """A fresh agent for this config (dense architecture), seeded with ``seed``."""
    cls = agents.get(cfg.agent.name)
    spec = AgentSpec(env=env_spec(cfg), hidden=list(cfg.agent.hidden or []),
                     activation=str(cfg.agent.activation), hyper=cls.Hyper(**cfg.agent.hyper),
                     seed=seed, train_steps=cfg.agent.train_steps,
                     network=str(cfg.agent.network), channels=tuple(cfg.agent.channels or ()),
                     kernels=tuple(cfg.agent.kernels or ()),
                     strides=tuple(cfg.agent.strides or ()), device=train_device(cfg))
    return cls(spec)


def train_device(cfg: TrialConfig) -> str:
    """Where this trial's networks train: ``cfg.device`` resolved for a CNN, the CPU for
    an MLP (its hand-written training path is CPU code).

    Raises:
        ValueError: ``device: cuda`` on a machine without CUDA (for either family).
    """
    device = resolve_device(cfg.device)
    return device if cfg.agent.network == "cnn" else "cpu"


def dense_key(cfg: TrialConfig) -> str:
    """What determines the dense agent: env, agent (name, width, hyper, budget), seed, and
    the device when it is CUDA (CUDA's conv kernels round differently from the CPU's, so
    its agents are not bit-identical to CPU ones; CPU keys stay as they were)."""
    agent = cfg.agent.model_dump(mode="json")
    for key in LATER_HYPER:  # added later: off keeps old keys
        if agent["hyper"].get(key) is False:
            agent["hyper"].pop(key)
    if agent["network"] == "mlp":  # the keys MLP agents had before CNNs existed: caches stay
        for key in ("network", "channels", "kernels", "strides"):
            agent.pop(key)
    fields: dict[str, object] = {
        "env": cfg.env.model_dump(mode="json"), "agent": agent, "seed": cfg.seed,
    }
    if train_device(cfg) != "cpu":
        fields["device"] = train_device(cfg)
    blob = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def obtain_dense(cfg: TrialConfig, cache_dir: Path | None = None) -> Dense:
    """Load the dense agent (explicit checkpoint, or cache hit) or train it (and cache it)."""
    if cfg.dense_checkpoint is not None:
        return Dense(load_tensors(Path(cfg.dense_checkpoint)), True, 0, 0.0)
    if cache_dir is None:
        return _train_timed(cfg, None)
    path = cache_dir / dense_key(cfg) / DENSE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # one trainer per key: concurrent trials needing the same dense agent wait for it
    with FileLock(str(path.parent / "train.lock")):
        if path.is_file():
            return Dense(load_tensors(path), True, 0, 0.0)
        return _train_timed(cfg, path)


def dense_evaluation(cfg: TrialConfig, net: PrunableNet, head: Head, *, seed: int,
                     cache_dir: Path | None) -> EvalResult:
    """The dense policy's final-protocol evaluation (``cfg.eval.episodes`` on ``seed``).

    Every trial pruning the same cached dense agent with the same evaluation protocol
    gets the same result, so it is computed once and kept beside the cached agent.
    """
    if cache_dir is None or cfg.dense_checkpoint is not None:
        return evaluate(net, head, env_spec(cfg), episodes=cfg.eval.episodes, seed=seed)
    path = cache_dir / dense_key(cfg) / f"eval-{cfg.eval.episodes}-{seed}.json"
    with FileLock(str(path.parent / "eval.lock")):
        if path.is_file():
            return EvalResult(**json.loads(path.read_text()))
        result = evaluate(net, head, env_spec(cfg), episodes=cfg.eval.episodes, seed=seed)
        path.write_text(json.dumps(result.__dict__))
        return result


def _train_timed(cfg: TrialConfig, path: Path | None) -> Dense:
    start = time.perf_counter()
    tensors = train_dense(cfg)
    if path is not None:
        save_tensors(path, tensors)
        meta = {"config": _dump(cfg.agent), "env": _dump(cfg.env), "seed": cfg.seed}
        (path.parent / "dense.json").write_text(json.dumps(meta, indent=2))
    return Dense(tensors, False, cfg.agent.train_steps, time.perf_counter() - start)


def train_dense(cfg: TrialConfig) -> dict[str, torch.Tensor]:
    """Train the dense agent; with snapshots on, return the best selection-scored state."""
    agent = build_agent(cfg, cfg.seed)
    try:
        keeper = SnapshotKeeper(cfg.agent.snapshot, agent, cfg.seed,
                                get_state=agent.state_tensors)
        agent.train(cfg.agent.train_steps, progress=keeper)
        if cfg.agent.snapshot.every_steps:
            keeper.check()
            assert keeper.best is not None
            return keeper.best[1]
        return agent.state_tensors()
    finally:
        agent.close()


def _dump(model: BaseModel) -> object:
    return model.model_dump(mode="json")
