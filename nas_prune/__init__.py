"""nas_prune: search small, fast deep-RL policies by pruning (Pareto: parameters vs return).

Public API: ``TrialConfig``, ``run_trial`` and ``TrialResult`` (imported lazily, so that
``import nas_prune`` does not load torch until they are used).
"""
from __future__ import annotations

from typing import Any

__all__ = ["TrialConfig", "TrialResult", "run_trial"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "TrialConfig":
        from nas_prune.config.trial import TrialConfig

        return TrialConfig
    if name in ("TrialResult", "run_trial"):
        from nas_prune.trial import run

        return getattr(run, name)
    raise AttributeError(f"module 'nas_prune' has no attribute {name!r}")
