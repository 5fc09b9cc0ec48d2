"""nas_prune: search small, fast deep-RL policies by pruning (Pareto: parameters vs return)."""
from __future__ import annotations

from nas_prune.config import TrialConfig
from nas_prune.trial import TrialResult, run_trial

__all__ = ["TrialConfig", "TrialResult", "run_trial"]
__version__ = "0.1.0"
