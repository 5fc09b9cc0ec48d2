"""Search backends: thin adapters between a Sweep and a search library (Optuna, Ray Tune),
registered by the name a sweep file's ``backend:`` uses. Each module of this package
registers one ``Backend`` on import, so adding a backend is one module. Every backend
records its trials in the sweep's Optuna study, the one record reports read."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import optuna
from optuna.trial import FrozenTrial

from nas_prune.config.sweep import Sweep
from nas_prune.util.registry import Registry

__all__ = ["Backend", "Callback", "RunOptions", "backends", "check_support"]

Callback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run a sweep's trials: the study's total, local processes, cluster address,
    concurrency, per-trial callbacks and a line logger."""

    trials: int
    workers: int
    address: str | None = None
    max_concurrent: int | None = None
    callbacks: list[Callback] = field(default_factory=list)
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class Backend:
    """A registered backend. ``run`` runs the sweep's trials to the total and returns the
    numbers of stale trials it recovered; the flags say what the backend supports."""

    run: Callable[[Sweep, RunOptions], list[int]]
    early_stop: bool  # multi-objective early stopping
    reproducible: bool  # generation-synchronous sampling


backends: Registry[Backend] = Registry("backend", "backend")


def check_support(name: str, *, early_stop: bool, reproducible: bool,
                  field_name: str | None = None) -> None:
    """Refuse a feature the sweep asks for explicitly that backend ``name`` lacks.

    Raises:
        ValueError: naming the feature's field (or ``field_name``: the CLI flag that chose
            the backend), and the backends that support it.
    """
    backend = backends.get(name)
    for wanted, key, where, what in (
            (early_stop, "early_stop", "early_stop.enabled", "multi-objective early stopping"),
            (reproducible, "reproducible", "reproducible", "generation-synchronous sampling")):
        if wanted and not getattr(backend, key):
            able = ", ".join(n for n in backends.names() if getattr(backends.get(n), key))
            raise ValueError(f"{field_name or where}: {what} runs on the {able} backend only; "
                             f"allowed backends: {able}")


for _info in pkgutil.iter_modules(__path__):  # each module registers its backend
    importlib.import_module(f"{__name__}.{_info.name}")
