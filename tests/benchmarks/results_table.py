"""The README's Results rows for one finished sweep: dense reference, the best re-evaluated
front points under 10/5/2/1 % of the reference parameters, hypervolumes against the
baseline (whole sweep, and the sweep's first trials at the baseline's env-step budget).

    python -m tests.benchmarks.results_table sweeps/cartpole_dqn.yaml
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nas_prune.config.sweep import load_sweep
from nas_prune.results.study import complete, front_of, hypervolumes
from nas_prune.results.summary import summarize

BUDGETS = (0.10, 0.05, 0.02, 0.01)


def budget_rows(front: pd.DataFrame, ref: int) -> list[str]:
    rows = []
    for frac in BUDGETS:
        ok = front[front["params_nonzero"] <= frac * ref]
        if ok.empty:
            rows.append(f"| ≤ {frac:.0%} | — | — | — | — | — |")
            continue
        best = ok.sort_values(["reeval_iqm", "params_nonzero"], ascending=[False, True]).iloc[0]
        rows.append(
            f"| ≤ {frac:.0%} | {int(best['params_nonzero'])} "
            f"({best['params_nonzero'] / ref:.2%}) | {best['reeval_mean']:.1f} | "
            f"{best['reeval_iqm']:.1f} [{best['reeval_ci_lo']:.1f}, {best['reeval_ci_hi']:.1f}]"
            f" | {best['method']}, {best['schedule']}, {best['finetune_mode']}, "
            f"hidden {best['hidden']} → {best.get('hidden_pruned', '')} | "
            f"{int(best['number'])} |")
    return rows


def equal_budget_ratio(trials: pd.DataFrame, baseline: pd.DataFrame, info: dict,
                       dense_steps: int) -> str:
    """Hypervolume of the front of the sweep's first trials whose env steps (dense training
    counted once, in the trial that trained it) add up to the baseline's total, counted the
    same way: its fine-tuning plus one dense training of the reference architecture."""
    budget = float(baseline["finetune_env_steps"].sum()) + dense_steps
    done = complete(trials).sort_values("number")
    prefix = done[done["env_steps"].cumsum() <= budget]
    hv = hypervolumes(front_of(prefix), front_of(baseline), info, "return_mean")
    return (f"{hv['ratio']:.3f} ({len(prefix)} trials, {prefix['env_steps'].sum():,.0f} env "
            f"steps vs the baseline's {budget:,.0f}; raw trial returns on both sides)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sweep", type=Path)
    args = ap.parse_args()
    sw = load_sweep(args.sweep)
    s = summarize(sw.storage, sw.study)
    info = s.study.user_attrs["sweep"]
    ref = int(info["ref_params"])
    dense = s.data.dense
    print(f"### {sw.config.name}: {sw.config.agent.name} on {sw.config.env.id}\n")
    print("dense references (params, return over the trials' evaluation episodes):")
    for _, d in dense.iterrows():
        print(f"- hidden {d['hidden']} (seed {d['seed']}): {int(d['params_nonzero'])} params, "
              f"return {d['return_mean']:.1f}")
    print(f"\nreference parameters: {ref}\n")
    print("| budget | params (of ref) | re-eval mean | re-eval IQM [95% CI] | config | trial |")
    print("|---|---|---|---|---|---|")
    print("\n".join(budget_rows(s.data.front, ref)))
    hv = s.data.hypervolume
    print(f"\nhypervolume (re-evaluated fronts): searched {hv['searched']:.4f}, baseline "
          f"{hv.get('baseline', float('nan')):.4f}, ratio {hv.get('ratio', float('nan')):.3f}")
    if not s.data.baseline.empty:
        equal = equal_budget_ratio(s.data.trials, s.data.baseline, info,
                                   sw.config.agent.train_steps)
        print(f"hypervolume ratio at the baseline's env-step budget: {equal}")
    t = complete(s.data.trials)
    print(f"trials: {len(s.data.trials)}, total env steps {t['env_steps'].sum():,.0f}, "
          f"trial wall {t['wall_s'].sum() / 60:.1f} min (summed over workers)")


if __name__ == "__main__":
    main()
