"""Ray Tune backend: Tuner + OptunaSearch driving the same define-by-run space; every
finished Ray trial is recorded in the sweep's Optuna study (the one record reports read)."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from nas_prune.config.objectives import pairs
from nas_prune.config.space import suggest
from nas_prune.config.sweep import Sweep
from nas_prune.config.trial import TrialConfig
from nas_prune.search import record
from nas_prune.search.backends import Backend, RunOptions, backends
from nas_prune.search.backends.optuna_backend import make_sampler
from nas_prune.search.record import objective_values
from nas_prune.search.storage import create_study, open_storage
from nas_prune.search.sweep import population_of
from nas_prune.trial.metrics import TrialMetrics

__all__ = ["DefineByRun", "RAY_ID", "modes", "run_ray"]

RAY_ID = "ray_trial_id"


def modes(sweep: Sweep) -> list[str]:
    """Tune's "max" / "min" per objective of the sweep, in order."""
    return [d[:3] for _, d in pairs(sweep.objectives)]


def _require_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError as exc:  # an actionable error for the optional dependency
        raise ValueError(f"--backend: ray needs 'pip install \"ray[tune]\"' ({exc})") from None
    return ray


class DefineByRun:
    """The define-by-run space OptunaSearch calls (a class: Ray saves its searcher with
    pickle, which cannot save closures). Returns the drawn TrialConfig as JSON."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.drawn = 0  # seeds rotate by draw order (saved with the searcher's state)

    def __call__(self, trial: Any) -> dict[str, Any]:
        cfg = suggest(trial, self.sweep.space, self.sweep.template(self.drawn))
        self.drawn += 1
        # the searched parameters travel with the config, so the study records them as the
        # Optuna backend does (parameter importances, trials.csv)
        searched = {k: [v, distribution_to_json(trial.distributions[k])]
                    for k, v in trial.params.items()}
        return {"trial_config": json.dumps(cfg.model_dump(mode="json")),
                "searched": json.dumps(searched)}


def _trainable(config: dict[str, Any], sweep: Sweep) -> None:
    """One Ray trial: run_trial on the config the searcher drew; report every metric."""
    started_at = time.time()
    from ray import tune

    from nas_prune.trial.run import run_trial

    cfg = TrialConfig.model_validate_json(config["trial_config"])
    out = sweep.trial_dir(f"ray-{tune.get_context().get_trial_id()}")
    result = run_trial(cfg, cache_dir=sweep.dense_cache, out=out)
    import ray

    # wall-clock times on the node: the gap from one trial's report to the next trial's
    # start on the same worker is Ray's per-trial overhead (tests/benchmarks/bench_scaling)
    metrics = result.metrics.model_copy(update={
        "ray_node_id": ray.get_runtime_context().get_node_id(),
        "ray_started_at": started_at, "ray_reported_at": time.time()})
    metrics.model_fields_set.update({"ray_node_id", "ray_started_at", "ray_reported_at"})
    scalars = {k: v for k, v in metrics.as_dict().items() if not isinstance(v, (list, dict))}
    tune.report({**scalars, "out_dir": str(out.resolve()),
                 "metrics_json": metrics.model_dump_json(exclude_unset=True)})


class _Recorder:
    """Driver-side Tune callback: copy each finished Ray trial into the Optuna study."""

    def __init__(self, sweep: Sweep) -> None:
        self.storage, self.name = sweep.storage, sweep.study
        self.objectives = sweep.objectives
        self._loaded: tuple[optuna.Study, set[str]] | None = None

    def _study(self) -> tuple[optuna.Study, set[str]]:
        # loaded once per run (reloading replays the whole journal: O(trials) per trial);
        # the Ray ids already recorded cover a restored run
        if self._loaded is None:
            study = optuna.load_study(study_name=self.name, storage=open_storage(self.storage))
            done = {str(t.user_attrs[RAY_ID]) for t in study.get_trials(deepcopy=False)
                    if RAY_ID in t.user_attrs}
            self._loaded = (study, done)
        return self._loaded

    def __getstate__(self) -> dict[str, Any]:  # Ray may pickle callbacks: drop the study
        return {**self.__dict__, "_loaded": None}

    def record(self, trial: Any, *, failed: bool) -> None:
        study, done = self._study()
        if trial.trial_id in done:
            return
        attrs: dict[str, Any] = {RAY_ID: trial.trial_id}
        drawn = trial.config.get("trial_config")
        config = TrialConfig.model_validate_json(drawn) if drawn else None
        res = trial.last_result or {}
        if failed or "metrics_json" not in res:
            attrs[record.FAIL_REASON] = str(getattr(trial, "error_msg", "")
                                            or "ray trial failed")[:300]
            record.add_finished(study, state=TrialState.FAIL, config=config, out_dir=None,
                                attrs=attrs)
        else:
            metrics = TrialMetrics.model_validate_json(res["metrics_json"])
            searched = json.loads(trial.config.get("searched", "{}"))
            record.add_finished(study, state=TrialState.COMPLETE, config=config,
                                out_dir=res["out_dir"], metrics=metrics,
                                values=objective_values(metrics, self.objectives), attrs=attrs,
                                params={k: v for k, (v, _) in searched.items()},
                                distributions={k: json_to_distribution(d)
                                               for k, (_, d) in searched.items()})
        done.add(trial.trial_id)


def _callback(sweep: Sweep) -> Any:
    from ray.tune import Callback

    recorder = _Recorder(sweep)

    class RecordToOptuna(Callback):  # type: ignore[misc]
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                              **info: Any) -> None:
            recorder.record(trial, failed=False)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                           **info: Any) -> None:
            recorder.record(trial, failed=True)

    return RecordToOptuna()


def run_ray(sweep: Sweep, *, trials: int, address: str | None, max_concurrent: int,
            cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
            max_failures: int = 1) -> dict[str, Any]:
    """Run (or restore) the sweep on Ray Tune; returns where results live."""
    ray = _require_ray()
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    study = create_study(sweep.storage, sweep.study, optuna.samplers.RandomSampler(),
                         sweep.objectives)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    storage_path = str((sweep.study_dir / "ray").resolve())
    name = f"{sweep.study}-ray"
    trainable = tune.with_resources(tune.with_parameters(_trainable, sweep=sweep),
                                    {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    path = str(Path(storage_path) / name)
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                   restart_errored=True)
    else:
        c = sweep.config
        searcher = OptunaSearch(space=DefineByRun(sweep), metric=sweep.objectives,
                                mode=modes(sweep),
                                sampler=make_sampler(c.sampler, c.sampler_seed,
                                                     population_of(study)))
        tuner = tune.Tuner(
            trainable,
            # reuse_actors: one worker process runs many trials (no torch import per trial)
            tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True,
                                        search_alg=ConcurrencyLimiter(
                                            searcher, max_concurrent=max_concurrent)),
            run_config=tune.RunConfig(
                name=name, storage_path=storage_path,
                callbacks=[_callback(sweep), JsonLoggerCallback()],
                failure_config=tune.FailureConfig(max_failures=max_failures), verbose=0))
    # Tune adds CSV, JSON and TensorBoard loggers unless told not to; TensorBoard's takes
    # ~6 ms per trial (1.5% of a quick-start trial) and the study holds every result: keep
    # only the JSON one (Tune's ResultGrid reads it). TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0
    # brings all three back.
    with _env_default("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1"):
        grid = tuner.fit()
    return {"ray_results": path, "errors": len(grid.errors)}


@contextmanager
def _env_default(key: str, value: str) -> Iterator[None]:
    """Set an unset environment variable for the block only (the caller's stays theirs)."""
    if key in os.environ:
        yield
        return
    os.environ[key] = value
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _run(sweep: Sweep, opts: RunOptions) -> list[int]:
    res = run_ray(sweep, trials=opts.trials, address=opts.address,
                  max_concurrent=opts.max_concurrent or opts.workers)
    opts.log(f"ray results: {res['ray_results']} ({res['errors']} errored trials)")
    return []


backends.register("ray")(Backend(run=_run, early_stop=False, reproducible=False))
