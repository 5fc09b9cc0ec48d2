"""Checkpoints: safetensors for tensors plus a JSON spec; never pickle."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nas_prune.deploy.onnx import obs_size
from nas_prune.rl.cnn import CNN
from nas_prune.rl.heads import HEADS, Head
from nas_prune.rl.networks import MLP, PrunableNet, activations
from nas_prune.rl.normalization import ObsNorm, freeze_obs_norm
from nas_prune.util.files import atomic_path

__all__ = ["CheckpointError", "POLICY_SPEC", "POLICY_WEIGHTS", "load_policy", "load_tensors",
           "save_policy", "save_tensors", "sha256_file"]

POLICY_WEIGHTS = "policy.safetensors"
POLICY_SPEC = "policy.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed, or not safetensors + JSON."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write tensors as safetensors (atomically: temp file + rename); return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp))
    return sha256_file(path)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else (a pickle, a truncated file) is refused."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint: {path} not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint: {path} is not a valid safetensors file ({exc})") from None


def save_policy(directory: Path, net: PrunableNet, head: Head) -> str:
    """Write the deployable policy: ``policy.safetensors`` + ``policy.json``; return its SHA-256."""
    digest = save_tensors(directory / POLICY_WEIGHTS, net.state_dict())
    spec = {**net.spec(), "head": head.to_json(), "weights": POLICY_WEIGHTS, "sha256": digest}
    (directory / POLICY_SPEC).write_text(json.dumps(spec, indent=2))
    return digest


def load_policy(directory: Path, *, verify: bool = True) -> tuple[PrunableNet, Head]:
    """Rebuild a policy saved by ``save_policy`` (an MLP or a CNN), checking its SHA-256
    when ``verify``."""
    spec = _read_spec(directory / POLICY_SPEC)
    weights = directory / POLICY_WEIGHTS
    tensors = load_tensors(weights)
    if verify and sha256_file(weights) != spec.get("sha256"):
        raise CheckpointError(f"checkpoint: {weights} does not match the SHA-256 in its spec")
    net = _build_cnn(spec, tensors, weights) if spec["type"] == "cnn" else _build_mlp(
        spec, tensors, weights)
    if "obs_norm" in spec:
        _attach_obs_norm(net, spec["obs_norm"], weights)
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint: weights do not fit the spec ({exc})") from None
    if net.obs_norm is not None and net.obs_norm.spec() != spec["obs_norm"]:
        raise CheckpointError(f"checkpoint: the observation statistics in {weights} differ "
                              f"from obs_norm in its spec")
    h = spec["head"]
    if h.get("kind") not in HEADS:
        raise CheckpointError(f"checkpoint: head.kind must be one of {', '.join(HEADS)}")
    return net, Head.from_json(h)


def _build_mlp(spec: dict[str, Any], tensors: dict[str, torch.Tensor], weights: Path) -> MLP:
    sizes = [int(s) for s in spec["sizes"]]
    # shapes checked against the tensors before building: a crafted spec cannot make us
    # allocate a huge network
    expected = {f"layers.{i}.weight": (b, a) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    if {k: tuple(v.shape) for k, v in tensors.items() if k.endswith("weight")} != expected:
        raise CheckpointError(f"checkpoint: weights in {weights} do not fit sizes {sizes}")
    return MLP(sizes, str(spec["activation"]))


def _attach_obs_norm(net: PrunableNet, norm: Any, weights: Path) -> None:
    """The saved input stage (frozen: a loaded policy's statistics never change)."""
    numbers = ("clip", "eps", "count")
    if not isinstance(norm, dict) or not all(
            isinstance(norm.get(k), (int, float)) and norm[k] >= 0 for k in numbers):
        raise CheckpointError(f"checkpoint: obs_norm in {weights.parent / POLICY_SPEC} needs "
                              f"clip, eps and count (numbers >= 0), mean and var")
    n_obs = obs_size(net)
    net.obs_norm = ObsNorm(n_obs, clip=float(norm["clip"]), eps=float(norm["eps"]))
    freeze_obs_norm(net)


_CNN_LISTS = ("image", "channels", "kernels", "strides", "hidden")


def _build_cnn(spec: dict[str, Any], tensors: dict[str, torch.Tensor], weights: Path) -> CNN:
    def ints(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, int) and x > 0 for x in v)

    if (not all(ints(spec.get(k)) for k in _CNN_LISTS) or len(spec["image"]) != 3
            or not isinstance(spec.get("outputs"), int)
            or not isinstance(spec.get("channels_last"), bool)):
        raise CheckpointError(f"checkpoint: {weights.parent / POLICY_SPEC} needs image (3 "
                              f"positive ints), channels, kernels, strides, hidden, outputs "
                              f"and channels_last")
    c, h, w = (int(x) for x in spec["image"])
    args = ((c, h, w), spec["channels"], spec["kernels"], spec["strides"], spec["hidden"],
            spec["outputs"], str(spec["activation"]), spec["channels_last"])
    try:
        # built on the meta device first: a crafted spec allocates nothing before its
        # shapes are checked against the tensors
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in CNN(*args).state_dict().items()}
    except ValueError as exc:
        raise CheckpointError(f"checkpoint: {exc}") from None
    if {k: tuple(v.shape) for k, v in tensors.items()
            if not k.startswith("obs_norm.")} != shapes:  # the input stage: load_state_dict
        raise CheckpointError(f"checkpoint: weights in {weights} do not fit the CNN spec")
    return CNN(*args)


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint: {path} not found")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint: {path} is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("type") not in ("mlp", "cnn") or (
            spec["type"] == "mlp" and "sizes" not in spec):
        raise CheckpointError(f"checkpoint: {path} is not an MLP or CNN policy spec")
    sizes, head = spec.get("sizes", [1, 1]), spec.get("head")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(x, int) and x > 0 for x in sizes)
            or not isinstance(spec.get("activation"), str) or not isinstance(head, dict)):
        raise CheckpointError(f"checkpoint: {path} needs sizes (positive ints), activation "
                              f"and head")
    if spec["activation"] not in activations:
        raise CheckpointError(f"checkpoint: {path} names an unknown activation "
                              f"{spec['activation']!r}; allowed: {', '.join(activations.names())}")
    return spec
