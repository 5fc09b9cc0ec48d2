"""The uniform-pruning baseline: global magnitude pruning at fixed sparsities on the
reference architecture, same fine-tune budget, recorded in its own study beside the sweep's.

A baseline trial whose exact config another baseline study in the same storage has already
completed (a second sampler seed's search of the same sweep: the baseline does not depend on
the sampler) is copied from there, its record and its folder, rather than run again: trials
are deterministic in their config (tests/test_reproducibility.py), so the run would give the
same figures."""
from __future__ import annotations

import multiprocessing as mp
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from nas_prune.config.space import Choice, Range
from nas_prune.config.sweep import Sweep
from nas_prune.config.trial import TrialConfig, with_picks
from nas_prune.trial.metrics import TrialMetrics
from nas_prune.results.study import BASELINE_SUFFIX
from nas_prune.search import record
from nas_prune.search.storage import create_study, load_study, open_storage

__all__ = ["COPIED_FROM", "baseline_configs", "baseline_study", "run_baseline"]

COPIED_FROM = "copied_from"  # user attribute of a copied baseline trial: "<study>#<number>"


def baseline_study(sweep: Sweep) -> optuna.Study:
    """Create or open the baseline's study (same storage, name + '.baseline')."""
    return create_study(sweep.storage, sweep.study + BASELINE_SUFFIX,
                        optuna.samplers.RandomSampler(seed=0), sweep.objectives)


def baseline_configs(sweep: Sweep) -> list[TrialConfig]:
    """One TrialConfig per baseline sparsity."""
    b, space = sweep.config.baseline, sweep.space
    steps = b.finetune_steps if b.finetune_steps is not None else _largest(space.finetune_steps)
    reference = sweep.reference()
    return [with_picks(reference, hidden=list(reference.agent.hidden or []), pruning={
        "method": b.method, "schedule": b.schedule, "sparsity": s,
        "finetune": {"mode": b.finetune_mode, "steps": steps}}) for s in b.sparsities]


def _largest(dim: Any) -> int:
    if isinstance(dim, Choice):
        return int(max(float(x) for x in dim.choices))
    if isinstance(dim, Range):
        return int(dim.high)
    return int(dim)


def run_baseline(sweep: Sweep, log: Callable[[str], None] = print, *,
                 workers: int | None = None) -> optuna.Study:
    """Run the baseline sparsities not yet recorded; return the baseline study.

    ``workers`` local processes (default: the sweep's ``workers``) run the sparsities at
    once, each recorded as it ends (so an interrupted baseline keeps what finished)."""
    study = baseline_study(sweep)
    done = {round(t.params.get("sparsity", -1), 6)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    elsewhere = _completed_elsewhere(sweep.storage, study.study_name)
    todo: list[tuple[float, TrialConfig, Path]] = []
    for cfg in baseline_configs(sweep):
        s = float(cfg.pruning.sparsity)  # type: ignore[arg-type]
        if round(s, 6) in done:
            continue
        out = sweep.study_dir / "baseline" / f"sparsity-{s:.4f}"
        found = elsewhere.get(_config_key(cfg.model_dump(mode="json")))
        src = Path(str(record.read(found[1]).get("out_dir"))) if found else None
        if found and src is not None and (src / "metrics.json").is_file():
            name, t = found
            m = record.read_metrics(t)
            assert m is not None  # a COMPLETE baseline trial has its metrics
            shutil.copytree(src, out, dirs_exist_ok=True)  # the study owns its files
            record.add_finished(study, state=TrialState.COMPLETE, config=cfg,
                                out_dir=str(out.resolve()), metrics=m,
                                values=record.objective_values(m, sweep.objectives),
                                attrs={COPIED_FROM: f"{name}#{t.number}"}, **_where(s))
            log(f"baseline sparsity={s:.3f}: params_nonzero={m.params_nonzero} "
                f"return={m.return_mean:.1f} (the same trial config, completed in "
                f"{name} #{t.number}: its files copied, not run again)")
            continue
        todo.append((s, cfg, out))
    for s, cfg, out, outcome in _run_all(todo, sweep.dense_cache, workers or sweep.config.workers):
        if isinstance(outcome, str):  # recorded, go on
            record.add_finished(study, state=TrialState.FAIL, config=cfg,
                                out_dir=str(out.resolve()),
                                attrs={record.FAIL_REASON: outcome}, **_where(s))
            log(f"baseline sparsity={s:.3f}: FAIL ({outcome})")
            continue
        m = outcome
        record.add_finished(study, state=TrialState.COMPLETE, config=cfg,
                            out_dir=str(out.resolve()), metrics=m,
                            values=record.objective_values(m, sweep.objectives), **_where(s))
        log(f"baseline sparsity={s:.3f}: params_nonzero={m.params_nonzero} "
            f"return={m.return_mean:.1f} ({m.wall_s:.1f}s)")
    return study


def _where(s: float) -> dict[str, Any]:
    return {"params": {"sparsity": s}, "distributions": {"sparsity": FloatDistribution(0.0, 1.0)}}


def _run_one(cfg: TrialConfig, cache_dir: Path, out: Path) -> TrialMetrics | str:
    """One baseline trial's metrics, or its failure as ``"<Error>: <message>"``."""
    from nas_prune.trial.run import run_trial

    try:
        return run_trial(cfg, cache_dir=cache_dir, out=out).metrics
    except (ValueError, FloatingPointError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"


def _run_all(todo: list[tuple[float, TrialConfig, Path]], cache_dir: Path, workers: int
             ) -> Iterator[tuple[float, TrialConfig, Path, TrialMetrics | str]]:
    """Each trial's outcome as it ends: in this process, or in ``workers`` spawned ones (a
    dense agent not yet cached is trained once: the cache's lock holds the others)."""
    if workers <= 1 or len(todo) <= 1:
        for s, cfg, out in todo:
            yield s, cfg, out, _run_one(cfg, cache_dir, out)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                             mp_context=mp.get_context("spawn")) as pool:
        jobs = {pool.submit(_run_one, cfg, cache_dir, out): (s, cfg, out)
                for s, cfg, out in todo}
        for job in as_completed(jobs):
            yield (*jobs[job], job.result())


def _config_key(config: dict[str, Any]) -> str:
    import json

    return json.dumps(config, sort_keys=True)


def _completed_elsewhere(storage: str, own: str) -> dict[str, tuple[str, FrozenTrial]]:
    """The COMPLETE trials of the storage's other baseline studies, by their exact config."""
    found: dict[str, tuple[str, FrozenTrial]] = {}
    for name in sorted(optuna.get_all_study_names(open_storage(storage))):
        if name == own or not name.endswith(BASELINE_SUFFIX):
            continue
        for t in load_study(storage, name).get_trials(deepcopy=False,
                                                        states=(TrialState.COMPLETE,)):
            config = record.read(t).get("config")
            if config is not None and COPIED_FROM not in t.user_attrs:
                found.setdefault(_config_key(config), (name, t))
    return found
