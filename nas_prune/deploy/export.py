"""``nas-prune export``: a trial folder's policy as one self-contained file, checked.

ONNX (fp32, or int8 by onnxruntime's static quantization calibrated on visited states) or
safetensors; both carry the policy spec and the trial config (ONNX in ``metadata_props``,
safetensors in its string metadata), so ``nas-prune evaluate FILE.onnx`` needs nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_prune.config.base import load_yaml, parse
from nas_prune.config.trial import TrialConfig
from nas_prune.deploy.latency import policy_bytes
from nas_prune.deploy.onnx import INPUT, DeployError, to_onnx
from nas_prune.deploy.quantize import int8_onnx
from nas_prune.deploy.runtime import META_CONFIG, META_POLICY, OnnxPolicy, embed, onnx_act
from nas_prune.deploy.session import session
from nas_prune.rl.envs import episode_seeds
from nas_prune.rl.evaluation import evaluate_fn, visited_states
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.artifacts import POLICY_SPEC, POLICY_WEIGHTS, load_policy
from nas_prune.trial.dense_cache import env_spec
from nas_prune.util.files import atomic_path

__all__ = ["CHECK_ATOL", "CHECK_RTOL", "FORMATS", "TrialPolicy", "check_onnx", "export_trial",
           "load_trial"]

FORMATS = ("onnx", "safetensors")
# onnxruntime's Gemm kernels sum in another order than torch's: measured max |diff| 1.8e-7
# (4-256-256-2, 1,024 rows); these bounds leave room for wider nets yet catch a wrong graph
CHECK_RTOL, CHECK_ATOL = 1e-4, 1e-5
CALIBRATION_STREAM = 3  # reset seeds disjoint from evaluation (0), selection (1), re-eval (2)


@dataclass(frozen=True)
class TrialPolicy:
    """A trial folder's saved policy, its ``policy.json`` spec and its config."""

    net: PrunableNet
    head: Head
    config: TrialConfig
    spec: dict[str, Any]


def load_trial(directory: Path) -> TrialPolicy:
    """Load ``policy.safetensors`` + ``policy.json`` + ``config.yaml`` of a trial folder.

    Raises:
        DeployError: ``directory`` is not a folder.
        ConfigError / CheckpointError: its config or policy is missing or invalid.
    """
    if not directory.is_dir():
        raise DeployError(f"export: {directory} is not a trial folder (no such directory)")
    names = ("config.yaml", POLICY_SPEC, POLICY_WEIGHTS)
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise DeployError(f"export: {directory} is not a trial folder (no {', '.join(missing)})")
    cfg: TrialConfig = parse(TrialConfig, load_yaml(directory / "config.yaml"))
    net, head = load_policy(directory)
    return TrialPolicy(net, head, cfg, json.loads((directory / POLICY_SPEC).read_text()))


def export_trial(directory: Path, *, fmt: str = "onnx", int8: bool = False,
                 out: Path | None = None) -> dict[str, Any]:
    """Export a trial's policy to ``out`` (default ``DIR/export/policy[.int8].onnx`` or
    ``DIR/export/policy.safetensors``) and return what was written and checked.

    Raises:
        DeployError: an unknown format, ``int8`` without ONNX, a missing ``[deploy]`` extra,
            or onnxruntime's outputs differing from torch's.
    """
    if fmt not in FORMATS:
        raise DeployError(f"--format: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise DeployError("--int8: quantization writes ONNX; use it with --format onnx")
    trial = load_trial(directory)
    name = {"safetensors": "policy.safetensors", "onnx": "policy.onnx"}[fmt]
    target = out or directory / "export" / (name.replace(".onnx", ".int8.onnx") if int8 else name)
    if fmt == "safetensors":
        return _export_safetensors(trial, target)
    return _export_onnx(trial, target, int8=int8)


def check_onnx(net: PrunableNet, model: bytes, states: np.ndarray) -> float:
    """Max |onnxruntime - torch| over ``states``; raises DeployError beyond the tolerance
    (``CHECK_RTOL``, ``CHECK_ATOL``, as ``numpy.allclose``)."""
    got = session(model).run(None, {INPUT: states})[0]
    with torch.inference_mode():
        want = net(torch.from_numpy(states)).numpy()
    if got.shape != want.shape or not np.allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_ATOL):
        raise DeployError(f"export: onnxruntime's outputs differ from torch's (max |diff| "
                          f"{float(np.abs(got - want).max()):.3g})")
    return float(np.abs(got - want).max())


def _export_onnx(trial: TrialPolicy, out: Path, *, int8: bool) -> dict[str, Any]:
    env = env_spec(trial.config)
    seed = episode_seeds(trial.config.seed, 1, CALIBRATION_STREAM)[0] % 2**31
    states = visited_states(lambda obs: act(trial.net, trial.head, obs), env, seed=seed)
    fp32 = embed(to_onnx(trial.net), trial.spec, trial.config)
    row: dict[str, Any] = {
        "format": "onnx", "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "check": {"states": len(states), "max_abs_diff": check_onnx(trial.net, fp32, states),
                  "rtol": CHECK_RTOL, "atol": CHECK_ATOL}}
    model = fp32
    if int8:
        model = embed(int8_onnx(trial.net, states), {**trial.spec, "precision": "int8"},
                      trial.config)
        row["int8"] = _compare_returns(trial, fp32, model)
        row["int8"].update(quantization="static (QDQ, calibrated)", calibration_states=len(states))
    _write(out, model)
    return {"out": str(out), "bytes": len(model), "fp32_safetensors_bytes": policy_bytes(trial.net),
            **row}


def _compare_returns(trial: TrialPolicy, fp32: bytes, int8: bytes) -> dict[str, Any]:
    """Both models' mean return through onnxruntime on the trial's evaluation episodes."""
    cfg = trial.config
    seed = cfg.eval.seed if cfg.eval.seed is not None else cfg.seed
    means = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        policy = OnnxPolicy(session(model), trial.head, cfg, trial.spec)
        res = evaluate_fn(onnx_act(policy), env_spec(cfg), episodes=cfg.eval.episodes, seed=seed)
        means[name] = res.mean
    return {"return_mean_fp32": means["fp32"], "return_mean_int8": means["int8"],
            "return_drop": means["fp32"] - means["int8"], "eval_seed": seed,
            "episodes": cfg.eval.episodes, "engine": "onnxruntime"}


def _export_safetensors(trial: TrialPolicy, out: Path) -> dict[str, Any]:
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous() for k, v in trial.net.state_dict().items()}
    meta = {META_POLICY: json.dumps(trial.spec), META_CONFIG: trial.config.model_dump_json()}
    data = save(tensors, metadata=meta)
    _write(out, data)
    return {"out": str(out), "bytes": len(data), "format": "safetensors",
            "fp32_safetensors_bytes": policy_bytes(trial.net)}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
