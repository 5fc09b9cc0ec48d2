"""The verbs, as plain functions (the CLI only parses and prints): trial, evaluate,
sweep, worker, baseline, report, best, export."""

from __future__ import annotations

import json
import os
import signal
import socket
import zlib
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas_prune.config.base import load_yaml, parse
from nas_prune.config.sweep import SAFE_NAME, Sweep, load_sweep
from nas_prune.config.trial import TrialConfig
from nas_prune.results.stats import bootstrap_ci, iqm
from nas_prune.rl.evaluation import ActFn, evaluate_fn
from nas_prune.rl.heads import act
from nas_prune.trial.artifacts import load_policy
from nas_prune.trial.dense_cache import env_spec
from nas_prune.trial.metrics import TrialMetrics
from nas_prune.util.device import resolve_device
from nas_prune.util.files import check_writable

__all__ = ["Merge", "baseline", "baseline_for", "best", "evaluate_dir", "export",
           "load_trial_config", "report", "seed_summary", "sweep", "trial", "worker"]

Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]




def load_trial_config(path: Path | None, overrides: dict[str, Any], merge: Merge) -> TrialConfig:
    """A TrialConfig from an optional YAML file with CLI overrides on top."""
    data = load_yaml(path) if path is not None else {}
    return parse(TrialConfig, merge(data, overrides))  # type: ignore[no-any-return]


def trial(path: Path | None, overrides: dict[str, Any], *, out: Path | None,
          cache: Path | None, seeds: int, merge: Merge) -> None:
    """Run a trial (or the same trial on ``seeds`` consecutive seeds); print JSON lines."""
    from nas_prune.trial.run import run_trial

    cfg = load_trial_config(path, overrides, merge)
    resolve_device(cfg.device)  # cuda without CUDA: refused before any training
    if seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {seeds}")
    out = out or Path("runs") / f"trial-{cfg.agent.name}-{cfg.pruning.method}-s{cfg.seed}"
    check_writable(out)
    rows = []
    for k in range(seeds):
        cfg_k = cfg.model_copy(update={"seed": cfg.seed + k}) if k else cfg
        where = out if seeds == 1 else out / f"seed-{cfg_k.seed}"
        result = run_trial(cfg_k, cache_dir=cache, out=where)
        print(json.dumps(result.metrics.as_dict()), flush=True)
        rows.append(result.metrics)
    if seeds > 1:
        print(json.dumps(seed_summary(rows)))


def seed_summary(rows: list[TrialMetrics]) -> dict[str, Any]:
    """Mean, IQM and 95% bootstrap interval of the per-seed mean returns."""
    means = np.array([r.return_mean for r in rows], dtype=float)
    lo, hi = bootstrap_ci(means, stat="mean")
    return {"seeds": [r.seed for r in rows], "return_means": means.tolist(),
            "mean": float(means.mean()), "iqm": float(iqm(means)), "ci95": [lo, hi],
            "params_nonzero": rows[0].params_nonzero}


def evaluate_dir(directory: Path, *, episodes: int | None, seed: int | None) -> dict[str, Any]:
    """Evaluate the policy saved in a trial folder, or an exported ``.onnx`` file (through
    onnxruntime, with the config embedded in it), with its config's env."""
    policy: ActFn
    if directory.suffix == ".onnx" and not directory.is_dir():
        from nas_prune.deploy.runtime import load_onnx_policy, onnx_act

        exported = load_onnx_policy(directory)
        cfg, policy = exported.config, onnx_act(exported)
    else:
        cfg = parse(TrialConfig, load_yaml(directory / "config.yaml"))
        net, head = load_policy(directory)
        policy = partial(act, net, head)
    n = episodes or cfg.eval.episodes
    s = seed if seed is not None else (cfg.eval.seed if cfg.eval.seed is not None else cfg.seed)
    threads = int(os.environ.get("NAS_PRUNE_THREADS", "1"))
    import torch

    torch.set_num_threads(threads)
    res = evaluate_fn(policy, env_spec(cfg), episodes=n, seed=s)
    return {"dir": str(directory), "episodes": n, "eval_seed": s, "return_mean": res.mean,
            "return_std": res.std, "return_iqm": res.iqm, "q_mean": res.q_mean,
            "returns": res.returns}


def export(directory: Path, *, fmt: str, int8: bool, out: Path | None) -> dict[str, Any]:
    """Export a trial folder's policy (ONNX, checked against torch, or safetensors)."""
    import torch

    from nas_prune.deploy.export import export_trial

    torch.set_num_threads(int(os.environ.get("NAS_PRUNE_THREADS", "1")))
    return export_trial(directory, fmt=fmt, int8=int8, out=out)


def _resolve(sweep_file: Path | None, storage: str | None,
             study: str | None, out: Path | None = None) -> tuple[str, str, Sweep | None]:
    if sweep_file is not None:
        sw = load_sweep(sweep_file, storage=storage, study=study, out=out)
        return sw.storage, sw.study, sw
    if storage is None or study is None:
        raise ValueError("report: give a sweep file, or both --storage and --study")
    if not SAFE_NAME.match(study):
        raise ValueError(f"--study: {study!r} must be letters, digits, '_', '.', '-'")
    return storage, study, None


def sweep(sweep_file: Path, *, trials: int | None, storage: str | None, study: str | None,
          workers: int | None, out: Path | None, report: bool = True,
          backend: str | None = None, address: str | None = None,
          max_concurrent: int | None = None, sampler_seed: int | None = None,
          device: str | None = None) -> int:
    """Run or resume the sweep; then baseline and report. Returns the exit code."""
    import optuna

    from nas_prune.search.backends import RunOptions, backends, check_support
    from nas_prune.search.progress import sweep_progress
    from nas_prune.search.storage import repair_journal
    from nas_prune.search.sweep import claim_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sw = load_sweep(sweep_file, storage=storage, study=study, out=out,
                    sampler_seed=sampler_seed, device=device)
    resolve_device(sw.config.device)  # cuda without CUDA: refused before any trial
    if trials is not None and trials < 1:
        raise ValueError(f"--trials: must be >= 1, got {trials}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: must be >= 1, got {workers}")
    chosen = backend or sw.config.backend
    check_support(chosen, early_stop=sw.config.early_stop.requested(),
                  reproducible=sw.config.reproducible_requested(), field_name="--backend")
    total = trials or sw.config.trials
    cut = repair_journal(sw.storage)
    if cut:
        print(f"journal: cut a half-written last record ({cut} bytes, kept in .torn)")
    st = claim_study(sw, total)
    info = st.user_attrs["sweep"]
    print(f"sweep {sw.study}: {total} trials, storage {sw.storage}, out {sw.study_dir}",
          flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM: stop like Ctrl-C, trial told FAIL
    try:
        with sweep_progress(total, info["ref_params"], _log) as progress:
            opts = RunOptions(trials=total, workers=workers or sw.config.workers,
                              address=address, max_concurrent=max_concurrent,
                              callbacks=[progress], log=_log)
            recovered = backends.get(chosen).run(sw, opts)
    except KeyboardInterrupt:
        print("interrupted: the running trial is recorded as FAIL; re-run the same command "
              "to resume", flush=True)
        return 130
    if recovered:
        print(f"recovered stale trials {recovered} (marked FAIL, queued for retry)")
    if report:
        if sw.config.baseline.enabled:
            baseline_for(sw)
        _report(sw.storage, sw.study, sw.study_dir / "report", reeval=True)
    return 0


def worker(sweep_file: Path, *, storage: str | None, study: str | None, trials: int | None,
           out: Path | None, sampler_seed: int | None = None) -> None:
    """Join the sweep's existing study and run trials until it holds its total."""
    import optuna

    from nas_prune.search.backends.optuna_backend import optimize
    from nas_prune.search.progress import sweep_progress
    from nas_prune.search.sweep import claim_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sw = load_sweep(sweep_file, storage=storage, study=study, out=out,
                    sampler_seed=sampler_seed)
    resolve_device(sw.config.device)
    if trials is not None and trials < 1:
        raise ValueError(f"--trials: must be >= 1, got {trials}")
    signal.signal(signal.SIGTERM, _interrupt)  # the running trial is told FAIL, not left
    total = trials or sw.config.trials
    # the first worker creates the study, others join it (a changed sweep is refused)
    st = claim_study(sw, total, owner=False)
    info = st.user_attrs["sweep"]
    # a worker index from the host and process, so machines draw different samples
    index = 1 + zlib.crc32(f"{socket.gethostname()}-{os.getpid()}".encode()) % 1_000_000
    with sweep_progress(total, int(info.get("ref_params", 1)), _log) as progress:
        optimize(sw, total, [progress], worker=index)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _log(line: str) -> None:
    print(line, flush=True)


def baseline_for(sw: Sweep) -> None:
    """Run the sweep's baseline (skipping sparsities already recorded)."""
    from nas_prune.search.baseline import run_baseline

    run_baseline(sw, log=_log)


def baseline(sweep_file: Path, *, storage: str | None, study: str | None,
             out: Path | None, sampler_seed: int | None = None) -> None:
    """The ``baseline`` verb (refused, like ``sweep``, when the sweep file changed): run
    beside a sweep that is still searching, it has the baseline ready when the search
    ends."""
    from nas_prune.search.fingerprint import check_fingerprint
    from nas_prune.search.storage import find_study

    sw = load_sweep(sweep_file, storage=storage, study=study, out=out,
                    sampler_seed=sampler_seed)
    existing = find_study(sw.storage, sw.study)
    if existing is not None:
        check_fingerprint(existing, sw)
    baseline_for(sw)


def report(sweep_file: Path | None, *, storage: str | None, study: str | None,
           out: Path | None, reeval: bool) -> None:
    """The ``report`` verb."""
    st, name, sw = _resolve(sweep_file, storage, study)
    _report(st, name, out or (sw.study_dir / "report" if sw else None), reeval=reeval)


def _report(storage: str, name: str, out: Path | None, *, reeval: bool) -> None:
    from nas_prune.results.report import render, terminal_table
    from nas_prune.results.summary import summarize

    summary = summarize(storage, name, reeval=reeval)
    files = render(summary.data, out or summary.report_dir)
    print(terminal_table(summary.data))
    for kind, path in files.items():
        print(f"{kind}: {path}")


def best(sweep_file: Path | None, *, storage: str | None, study: str | None,
         max_params: int | None, min_return: float | None, knee: bool,
         out: Path, max_latency_us: float | None = None,
         max_bytes: int | None = None) -> dict[str, Any]:
    """The ``best`` verb: choose on the (re-evaluated) front, write the trial config."""
    from nas_prune.results.best import write_best
    from nas_prune.results.report.data import hv_box
    from nas_prune.results.summary import summarize

    st, name, _ = _resolve(sweep_file, storage, study)
    summary = summarize(st, name, insights=False)
    return write_best(summary.data.front, summary.ret_col, max_params=max_params,
                      min_return=min_return, knee=knee, out=out,
                      max_latency_us=max_latency_us, max_bytes=max_bytes,
                      objectives=summary.data.objectives,
                      box=hv_box(summary.data.hypervolume))
