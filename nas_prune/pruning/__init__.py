"""Pruning: the method registry (base), methods/ (one module each), schedules, surgery,
counting."""
from __future__ import annotations

import importlib
import pkgutil

from nas_prune.pruning import methods as _methods_pkg
from nas_prune.pruning.base import PruneContext, PruningMethod, methods

# Every module of pruning/methods registers its method on import: a new method is one new
# file there, no edit here.
for _info in pkgutil.iter_modules(_methods_pkg.__path__):
    importlib.import_module(f"{_methods_pkg.__name__}.{_info.name}")

__all__ = ["PruneContext", "PruningMethod", "methods"]
