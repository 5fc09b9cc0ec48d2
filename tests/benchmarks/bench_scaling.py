"""Scaling benchmark: trials per hour with 1 vs 2 concurrent trials on the Optuna workers
(journal storage) and on the Ray backend, and each orchestrator's overhead. Torch threads
are pinned to 1 per trial.

    python -m tests.benchmarks.bench_scaling [--trials 10] [--skip-ray]

Overhead is the sweep's wall time minus the time spent inside ``run_trial`` (each trial's
``wall_s``). It is split into a fixed start-up cost and a per-trial cost by running each
orchestrator twice, with 2 and with ``--trials`` trials: per-trial overhead is the slope
between the two runs. The dense agent is trained once up front and shared through the
cache, so every timed trial is prune + fine-tune + evaluate on identical budgets.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

SPACE = {"method": {"choices": ["importance", "magnitude"]}, "hidden": "64,64",
         "sparsity": {"low": 0.0, "high": 0.9}, "finetune_steps": 8192}


def _write(tmp: Path, trials: int, name: str) -> Path:
    (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE))
    sweep = {"name": name, "agent": {"name": "ppo", "train_steps": 4096},
             "eval": {"episodes": 50}, "space": "space.yaml", "trials": trials,
             "sampler": "random", "out": str(tmp / name), "reeval": {"seeds": 0},
             "baseline": {"enabled": False}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _direct(sweep_file: Path, trials: int, dense_dir: Path) -> float:
    import optuna

    from nas_prune.config.space import suggest
    from nas_prune.config.sweep import load_sweep
    from nas_prune.trial.run import run_trial

    sw = load_sweep(sweep_file)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    start = time.perf_counter()
    for _ in range(trials):
        t = study.ask()
        cfg = suggest(t, sw.space, sw.template())
        m = run_trial(cfg, cache_dir=dense_dir).metrics.as_dict()
        study.tell(t, [m["return_mean"], m["params_nonzero"]])
    return time.perf_counter() - start


def _sweep(sweep_file: Path, dense_dir: Path, *, workers: int, ray: bool) -> tuple[float, float]:
    """(sweep wall time, summed run_trial time of its trials)."""
    from nas_prune.config.sweep import load_sweep

    sw = load_sweep(sweep_file)
    shutil.copytree(dense_dir, sw.dense_cache)
    from nas_prune.search.backends.optuna_backend import run_sweep
    from nas_prune.search.sweep import claim_study

    claim_study(sw, sw.config.trials)
    start = time.perf_counter()
    if ray:
        from nas_prune.search.backends.ray_backend import run_ray

        run_ray(sw, trials=sw.config.trials, address=None, max_concurrent=workers)
    else:
        run_sweep(sw, workers=workers)
    wall = time.perf_counter() - start
    from nas_prune.results.study import trials_frame
    from nas_prune.search.record import read as trial_attrs
    from nas_prune.search.storage import load_study

    study = load_study(sw.storage, sw.study)
    df = trials_frame(study)
    inside = float(df["wall_s"].sum())
    if ray and workers == 1 and "ray_started_at" in df:
        # the trainable's own start/report times
        _print_gaps("ray: report -> next trial start", "in-trainable outside run_trial",
                    df["ray_started_at"], df["ray_reported_at"], df["wall_s"])
    elif not ray and workers == 1:
        # Optuna's ask/tell times: outside run_trial are suggest, the metrics write, the
        # trial's checkpoint files and tell
        done = [t for t in study.trials if t.datetime_complete is not None]
        _print_gaps("optuna: tell -> next ask", "ask -> tell outside run_trial",
                    [t.datetime_start.timestamp() for t in done],
                    [t.datetime_complete.timestamp() for t in done],
                    [float(trial_attrs(t)["wall_s"]) for t in done])
    return wall, inside


def _print_gaps(between: str, within: str, starts: Sequence[float], ends: Sequence[float],
                walls: Sequence[float]) -> None:
    """An orchestrator's time per trial on one worker, from its own timestamps: the gap
    from one trial's end to the next one's start, plus each trial's start-to-end time
    outside run_trial (medians)."""
    order = np.argsort(np.asarray(starts, dtype=float))
    start, end, wall = (np.asarray(v, dtype=float)[order] for v in (starts, ends, walls))
    gaps, inside = start[1:] - end[:-1], end - start - wall
    per_trial = float(np.median(gaps) + np.median(inside))
    print(f"  {between} {np.median(gaps):.3f} s (median of {len(gaps)}), {within} "
          f"{np.median(inside):.3f} s: {per_trial:.3f} s per trial, "
          f"{100 * per_trial / wall.mean():.1f}% of a {wall.mean():.2f} s trial")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nas_prune_scaling_"))
    dense = tmp / "dense"
    _direct(_write(tmp, 1, "warm"), 1, dense)  # trains the dense agent into the cache
    direct = _direct(_write(tmp, args.trials, "direct"), args.trials, dense)
    kinds = [("optuna", False)]
    if not args.skip_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        print(f"ray.init: {time.perf_counter() - t0:.1f} s (not counted below)")
        kinds.append(("ray", True))
    runs: dict[tuple[str, int, int], tuple[float, float]] = {}
    for kind, ray_backend in kinds:
        for workers, n in ((1, 2), (1, args.trials), (2, args.trials)):
            name = f"{kind}{workers}n{n}"
            runs[kind, workers, n] = _sweep(_write(tmp, n, name), dense, workers=workers,
                                            ray=ray_backend)
    if not args.skip_ray:
        ray.shutdown()
    _print(args.trials, direct, runs, [k for k, _ in kinds])
    shutil.rmtree(tmp, ignore_errors=True)


def _print(trials: int, direct: float, runs: dict[tuple[str, int, int], tuple[float, float]],
           kinds: list[str]) -> None:
    print("\nPPO CartPole, [64,64], 8,192 fine-tune steps, 50 eval episodes per trial "
          "(the quick start's trial), "
          f"1 torch thread per trial; direct run_trial loop: {direct / trials:.2f} s/trial")
    print(f"{'orchestrator':10s} {'trial_s':>8s} {'startup_s':>10s} {'overhead/trial_s':>17s} "
          f"{'overhead %':>11s} {'trials/h 1':>11s} {'trials/h 2':>11s} {'2 vs 1':>7s}")
    for kind in kinds:
        (w_small, in_small), (w_big, in_big) = runs[kind, 1, 2], runs[kind, 1, trials]
        per_trial = ((w_big - in_big) - (w_small - in_small)) / (trials - 2)
        startup = (w_small - in_small) - 2 * per_trial
        trial_s = in_big / trials
        one, two = 3600 * trials / w_big, 3600 * trials / runs[kind, 2, trials][0]
        print(f"{kind:10s} {trial_s:8.2f} {startup:10.2f} {per_trial:17.3f} "
              f"{100 * per_trial / trial_s:10.1f}% {one:11.0f} {two:11.0f} {two / one:6.2f}x")


if __name__ == "__main__":
    main()
