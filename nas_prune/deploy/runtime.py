"""Running an exported ONNX policy: its embedded spec and config, and an act function.

An exported file carries what evaluation needs in its ``metadata_props``, so the one file a
user ships can be checked on its own: ``nas_prune.policy`` (the trial's ``policy.json``:
sizes, activation, head, source SHA-256) and ``nas_prune.config`` (the trial's resolved
config, JSON: env, evaluation seed and episodes). Like a trial folder's ``config.yaml``, the
config names the env; an entry-point id imports that module, so evaluate files you trust.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_prune.config.base import parse
from nas_prune.config.trial import TrialConfig
from nas_prune.deploy.onnx import INPUT, DeployError, require
from nas_prune.deploy.session import session
from nas_prune.rl.evaluation import ActFn
from nas_prune.rl.heads import HEADS, Head, actions_from_output

__all__ = ["META_CONFIG", "META_POLICY", "OnnxPolicy", "embed", "load_onnx_policy",
           "onnx_act"]

META_POLICY, META_CONFIG = "nas_prune.policy", "nas_prune.config"


@dataclass(frozen=True)
class OnnxPolicy:
    """An exported policy ready to act: its session, head, trial config and spec."""

    session: Any
    head: Head
    config: TrialConfig
    spec: dict[str, Any]


def embed(model: bytes, spec: dict[str, Any], cfg: TrialConfig) -> bytes:
    """``model`` with the policy spec and trial config written into its metadata."""
    onnx = require("onnx")
    proto = onnx.load_from_string(model)
    meta = {META_POLICY: json.dumps(spec), META_CONFIG: cfg.model_dump_json()}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())


def load_onnx_policy(path: Path) -> OnnxPolicy:
    """Read an ONNX file written by ``nas-prune export``.

    Raises:
        DeployError: no such file, not an ONNX model, or no nas_prune metadata.
        ConfigError: the embedded config does not validate.
    """
    onnx = require("onnx")
    if not path.is_file():
        raise DeployError(f"evaluate: {path} not found")
    try:
        proto = onnx.load_from_string(path.read_bytes())
        onnx.checker.check_model(proto)
    except Exception as exc:  # protobuf and onnx raise several unrelated types here
        raise DeployError(f"evaluate: {path} is not a valid ONNX model "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                          ) from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if META_POLICY not in meta or META_CONFIG not in meta:
        raise DeployError(f"evaluate: {path} has no nas_prune metadata; write it with "
                          f"nas-prune export")
    try:
        spec, data = json.loads(meta[META_POLICY]), json.loads(meta[META_CONFIG])
    except json.JSONDecodeError as exc:
        raise DeployError(f"evaluate: {path}'s nas_prune metadata is not JSON ({exc})") from None
    head = spec.get("head") if isinstance(spec, dict) else None
    if not isinstance(head, dict) or head.get("kind") not in HEADS:
        raise DeployError(f"evaluate: {path}: head.kind must be one of {', '.join(HEADS)}")
    cfg: TrialConfig = parse(TrialConfig, data)
    return OnnxPolicy(session(proto.SerializeToString()), Head.from_json(head), cfg, spec)


def onnx_act(policy: OnnxPolicy) -> ActFn:
    """The act function of an exported policy: onnxruntime's forward, then the head's
    greedy / mean action exactly as ``rl.heads.act`` makes it from torch's output."""
    sess, head = policy.session, policy.head

    def run(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = sess.run(None, {INPUT: np.asarray(obs, dtype=np.float32)})[0]
        return actions_from_output(head, torch.from_numpy(out))

    return run
