"""Multi-objective early stopping: the same sweep with and without it, over several sampler
seeds: total env steps of the trials (everything a trial steps: fine-tuning, rung and
snapshot evaluations, the final evaluation; measured by counting env steps; the shared
dense agents are trained once beforehand and not counted), the sweep's wall time, and the
hypervolume of the front of COMPLETE trials (normalised, log10 params, the sweep's
reference point).

    python -m tests.benchmarks.bench_early_stop [--sweep sweeps/cartpole_quick.yaml]
        [--seeds 3] [--trials 20] [--min-dominators 3] [--rungs 0.25,0.5] [--episodes 10]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import yaml

from nas_prune.config.sweep import load_sweep
from nas_prune.results.study import complete, front_of, hypervolumes, trials_frame
from nas_prune.search.backends.optuna_backend import run_sweep
from nas_prune.search.storage import load_study
from nas_prune.search.sweep import claim_study


def _variant(src: Path, tmp: Path, *, name: str, seed: int, args: argparse.Namespace,
             early: bool) -> Path:
    data = yaml.safe_load(src.read_text())
    # one worker: both variants draw the same trial configs in the same order, so the
    # comparison isolates what stopping changes
    data.update(name=name, sampler_seed=seed, trials=args.trials, out=str(tmp / name),
                workers=1, reeval={"seeds": 0}, baseline={"enabled": False},
                early_stop={"enabled": early, "rungs": args.rungs,
                            "min_dominators": args.min_dominators, "episodes": args.episodes,
                            "return_upper_bound": data.get("early_stop", {}).get(
                                "return_upper_bound")})
    data["space"] = str((src.parent / data["space"]).resolve())
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def timed_sweep(path: Path, dense: Path | None) -> tuple[optuna.Study, float]:
    """Run a sweep file's trials (no baseline, no report) with ``dense`` copied in as its
    dense cache; return its study and the trials' wall time (shared with bench_reproducible)."""
    sw = load_sweep(path)
    if dense is not None:
        shutil.copytree(dense, sw.dense_cache)
    claim_study(sw, sw.config.trials)
    start = time.perf_counter()
    run_sweep(sw)
    wall = time.perf_counter() - start
    return load_study(sw.storage, sw.study), wall


def _run(path: Path, dense: Path | None) -> tuple[float, float, int, float]:
    study, wall = timed_sweep(path, dense)
    sw = load_sweep(path)
    df = trials_frame(study)
    steps = float(df["trial_env_steps"].fillna(0).sum())
    hv = hypervolumes(front_of(complete(df)), df.iloc[0:0], {
        **study.user_attrs["sweep"], "max_return": sw.config.max_return or 500.0},
        "return_mean")["searched"]
    failed = int((df["state"] == "FAIL").sum())
    if failed:
        print(f"  {failed} trials FAILED: {df.loc[df['state'] == 'FAIL', 'fail_reason'].tolist()}")
    return steps, hv, int((df["state"] == "PRUNED").sum()), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sweep", type=Path, default=Path("sweeps/cartpole_quick.yaml"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--min-dominators", type=int, default=3)
    ap.add_argument("--rungs", type=lambda v: [float(x) for x in v.split(",") if x],
                    default=[0.25, 0.5], help="comma-separated fractions of the fine-tune budget")
    ap.add_argument("--episodes", type=int, default=10, help="selection episodes per rung")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nas_prune_es_"))
    rows = []
    dense: Path | None = None
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for early in (False, True):
            name = f"{'es' if early else 'full'}-s{seed}"
            path = _variant(args.sweep, tmp, name=name, seed=seed, args=args, early=early)
            steps, hv, pruned, wall = _run(path, dense)
            dense = dense or (tmp / name / "dense")
            rows.append((seed, early, steps, hv, pruned, wall))
            print(f"seed {seed} early_stop={early!s:5s} env_steps={steps:12,.0f} "
                  f"hypervolume={hv:.4f} stopped={pruned:2d} wall_s={wall:6.1f}", flush=True)
    full = np.array([(r[2], r[3], r[5]) for r in rows if not r[1]])
    es = np.array([(r[2], r[3], r[5]) for r in rows if r[1]])
    change = es[:, 0].mean() / full[:, 0].mean() - 1
    print(f"\nmean over {args.seeds} sweep seeds: env steps {es[:, 0].mean():,.0f} vs "
          f"{full[:, 0].mean():,.0f} ({abs(change):.1%} {'more' if change > 0 else 'fewer'}); "
          f"hypervolume {es[:, 1].mean():.4f} vs {full[:, 1].mean():.4f} "
          f"({es[:, 1].mean() / full[:, 1].mean() - 1:+.1%}); wall {es[:, 2].mean():.1f} s "
          f"vs {full[:, 2].mean():.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
