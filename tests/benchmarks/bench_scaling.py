"""Scaling benchmark: trials per hour with 1 vs 2 concurrent trials on the Optuna workers
(journal storage) and on the Ray backend, and the per-trial orchestration overhead against
calling run_trial directly. Torch threads are pinned to 1 per trial.

    python -m tests.benchmarks.bench_scaling [--trials 8] [--skip-ray]

The dense agent is trained once up front and shared through the cache, so every timed
trial is prune + fine-tune + evaluate on identical budgets.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

SPACE = {"method": {"choices": ["importance", "magnitude"]}, "hidden": "32,32",
         "sparsity": {"low": 0.0, "high": 0.9}, "finetune_steps": 8192}


def _write(tmp: Path, trials: int, name: str) -> Path:
    (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE))
    sweep = {"name": name, "agent": {"name": "ppo", "train_steps": 4096},
             "eval": {"episodes": 20}, "space": "space.yaml", "trials": trials,
             "sampler": "random", "out": str(tmp / name), "reeval": {"seeds": 0},
             "baseline": {"enabled": False}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _direct(sweep_file: Path, trials: int, dense_dir: Path) -> float:
    import optuna

    from nas_prune.space import suggest
    from nas_prune.sweep import load_sweep
    from nas_prune.trial import run_trial

    sw = load_sweep(sweep_file)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    start = time.perf_counter()
    for _ in range(trials):
        t = study.ask()
        cfg = suggest(t, sw.space, sw.base())
        m = run_trial(cfg, cache_dir=dense_dir).metrics
        study.tell(t, [m["return_mean"], m["params_nonzero"]])
    return time.perf_counter() - start


def _sweep(sweep_file: Path, dense_dir: Path, *, workers: int, ray: bool) -> float:
    from nas_prune.sweep import load_sweep

    sw = load_sweep(sweep_file)
    shutil.copytree(dense_dir, sw.out / "dense")
    from nas_prune.backends.optuna_backend import open_sweep_study, run_sweep
    from nas_prune.sweep_commands import prepare, record_info

    prepare(sw)
    record_info(open_sweep_study(sw, sw.config.trials), sw)
    start = time.perf_counter()
    if ray:
        from nas_prune.backends.ray_backend import run_ray

        run_ray(sw, trials=sw.config.trials, address=None, max_concurrent=workers)
    else:
        run_sweep(sw, workers=workers)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nas_prune_scaling_"))
    dense = tmp / "dense"
    _direct(_write(tmp, 1, "warm"), 1, dense)  # trains the dense agent into the cache
    rows = [("direct run_trial", 1, _direct(_write(tmp, args.trials, "direct"), args.trials,
                                            dense))]
    for workers in (1, 2):
        rows.append((f"optuna workers={workers}", workers,
                     _sweep(_write(tmp, args.trials, f"opt{workers}"), dense, workers=workers,
                            ray=False)))
    if not args.skip_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        init_s = time.perf_counter() - t0
        for workers in (1, 2):
            rows.append((f"ray max_concurrent={workers}", workers,
                         _sweep(_write(tmp, args.trials, f"ray{workers}"), dense,
                                workers=workers, ray=True)))
        ray.shutdown()
        print(f"ray.init: {init_s:.1f} s (not counted below)")
    direct = rows[0][2]
    print(f"\n{args.trials} trials each (PPO CartPole, [32,32], 8,192 fine-tune steps, "
          f"20 eval episodes), 1 torch thread per trial")
    print(f"{'how':26s} {'wall_s':>8s} {'trials/h':>9s} {'overhead/trial_s':>17s}")
    for how, workers, wall in rows:
        over = (wall * workers - direct) / args.trials if workers == 1 else float("nan")
        print(f"{how:26s} {wall:8.1f} {3600 * args.trials / wall:9.0f} {over:17.2f}")
    by = {how: wall for how, _, wall in rows}
    for kind, one, two in (("optuna", "optuna workers=1", "optuna workers=2"),
                           ("ray", "ray max_concurrent=1", "ray max_concurrent=2")):
        if one in by:
            print(f"{kind}: 2 vs 1 concurrent trials: {by[one] / by[two]:.2f}x trials/hour")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
