"""A finished sweep that mixes pruning after training with pruning while training (issue
15), by family: trials, what they cost (env and gradient steps, the dense training counted
in the trial that paid it), and their best points; and a PNG of return against nonzero
parameters and against each trial's env steps, one colour per schedule.

    python -m tests.benchmarks.families_table sweeps/cartpole_mixed.yaml [--png PATH]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nas_prune.config.sweep import load_sweep
from nas_prune.results.study import complete, front_of, trials_frame
from nas_prune.search.storage import load_study

COLOURS = {"oneshot": "tab:gray", "gradual": "tab:blue", "iterative": "tab:cyan",
           "during": "tab:orange", "sparse": "tab:green"}


def family_rows(done: pd.DataFrame) -> list[str]:
    front = set(front_of(done)["number"])
    rows = ["| schedule | trials | on the front | env steps (sum) | gradient steps (sum) | "
            "best return ≤ 5% of the widest dense | methods |", "|---|---|---|---|---|---|---|"]
    ref = float(done["params_dense"].max())
    for schedule, g in done.groupby("schedule"):
        small = g[g["params_nonzero"] <= 0.05 * ref]
        best = f"{small['return_mean'].max():.1f}" if not small.empty else "—"
        rows.append(f"| {schedule} | {len(g)} | {len(front & set(g['number']))} | "
                    f"{g['env_steps'].sum():,.0f} | {g['gradient_steps'].sum():,.0f} | "
                    f"{best} | {', '.join(sorted(set(g['method'])))} |")
    return rows


def plot(done: pd.DataFrame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for schedule, g in done.groupby("schedule"):
        c = COLOURS.get(str(schedule), "black")
        left.scatter(g["params_nonzero"], g["return_mean"], s=18, color=c, label=schedule)
        right.scatter(g["env_steps"], g["return_mean"], s=18, color=c, label=schedule)
    front = front_of(done)
    left.step(front["params_nonzero"], front["return_mean"], where="post", color="black",
              lw=0.8)
    left.set(xscale="log", xlabel="nonzero parameters (deployed policy)", ylabel="return")
    right.set(xlabel="env steps the trial paid", ylabel="return")
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    sw = load_sweep(args.sweep)
    done = complete(trials_frame(load_study(sw.storage, sw.study)))
    print("\n".join(family_rows(done)))
    front = front_of(done)
    print("\nfront (raw trial returns):")
    for _, r in front.iterrows():
        print(f"- #{int(r['number'])}: {int(r['params_nonzero'])} params, return "
              f"{r['return_mean']:.1f}, {r['schedule']} {r['method']}, hidden {r['hidden']}, "
              f"{r['env_steps']:,.0f} env steps")
    if args.png is not None:
        plot(done, args.png)
        print(f"png: {args.png}")


if __name__ == "__main__":
    main()
