"""Assemble ReportData from a sweep's study (and its baseline study): front, re-evaluation,
dense references, hypervolumes. The one place ``report`` and ``best`` get their figures."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from nas_prune.config.sweep import OBJECTIVES
from nas_prune.results.reeval import reevaluate, verify_checkpoints, with_reeval
from nas_prune.results.report import ReportData
from nas_prune.results.report.data import knee_row
from nas_prune.results.report.insights import (
    Insights,
    budget_wins,
    param_importances,
    reuse_commands,
)
from nas_prune.results.study import (
    BASELINE_SUFFIX,
    SWEEP_ATTR,
    complete,
    dense_points,
    front_of,
    hypervolumes,
    trials_frame,
)
from nas_prune.search.storage import is_local, load_study, storage_file

__all__ = ["Summary", "relocate", "report_dir", "summarize", "sweep_info"]


@dataclass(frozen=True)
class Summary:
    """The report's data plus the study it came from."""

    data: ReportData
    study: optuna.Study
    ret_col: str  # the return column the front was chosen on (re-evaluated when available)
    report_dir: Path  # where the report goes by default: the study's folder's report/


def sweep_info(study: optuna.Study) -> dict[str, Any]:
    """What the sweep recorded about itself (reference point, re-evaluation settings)."""
    info = study.user_attrs.get(SWEEP_ATTR)
    if not info:
        raise ValueError(f"--study: {study.study_name!r} was not created by nas-prune sweep")
    return dict(info)


def summarize(storage: str, study_name: str, *, reeval: bool = True,
              insights: bool = True) -> Summary:
    """Read the study, re-evaluate the front (cached in the study), build ReportData
    (with the insights panels unless ``insights`` is False)."""
    study = load_study(storage, study_name)
    info = sweep_info(study)
    df = relocate(trials_frame(study), info, storage)
    done = complete(df)
    base_df = relocate(_baseline(storage, study_name), info, storage)
    front, ret_col = front_of(done), "return_mean"
    verify_checkpoints(front)
    k, episodes = info["reeval_seeds"], info["reeval_episodes"]
    if reeval and k > 0 and not front.empty:
        front = with_reeval(front, reevaluate(study, front, seeds=k, episodes=episodes))
        front, ret_col = front_of(front, "reeval_mean"), "reeval_mean"
        if not base_df.empty:
            bstudy = load_study(storage, study_name + BASELINE_SUFFIX)
            base_df = with_reeval(base_df, reevaluate(bstudy, base_df, seeds=k,
                                                      episodes=episodes))
    dense = dense_points(df)
    if info.get("max_return") is None:
        tops = [*dense["return_mean"].tolist(), *front[ret_col].tolist(), 1.0]
        info["max_return"] = max(float(x) for x in tops)
    hv = hypervolumes(front, front_of(base_df, ret_col) if not base_df.empty else base_df,
                      info, ret_col)
    notes = [
        f"Objectives: maximise return ({ret_col}), minimise nonzero parameters of the "
        f"deployed policy.",
        f"Hypervolume: normalised, params on log10 scale; reference point = (dense params of "
        f"the reference architecture = {info['ref_params']}, return floor = "
        f"{info['return_floor']}); box top = max return {info['max_return']:.1f}.",
    ]
    if ret_col == "reeval_mean":
        notes.append(f"Front re-evaluated on {k} fresh seeds x {episodes} episodes; "
                     f"95% intervals are percentile-bootstrap intervals of the IQM.")
    found = _insights(study, front, ret_col, info, storage) if insights else None
    data = ReportData(title=f"{study_name}: {info.get('agent')} on {info.get('env')}",
                      trials=df, front=front, dense=dense, baseline=base_df,
                      hypervolume=hv, notes=notes, insights=found)
    return Summary(data, study, ret_col, report_dir(info, study_name, storage))


def _insights(study: optuna.Study, front: pd.DataFrame, ret_col: str, info: dict[str, Any],
              storage: str) -> Insights:
    return Insights(wins=budget_wins(front, info["ref_params"]), return_col=ret_col,
                    importances=param_importances(study, OBJECTIVES),
                    reuse=reuse_commands(knee_row(front), storage=storage,
                                         study=study.study_name, dense_cache=_dense_cache(info)))


def _dense_cache(info: dict[str, Any]) -> str | None:
    # Sweep.dense_cache of the recorded out folder (absent in studies of nas_prune 0.1.0)
    return str(Path(info["out"]) / "dense") if info.get("out") else None


def report_dir(info: dict[str, Any], study_name: str, storage: str) -> Path:
    """The study's default report folder: ``out/<study>/report`` (``out/report`` for a
    study written before studies had folders of their own), found under the journal's
    folder when the out folder was moved."""
    out = info.get("out")
    folder = Path(info.get("study_dir") or out or Path("runs") / study_name) / "report"
    return Path(_moved(str(folder), info, storage, must_exist=False))


def relocate(df: pd.DataFrame, info: dict[str, Any], storage: str) -> pd.DataFrame:
    """Trial folders of an out folder that was moved or copied: a recorded ``out_dir``
    that no longer exists is looked up at the same place under the journal's folder."""
    if df.empty or "out_dir" not in df:
        return df
    df = df.copy()
    df["out_dir"] = df["out_dir"].map(lambda p: _moved(p, info, storage))
    return df


def _moved(stored: Any, info: dict[str, Any], storage: str, *, must_exist: bool = True) -> Any:
    out = info.get("out")
    if not isinstance(stored, str) or not out or not is_local(storage):
        return stored
    if Path(stored if must_exist else out).exists():
        return stored
    try:
        candidate = storage_file(storage).parent / Path(stored).relative_to(out)
    except ValueError:
        return stored
    return str(candidate) if candidate.exists() or not must_exist else stored


def _baseline(storage: str, name: str) -> pd.DataFrame:
    try:
        study = load_study(storage, name + BASELINE_SUFFIX)
    except ValueError:
        return pd.DataFrame()
    return complete(trials_frame(study))
