"""A tiny plug-in registry: agents, pruning methods and backends register under a YAML name."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps the snake_case name a user writes in YAML to a class or factory.

    Args:
        kind: what the registry holds, used in error messages ("pruning method").
        field: the config field the name comes from, used in error messages.
    """

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind
        self.field = field
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is a bug."""

        def deco(obj: T) -> T:
            if name in self._items:  # not an assert: ``python -O`` would let it replace
                raise RuntimeError(f"duplicate {self.kind} {name!r}")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str, field: str | None = None) -> T:
        """Return the item for ``name``.

        Args:
            name: the registered name.
            field: the config field to name in the error (default: the registry's own).

        Raises:
            ValueError: unknown name; the message lists the allowed ones.
        """
        if name not in self._items:
            raise ValueError(f"{field or self.field}: unknown {self.kind} {name!r}; "
                             f"allowed: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
