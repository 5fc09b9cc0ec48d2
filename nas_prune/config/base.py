"""Shared by every config model: strict models, one-line errors, safe YAML I/O."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigError", "Strict", "dump_yaml", "format_error", "load_yaml", "parse"]


class Strict(BaseModel):
    """Frozen, and a typo'd key is an error rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A bad config; ``str()`` is one line naming the field."""


def format_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per pydantic error, ``field.path: message``, joined by '; '."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in (prefix, *err["loc"]) if x != "")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        named = not loc or msg.startswith(loc.split(".")[0])
        parts.append(msg if named else f"{loc}: {msg}")
    return "; ".join(parts)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (``yaml.safe_load``: no Python tags)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config: file {str(p)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {str(p)!r} ({exc})") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config: {p} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {p} must hold a mapping, got {type(data).__name__}")
    return data


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate ``data`` into ``model``, turning errors into one ``ConfigError`` line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_error(exc)) from None


def dump_yaml(cfg: BaseModel) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
