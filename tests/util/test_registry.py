"""nas_prune.util.registry: register / get / names / ``in``, and the errors a user sees."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from nas_prune.util.registry import Registry


def _registry() -> Registry[int]:
    reg: Registry[int] = Registry("pruning method", "pruning.method")
    reg.register("magnitude")(1)
    reg.register("importance")(2)
    return reg


def test_register_returns_the_object_unchanged() -> None:
    reg: Registry[type] = Registry("agent", "agent.name")

    @reg.register("dqn")
    class DQN:
        pass

    assert DQN.__name__ == "DQN"  # the decorator hands back the class itself
    assert reg.get("dqn") is DQN


def test_get_names_and_contains() -> None:
    reg = _registry()
    assert reg.get("magnitude") == 1
    assert reg.get("importance") == 2
    assert reg.names() == ["importance", "magnitude"]  # sorted, not insertion order
    assert "magnitude" in reg
    assert "Magnitude" not in reg  # a YAML name is matched exactly
    assert 3 not in reg


def test_empty_registry() -> None:
    reg: Registry[int] = Registry("backend", "backend")
    assert reg.names() == []
    assert "optuna" not in reg


@pytest.mark.parametrize("name", ["magnitud", "", "MAGNITUDE", "magnitude "])
def test_unknown_name_error_names_field_and_lists_allowed(name: str) -> None:
    with pytest.raises(ValueError) as info:
        _registry().get(name)
    msg = str(info.value)
    assert msg == (f"pruning.method: unknown pruning method {name!r}; "
                   "allowed: importance, magnitude")
    assert "\n" not in msg


def test_duplicate_registration_is_refused_and_keeps_the_first() -> None:
    reg = _registry()
    with pytest.raises(RuntimeError, match="duplicate pruning method 'magnitude'"):
        reg.register("magnitude")(99)
    assert reg.get("magnitude") == 1
    assert reg.names() == ["importance", "magnitude"]


def test_registries_are_independent() -> None:
    a, b = _registry(), _registry()
    a.register("random")(3)
    assert "random" in a
    assert "random" not in b


def test_duplicate_registration_is_refused_under_python_O() -> None:
    code = textwrap.dedent("""
        from nas_prune.util.registry import Registry
        reg = Registry("agent", "agent.name")
        reg.register("dqn")(1)
        try:
            reg.register("dqn")(2)
        except Exception:
            print("refused", reg.get("dqn"))
        else:
            print("accepted", reg.get("dqn"))
    """)
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "refused 1"
