"""A trial's record in its study: one writer and one reader for every backend and the
baseline. The record is one user attribute, ``metrics``: the trial's ``TrialMetrics``
fields, its config (``TrialConfig`` as JSON) and its folder, in one storage write (one write
per metric cost ~0.8 ms each on a journal file, ~45 per trial). Fail reasons, early-stop
rung points, the generation and retry links are attributes of their own.

Studies written by nas_prune 0.1.0 read the same: the Optuna backend wrote this shape
already; its Ray recorder and baseline wrote one attribute per metric, which ``read``
flattens the same way."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from nas_prune.config.objectives import DEFAULT_OBJECTIVES
from nas_prune.config.trial import TrialConfig
from nas_prune.trial.metrics import TrialMetrics

__all__ = ["FAIL_REASON", "METRICS_ATTR", "add_finished", "read", "read_metrics",
           "objective_values", "record_attrs", "write_running"]

METRICS_ATTR = "metrics"
FAIL_REASON = "fail_reason"


def objective_values(metrics: TrialMetrics,
                     objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> list[float]:
    """The study's objectives (``Sweep.objectives``, in order) from a trial's metrics; an
    objective the trial did not measure is NaN (the backend records such a trial FAIL)."""
    values = (getattr(metrics, name) for name in objectives)
    return [math.nan if v is None else float(v) for v in values]


def record_attrs(config: TrialConfig | None, out_dir: str | None,
                 metrics: TrialMetrics | None = None) -> dict[str, Any]:
    """The record attribute's value: metrics (those set), config and folder."""
    record: dict[str, Any] = metrics.as_dict() if metrics is not None else {}
    if config is not None:
        record["config"] = config.model_dump(mode="json")
    if out_dir is not None:
        record["out_dir"] = out_dir
    return record


def write_running(trial: optuna.Trial, config: TrialConfig | None, out_dir: str | None,
                  metrics: TrialMetrics | None = None) -> None:
    """Write (or rewrite) the record of a trial in flight: once before it runs, so that a
    failed trial keeps its config and folder, and once with its metrics."""
    trial.set_user_attr(METRICS_ATTR, record_attrs(config, out_dir, metrics))


def add_finished(study: optuna.Study, *, state: TrialState, config: TrialConfig | None,
                 out_dir: str | None, metrics: TrialMetrics | None = None,
                 values: list[float] | None = None, params: dict[str, Any] | None = None,
                 distributions: dict[str, BaseDistribution] | None = None,
                 attrs: dict[str, Any] | None = None) -> None:
    """Add a trial that ran elsewhere (a Ray trial, a baseline trial) with the same record
    as the Optuna backend writes; ``attrs`` are further user attributes (a fail reason,
    the Ray trial id)."""
    study.add_trial(create_trial(
        state=state, values=values, params=params or {}, distributions=distributions or {},
        user_attrs={METRICS_ATTR: record_attrs(config, out_dir, metrics), **(attrs or {})}))


def read(t: FrozenTrial) -> dict[str, Any]:
    """A trial's user attributes with its record flattened in: metrics, ``config``,
    ``out_dir``, then the other attributes (fail reason, rung points, generation...)."""
    attrs = dict(t.user_attrs.get(METRICS_ATTR, {}))
    attrs.update((k, v) for k, v in t.user_attrs.items() if k != METRICS_ATTR)
    return attrs


def read_metrics(t: FrozenTrial) -> TrialMetrics | None:
    """The trial's metrics as the typed schema (None for a trial that recorded none)."""
    attrs = read(t)
    fields = {k: v for k, v in attrs.items() if k in TrialMetrics.model_fields}
    return TrialMetrics.model_validate(fields) if "env_id" in fields else None
