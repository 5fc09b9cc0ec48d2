"""nas_prune.util.device: auto, cpu and cuda, and the errors a user sees."""
from __future__ import annotations

import pytest
import torch

from nas_prune.util.device import resolve_device


@pytest.mark.parametrize(("name", "cuda", "expected"), [
    ("auto", False, "cpu"), ("auto", True, "cuda"), ("cpu", True, "cpu"), ("cpu", False, "cpu"),
    ("cuda", True, "cuda"),
])
def test_resolves(name: str, cuda: bool, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device(name) == expected


def test_auto_is_the_cpu_on_this_machine_without_cuda() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cuda_without_cuda_names_the_field_and_what_is_allowed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^--device: cuda .*allowed on this machine: auto, cpu"):
        resolve_device("cuda", "--device")


def test_unknown_name_lists_the_devices() -> None:
    with pytest.raises(ValueError, match=r"^device: 'gpu' .*allowed: auto, cpu, cuda"):
        resolve_device("gpu")
