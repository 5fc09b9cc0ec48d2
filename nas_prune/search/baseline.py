"""The uniform-pruning baseline: global magnitude pruning at fixed sparsities on the
reference architecture, same fine-tune budget, recorded in its own study beside the sweep's.

A baseline trial whose exact config another baseline study in the same storage has already
completed (a second sampler seed's search of the same sweep: the baseline does not depend on
the sampler) is copied from there rather than run again: trials are deterministic in their
config (tests/test_reproducibility.py), so the run would give the same figures."""
from __future__ import annotations

from typing import Any, Callable

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from nas_prune.config.space import Choice, Range
from nas_prune.config.sweep import Sweep
from nas_prune.config.trial import TrialConfig, with_picks
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


def run_baseline(sweep: Sweep, log: Callable[[str], None] = print) -> optuna.Study:
    """Run the baseline sparsities not yet recorded; return the baseline study."""
    from nas_prune.trial.run import run_trial

    study = baseline_study(sweep)
    done = {round(t.params.get("sparsity", -1), 6)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    elsewhere = _completed_elsewhere(sweep.storage, study.study_name)
    for cfg in baseline_configs(sweep):
        s = float(cfg.pruning.sparsity)  # type: ignore[arg-type]
        if round(s, 6) in done:
            continue
        out = sweep.study_dir / "baseline" / f"sparsity-{s:.4f}"
        where: dict[str, Any] = {
            "params": {"sparsity": s}, "distributions": {"sparsity": FloatDistribution(0.0, 1.0)}}
        key = _config_key(cfg.model_dump(mode="json"))
        if key in elsewhere:
            name, t = elsewhere[key]
            m = record.read_metrics(t)
            assert m is not None  # a COMPLETE baseline trial has its metrics
            record.add_finished(study, state=TrialState.COMPLETE, config=cfg,
                                out_dir=record.read(t).get("out_dir"), metrics=m,
                                values=record.objective_values(m, sweep.objectives),
                                attrs={COPIED_FROM: f"{name}#{t.number}"}, **where)
            log(f"baseline sparsity={s:.3f}: params_nonzero={m.params_nonzero} "
                f"return={m.return_mean:.1f} (the same trial config, completed in "
                f"{name} #{t.number}: copied, not run again)")
            continue
        try:
            result = run_trial(cfg, cache_dir=sweep.dense_cache, out=out)
        except (ValueError, FloatingPointError, RuntimeError) as exc:  # recorded, go on
            record.add_finished(
                study, state=TrialState.FAIL, config=cfg, out_dir=str(out.resolve()),
                attrs={record.FAIL_REASON: f"{type(exc).__name__}: {str(exc)[:300]}"},
                **where)
            log(f"baseline sparsity={s:.3f}: FAIL ({exc})")
            continue
        m = result.metrics
        record.add_finished(study, state=TrialState.COMPLETE, config=cfg,
                            out_dir=str(out.resolve()), metrics=m,
                            values=record.objective_values(m, sweep.objectives), **where)
        log(f"baseline sparsity={s:.3f}: params_nonzero={m.params_nonzero} "
            f"return={m.return_mean:.1f} ({m.wall_s:.1f}s)")
    return study


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
