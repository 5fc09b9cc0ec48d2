"""Assemble ReportData from a sweep's study (and its baseline study): front, re-evaluation,
dense references, hypervolumes. The one place ``report`` and ``best`` get their figures."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from nas_prune.config.objectives import direction, pairs
from nas_prune.results.costs import objective_columns
from nas_prune.results.reeval import (
    LATENCY_RUNS,
    reevaluate,
    reevaluate_dense,
    remeasure_latency,
    verify_checkpoints,
    with_dense_reeval,
    with_latency,
    with_reeval,
)
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
    size_refs,
    trials_frame,
)
from nas_prune.search.storage import is_local, load_study, storage_file, study_objectives

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
    """Read the study, re-evaluate the front (cached in the study) and re-measure its
    latency when latency is an objective, build ReportData (with the insights panels
    unless ``insights`` is False)."""
    study = load_study(storage, study_name)
    info = sweep_info(study)
    objectives = study_objectives(study)
    df = relocate(trials_frame(study), info, storage)
    done = complete(df)
    base_df = relocate(_baseline(storage, study_name), info, storage)
    front, ret_col = front_of(done, objectives=objectives), "return_mean"
    verify_checkpoints(front)
    k, episodes = info["reeval_seeds"], info["reeval_episodes"]
    bstudy = load_study(storage, study_name + BASELINE_SUFFIX) if not base_df.empty else None
    if reeval and k > 0 and not front.empty:
        front, ret_col = with_reeval(front, reevaluate(study, front, seeds=k,
                                                       episodes=episodes)), "reeval_mean"
        if bstudy is not None:
            base_df = with_reeval(base_df, reevaluate(bstudy, base_df, seeds=k,
                                                      episodes=episodes))
    if reeval and "latency_us" in objectives and not front.empty:
        front = with_latency(front, remeasure_latency(study, front))
        if bstudy is not None:
            base_df = with_latency(base_df, remeasure_latency(bstudy, base_df))
    front = front_of(front, ret_col, objectives=objectives,
                     columns=objective_columns(objectives, front))
    dense = dense_points(df)
    if ret_col == "reeval_mean":  # the dense agents on the same fresh episodes as the front
        cache = _moved(_dense_cache(info), info, storage)
        dense, front = with_dense_reeval(dense, front, reevaluate_dense(
            study, dense, Path(cache) if cache else None, seeds=k, episodes=episodes))
    if info.get("max_return") is None:
        tops = [*dense["return_mean"].tolist(), *front[ret_col].tolist(), 1.0]
        tops = [x for x in tops if math.isfinite(float(x))]
        info["max_return"] = max(float(x) for x in tops)
    info.update(size_refs([done, front, base_df], objectives))
    base_front = base_df if base_df.empty else front_of(
        base_df, ret_col if ret_col in base_df else "return_mean", objectives=objectives,
        columns=objective_columns(objectives, base_df))
    hv = hypervolumes(front, base_front, info, ret_col, objectives=objectives)
    found = _insights(study, front, ret_col, info, storage, objectives, hv) if insights \
        else None
    data = ReportData(title=f"{study_name}: {info.get('agent')} on {info.get('env')}",
                      trials=df, front=front, dense=dense, baseline=base_df,
                      hypervolume=hv, notes=_notes(info, objectives, ret_col, k, episodes),
                      objectives=objectives, insights=found)
    return Summary(data, study, ret_col, report_dir(info, study_name, storage))


def _notes(info: dict[str, Any], objectives: list[str], ret_col: str, k: int,
           episodes: int) -> list[str]:
    others = ", ".join(f"{direction(n)} {n}" for n in objectives[1:])
    sizes = ", ".join(f"{n} from {info[f'low_{n}']:.4g} to {info[f'ref_{n}']:.4g} (the "
                      f"measured range)" for n in objectives if f"ref_{n}" in info)
    notes = [
        f"Objectives: maximize return ({ret_col}), {others} (of the deployed policy).",
        f"Hypervolume: normalised, sizes on log10 scale; reference point = (dense params of "
        f"the reference architecture = {info['ref_params']}, return floor = "
        f"{info['return_floor']}{'; ' + sizes if sizes else ''}); box top = max return "
        f"{info['max_return']:.1f}.",
    ]
    if ret_col == "reeval_mean":
        notes.append(f"Front re-evaluated on {k} fresh seeds x {episodes} episodes; "
                     f"95% intervals are percentile-bootstrap intervals of the IQM. The "
                     f"dense agents (from the sweep's dense cache) are re-evaluated on the "
                     f"same episodes: '% of dense' is a point's re-evaluated IQM over its "
                     f"dense agent's.")
    if "latency_us" in objectives:
        notes.append(f"Latency (batch 1, one thread): front points re-measured "
                     f"{LATENCY_RUNS} x 200 forwards on this machine; the front is chosen "
                     f"on the re-measured medians.")
    if info.get("noise_std"):
        notes.append(f"return_noise: the same evaluation episodes with Gaussian observation "
                     f"noise of {info['noise_std']} x the per-dimension std of 1,024 states "
                     f"the dense policy visits.")
    return notes


def _insights(study: optuna.Study, front: pd.DataFrame, ret_col: str, info: dict[str, Any],
              storage: str, objectives: list[str], hv: dict[str, float]) -> Insights:
    return Insights(wins=budget_wins(front, info["ref_params"]), return_col=ret_col,
                    importances=param_importances(study, pairs(objectives)),
                    reuse=reuse_commands(knee_row(front, objectives, hv), storage=storage,
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
