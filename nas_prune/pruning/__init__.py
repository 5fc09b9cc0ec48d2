"""Pruning methods (one module each, registered by name), schedules, surgery, counting."""
from __future__ import annotations

import importlib
import pkgutil

from nas_prune.pruning.base import PruneContext, PruningMethod, methods

# Every module of this package that defines a method registers it on import: a new method
# is one new file, no edit here.
_INFRA = {"base", "counting", "surgery", "schedule"}
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _INFRA:
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["PruneContext", "PruningMethod", "methods"]
