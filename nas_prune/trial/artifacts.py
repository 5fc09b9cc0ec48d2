"""Checkpoints: safetensors for tensors plus a JSON spec; never pickle."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nas_prune.rl.heads import HEADS, Head
from nas_prune.rl.networks import MLP, activations
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


def save_policy(directory: Path, net: MLP, head: Head) -> str:
    """Write the deployable policy: ``policy.safetensors`` + ``policy.json``; return its SHA-256."""
    digest = save_tensors(directory / POLICY_WEIGHTS, net.state_dict())
    spec = {**net.spec(), "head": head.to_json(), "weights": POLICY_WEIGHTS, "sha256": digest}
    (directory / POLICY_SPEC).write_text(json.dumps(spec, indent=2))
    return digest


def load_policy(directory: Path, *, verify: bool = True) -> tuple[MLP, Head]:
    """Rebuild a policy saved by ``save_policy``, checking its SHA-256 when ``verify``."""
    spec = _read_spec(directory / POLICY_SPEC)
    weights = directory / POLICY_WEIGHTS
    tensors = load_tensors(weights)
    if verify and sha256_file(weights) != spec.get("sha256"):
        raise CheckpointError(f"checkpoint: {weights} does not match the SHA-256 in its spec")
    sizes = [int(s) for s in spec["sizes"]]
    # shapes checked against the tensors before building: a crafted spec cannot make us
    # allocate a huge network
    expected = {f"layers.{i}.weight": (b, a) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    if {k: tuple(v.shape) for k, v in tensors.items() if k.endswith("weight")} != expected:
        raise CheckpointError(f"checkpoint: weights in {weights} do not fit sizes {sizes}")
    net = MLP(sizes, str(spec["activation"]))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint: weights do not fit the spec ({exc})") from None
    h = spec["head"]
    if h.get("kind") not in HEADS:
        raise CheckpointError(f"checkpoint: head.kind must be one of {', '.join(HEADS)}")
    return net, Head.from_json(h)


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint: {path} not found")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint: {path} is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("type") != "mlp" or "sizes" not in spec:
        raise CheckpointError(f"checkpoint: {path} is not an MLP policy spec")
    sizes, head = spec.get("sizes"), spec.get("head")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(x, int) and x > 0 for x in sizes)
            or not isinstance(spec.get("activation"), str) or not isinstance(head, dict)):
        raise CheckpointError(f"checkpoint: {path} needs sizes (positive ints), activation "
                              f"and head")
    if spec["activation"] not in activations:
        raise CheckpointError(f"checkpoint: {path} names an unknown activation "
                              f"{spec['activation']!r}; allowed: {', '.join(activations.names())}")
    return spec
