"""nas_prune.config.base: strict models, one-line errors with field paths, safe YAML I/O."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field, ValidationError

from nas_prune.config.base import ConfigError, Strict, dump_yaml, format_error, load_yaml, parse
from nas_prune.config.trial import TrialConfig
from tests.conftest import TINY_PPO


class _Inner(Strict):
    steps: int = Field(default=1, ge=0)


class _Outer(Strict):
    name: str = "x"
    inner: _Inner = Field(default_factory=_Inner)


def _error(data: dict[str, Any], prefix: str = "") -> str:
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(data)
    return format_error(info.value, prefix)


@pytest.mark.parametrize(("data", "prefix", "expected"), [
    ({"inner": {"steps": -1}}, "",
     "inner.steps: Input should be greater than or equal to 0"),
    ({"inner": {"stpes": 3}}, "", "inner.stpes: unknown key"),
    ({"nmae": "y"}, "", "nmae: unknown key"),
    ({"inner": {"steps": -1}}, "sweep", "sweep.inner.steps: Input should be greater than or "
                                        "equal to 0"),
    ({"nmae": "y", "inner": {"steps": "many"}}, "",
     "nmae: unknown key; inner.steps: Input should be a valid integer, unable to parse string "
     "as an integer"),
])
def test_format_error_one_line_with_field_paths(data: dict[str, Any], prefix: str,
                                                expected: str) -> None:
    msg = _error(data, prefix)
    assert "\n" not in msg
    # pydantic's error order follows the fields it checks, so compare as sets of parts
    assert set(msg.split("; ")) == set(expected.split("; "))


def test_format_error_does_not_repeat_a_field_the_message_already_names() -> None:
    # validators in this package start their message with the field path themselves
    msg = None
    try:
        TrialConfig.model_validate({"pruning": {"sparsity": 1.5}})
    except ValidationError as exc:
        msg = format_error(exc)
    assert msg == "pruning.sparsity: 1.5 is outside [0, 1)"


def test_frozen_and_strict() -> None:
    cfg = _Outer()
    with pytest.raises(ValidationError):
        cfg.name = "y"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        _Outer(extra_key=1)  # type: ignore[call-arg]


def test_parse_raises_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse(_Outer, {"inner": {"steps": -2}, "typo": 1})
    msg = str(info.value)
    assert "\n" not in msg
    assert set(msg.split("; ")) == {"typo: unknown key",
                                    "inner.steps: Input should be greater than or equal to 0"}
    assert isinstance(info.value, ValueError)  # callers catching ValueError still catch it


def test_parse_returns_the_model() -> None:
    cfg = parse(_Outer, {"name": "a", "inner": {"steps": 4}})
    assert cfg == _Outer(name="a", inner=_Inner(steps=4))


# --- load_yaml ----------------------------------------------------------------------------

def test_load_yaml_reads_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("name: a\ninner:\n  steps: 3\n")
    assert load_yaml(p) == {"name": "a", "inner": {"steps": 3}}
    assert load_yaml(str(p)) == {"name": "a", "inner": {"steps": 3}}  # str paths too


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_load_yaml_empty_file_is_an_empty_mapping(tmp_path: Path, text: str) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text(text)
    assert load_yaml(p) == {}


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_yaml(p)
    assert str(info.value) == f"config: file {str(p)!r} not found"


def test_load_yaml_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: cannot read ") as info:
        load_yaml(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "line"), [
    ("name: a\ninner: [1, 2\n", 3),  # unclosed flow sequence: found at end of input
    ("name: a\n  bad: indent\n", 2),
    ("a: 1\nb: 2\nc: 'unterminated\n", 4),
])
def test_load_yaml_bad_yaml_names_the_line(tmp_path: Path, text: str, line: int) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(p)
    msg = str(info.value)
    assert msg.startswith(f"config: {p} is not valid YAML (line {line}): ")
    assert "\n" not in msg


@pytest.mark.parametrize(("text", "kind"), [
    ("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int"),
])
def test_load_yaml_non_mapping(tmp_path: Path, text: str, kind: str) -> None:
    p = tmp_path / "list.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(p)
    assert str(info.value) == f"config: {p} must hold a mapping, got {kind}"


def test_load_yaml_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^config: cannot read "):
        load_yaml(p)


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {pwned}']",
    "!!python/object/new:subprocess.check_call [['touch', '{pwned}']]",
    "!!python/name:os.system",
])
def test_load_yaml_rejects_python_tags(tmp_path: Path, tag: str) -> None:
    pwned = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text("name: " + tag.format(pwned=pwned) + "\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML \(line 1\)"):
        load_yaml(p)
    assert not pwned.exists()


# --- dump_yaml ----------------------------------------------------------------------------

def test_dump_yaml_round_trips_a_trial_config(tmp_path: Path) -> None:
    cfg = parse(TrialConfig, TINY_PPO)
    text = dump_yaml(cfg)
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    again = parse(TrialConfig, load_yaml(p))
    assert again == cfg
    # every default is written out, in field order
    data = yaml.safe_load(text)
    assert list(data) == list(TrialConfig.model_fields)
    assert data["eval"] == {"episodes": 5, "seed": None, "noise_std": 0.0, "latency": False,
                            "deploy_int8": False}
