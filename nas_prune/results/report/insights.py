"""What a person acts on, as data: the winner at each parameter budget, parameter
importances per objective, and the commands that reuse the knee point.

Pure data functions (no rendering): ``insights_html`` and the terminal table draw them.
Optuna is imported inside the importance function only.
"""

from __future__ import annotations

import importlib.util
import math
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from nas_prune.results.report.data import Row, front_y, numbers, sorted_front

if TYPE_CHECKING:
    import optuna

__all__ = ["BUDGETS", "MIN_IMPORTANCE_TRIALS", "Importances", "Insights", "budget_wins",
           "importance_evaluator", "param_importances", "reuse_commands"]

BUDGETS = (0.01, 0.05, 0.10, 0.25)  # fractions of the reference network's parameters
# Below this many COMPLETE trials an importance is noise (Optuna itself warns below 2).
MIN_IMPORTANCE_TRIALS = 5
WIN_COLUMNS = ["budget", "max_params", "number", "params_nonzero", "return", "method",
               "schedule", "finetune_mode", "hidden", "hidden_pruned"]


@dataclass(frozen=True)
class Importances:
    """Parameter importances of one objective (empty ``values`` with a ``note`` when they
    could not be computed)."""

    objective: str
    evaluator: str
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Insights:
    """The report's panels beyond the front: see ``budget_wins``, ``param_importances``
    and ``reuse_commands``."""

    wins: pd.DataFrame
    return_col: str
    importances: list[Importances] = field(default_factory=list)
    reuse: list[str] = field(default_factory=list)


def budget_wins(front: pd.DataFrame, ref_params: float,
                budgets: Sequence[float] = BUDGETS) -> pd.DataFrame:
    """The best trial within each parameter budget, and what it used.

    Args:
        front: trials to choose from (the Pareto front holds every budget's best); the
            return is the re-evaluated mean where the rows have one (``front_y``).
        ref_params: the reference network's parameter count; a budget allows
            ``fraction * ref_params`` nonzero parameters.
        budgets: fractions in (0, 1].

    Returns:
        One row per budget (``WIN_COLUMNS``); ``number`` is NaN when no trial fits.
    """
    front, y = sorted_front(front), front_y(front)
    params, returns = numbers(front, "params_nonzero"), numbers(front, y)
    rows = []
    for frac in budgets:
        limit = frac * ref_params
        ok = (params <= limit) & returns.map(math.isfinite)
        row: dict[str, Any] = {"budget": frac, "max_params": limit}
        if ok.any():
            best = returns[ok].idxmax()  # ties: the first, the fewest params (sorted)
            found = front.loc[best]
            row.update({c: found.get(c) for c in WIN_COLUMNS[2:] if c != "return"})
            row["return"] = float(returns[best])
        rows.append(row)
    return pd.DataFrame(rows, columns=WIN_COLUMNS)


def importance_evaluator() -> tuple[Any, str]:
    """fANOVA (Optuna's default) when scikit-learn is installed, else PED-ANOVA, which
    needs nothing beyond Optuna. Returns the evaluator and its name."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if importlib.util.find_spec("sklearn") is None:  # fANOVA fits sklearn's random forest
        return PedAnovaImportanceEvaluator(), "PED-ANOVA"
    return FanovaImportanceEvaluator(seed=0), "fANOVA"


def param_importances(study: optuna.Study, objectives: Sequence[tuple[str, str]], *,
                      min_trials: int = MIN_IMPORTANCE_TRIALS) -> list[Importances]:
    """Optuna's parameter importances for each objective, in the study's objective order.

    Args:
        study: the sweep's study; only its COMPLETE trials count.
        objectives: (metric name, "maximize" | "minimize") per study value, in order.
        min_trials: fewer COMPLETE trials give a note instead of figures.
    """
    from optuna.trial import TrialState

    evaluator, name = importance_evaluator()
    n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out = []
    for i, (objective, direction) in enumerate(objectives):
        if n < min_trials:
            out.append(Importances(objective, name, note=f"too few complete trials ({n}; "
                                                          f"importances need {min_trials})"))
            continue
        # PED-ANOVA ranks what reaches *low* target values: negate maximised objectives.
        sign = -1.0 if direction == "maximize" and name == "PED-ANOVA" else 1.0
        out.append(_importances(study, i, sign, objective, evaluator, name))
    return out


def _importances(study: optuna.Study, i: int, sign: float, objective: str, evaluator: Any,
                 name: str) -> Importances:
    from optuna.importance import get_param_importances

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-API and small-sample warnings
            values = get_param_importances(study, evaluator=evaluator,
                                           target=lambda t: sign * t.values[i])
    except (ValueError, RuntimeError) as exc:  # e.g. no parameter varies across trials
        return Importances(objective, name, note=f"not computed ({exc})")
    if not values:  # trials recorded without their search-space distributions
        return Importances(objective, name, note="no searched parameter was recorded with "
                                                 "its distribution")
    return Importances(objective, name, {k: float(v) for k, v in values.items()})


def reuse_commands(knee: Row | None, *, storage: str, study: str,
                   dense_cache: str | None = None) -> list[str]:
    """The shell commands that pick the knee point, re-run it and export its policy.

    Args:
        knee: the knee's row (``out_dir``: its trial folder), or None.
        storage, study: where the study is (a server storage's password is replaced by
            ``***``, so the report never holds it).
        dense_cache: the sweep's dense-agent folder: the re-run prunes the same cached
            dense agent instead of training it again (same result, less time).

    Returns:
        The commands; an empty list without a knee.
    """
    if knee is None:
        return []
    where = f"--storage {shlex.quote(_redacted(storage))} --study {shlex.quote(study)}"
    cache = f" --cache {shlex.quote(dense_cache)}" if dense_cache else ""
    commands = [f"nas-prune best {where} --knee --out best.yaml",
                f"nas-prune trial best.yaml{cache}"]
    out_dir = knee.get("out_dir")
    if isinstance(out_dir, str) and out_dir:
        commands.append(f"nas-prune export {shlex.quote(out_dir)} --format onnx")
    return commands


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
