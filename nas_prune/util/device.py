"""Which torch device a trial trains its CNNs on (config ``device``, flag ``--device``)."""
from __future__ import annotations

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, field: str = "device") -> str:
    """``cpu`` or ``cuda`` for a configured device name.

    Args:
        name: ``auto`` (CUDA when ``torch.cuda.is_available()``, else the CPU), ``cpu`` or
            ``cuda``.
        field: the config field or flag named in the error.

    Raises:
        ValueError: an unknown name, or ``cuda`` on a machine without CUDA.
    """
    import torch

    if name not in DEVICES:
        raise ValueError(f"{field}: {name!r} is not a device; allowed: {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name == "cuda" and not available:
        raise ValueError(f"{field}: cuda requested but torch finds no CUDA device here; "
                         f"allowed on this machine: auto, cpu")
    return name
