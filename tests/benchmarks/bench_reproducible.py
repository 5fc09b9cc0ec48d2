"""Generation-synchronous (reproducible) against asynchronous sampling, side by side: the
same sweep with the same workers in both modes, alternating, several repeats. Prints each
run's wall time of the trials (the shared dense agents are trained once, by a warm-up
sweep, and copied in; no baseline, no report), trials per hour, env steps of the trials,
stopped trials, and the front (params, return) so that the reproducible runs can be
compared.

    python -m tests.benchmarks.bench_reproducible [--sweep sweeps/cartpole_quick.yaml]
        [--workers 2] [--repeats 3] [--trials N]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

from nas_prune.config.sweep import load_sweep
from nas_prune.results.study import complete, front_of, trials_frame
from tests.benchmarks.bench_early_stop import timed_sweep


def _variant(src: Path, tmp: Path, name: str, *, reproducible: bool,
             args: argparse.Namespace) -> Path:
    data = yaml.safe_load(src.read_text())
    data.update(name=name, out=str(tmp / name), workers=args.workers,
                reproducible=reproducible, reeval={"seeds": 0}, baseline={"enabled": False})
    if args.trials:
        data["trials"] = args.trials
    data["space"] = str((src.parent / data["space"]).resolve())
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(path: Path, dense: Path | None) -> tuple[float, float, int, float, int, str]:
    study, wall = timed_sweep(path, dense)
    # the trials' own span: first start to last finish (worker start-up excluded)
    span = (max(t.datetime_complete for t in study.trials if t.datetime_complete)
            - min(t.datetime_start for t in study.trials if t.datetime_start)).total_seconds()
    df = trials_frame(study)
    finished = int(df["state"].isin(["COMPLETE", "PRUNED"]).sum())
    front = front_of(complete(df))
    points = " ".join(f"{int(p)}:{r:.1f}" for p, r in
                      zip(front["params_nonzero"], front["return_mean"]))
    return (wall, span, finished, float(df["trial_env_steps"].fillna(0).sum()),
            int((df["state"] == "PRUNED").sum()), points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sweep", type=Path, default=Path("sweeps/cartpole_quick.yaml"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=0, help="0: the sweep file's")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nas_prune_rep_"))
    _run(_variant(args.sweep, tmp, "warmup", reproducible=True, args=args), None)
    dense = load_sweep(tmp / "warmup.yaml").dense_cache  # trained once, here
    rates: dict[bool, list[float]] = {True: [], False: []}  # by the sweep's wall time
    spans: dict[bool, list[float]] = {True: [], False: []}  # by the trials' own span
    fronts: dict[bool, set[str]] = {True: set(), False: set()}
    print(f"{'mode':13s} {'run':>3s} {'wall_s':>7s} {'span_s':>7s} {'trials':>6s} "
          f"{'trials/h':>9s} {'env_steps':>10s} {'stopped':>7s}  front (params:return)")
    for k in range(args.repeats):
        for reproducible in (True, False):  # alternating: machine noise hits both
            name = f"{'sync' if reproducible else 'async'}-{k}"
            wall, span, n, steps, stopped, front = _run(
                _variant(args.sweep, tmp, name, reproducible=reproducible, args=args), dense)
            rates[reproducible].append(3600 * n / wall)
            spans[reproducible].append(3600 * n / span)
            fronts[reproducible].add(front)
            mode = "reproducible" if reproducible else "asynchronous"
            print(f"{mode:13s} {k:3d} {wall:7.1f} {span:7.1f} {n:6d} {3600 * n / wall:9.0f} "
                  f"{steps:10,.0f} {stopped:7d}  {front}", flush=True)
    sync, asyn = np.mean(rates[True]), np.mean(rates[False])
    print(f"\ntrials per hour, mean ± std over {args.repeats} runs: reproducible "
          f"{sync:.0f} ± {np.std(rates[True]):.0f}, asynchronous {asyn:.0f} ± "
          f"{np.std(rates[False]):.0f}; cost of reproducibility {1 - sync / asyn:+.1%}")
    s_sync, s_asyn = np.mean(spans[True]), np.mean(spans[False])
    print(f"trials per hour over the trials' own span: reproducible {s_sync:.0f}, "
          f"asynchronous {s_asyn:.0f}; cost {1 - s_sync / s_asyn:+.1%}")
    print(f"distinct fronts: reproducible {len(fronts[True])}, asynchronous "
          f"{len(fronts[False])} (of {args.repeats} runs each)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
