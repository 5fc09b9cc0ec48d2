"""Cost growth: one trial's wall time and peak RSS against the dense width (64 ... 1024)
and against the env-step budget. Each configuration runs in a fresh process, so the peak
RSS is that trial's alone.

    python -m tests.benchmarks.bench_cost [--agent ppo] [--widths 64,128,256,512,1024]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from nas_prune import TrialConfig, run_trial
cfg = TrialConfig.model_validate(json.loads(sys.argv[1]))
start = time.perf_counter()
m = run_trial(cfg).metrics.as_dict()
print(json.dumps({"wall_s": time.perf_counter() - start, "dense_wall_s": m["dense_wall_s"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "return": m["return_mean"], "params_dense": m["params_dense"]}))
"""


def run(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def config(agent: str, width: int, train: int, finetune: int) -> dict:
    return {"agent": {"name": agent, "hidden": [width, width], "train_steps": train},
            "pruning": {"method": "importance", "sparsity": 0.9, "schedule": "gradual",
                        "finetune": {"steps": finetune, "mode": "distill"}},
            "eval": {"episodes": 20}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--agent", default="ppo")
    ap.add_argument("--widths", default="64,128,256,512,1024")
    ap.add_argument("--steps", default="10000,20000,40000,80000")
    ap.add_argument("--width-steps", type=int, default=10_000, help="dense steps per width")
    args = ap.parse_args()
    print(f"{args.agent} on CartPole-v1, importance 90% gradual + distill; 1 torch thread")
    print(f"{'width':>6s} {'train':>7s} {'finetune':>8s} {'params':>8s} {'dense_s':>8s} "
          f"{'trial_s':>8s} {'rss_MiB':>8s}")
    for w in [int(x) for x in args.widths.split(",")]:
        r = run(config(args.agent, w, args.width_steps, 8_192))
        print(f"{w:6d} {args.width_steps:7d} {8_192:8d} {r['params_dense']:8d} "
              f"{r['dense_wall_s']:8.1f} "
              f"{r['wall_s']:8.1f} {r['rss_mib']:8.0f}", flush=True)
    for steps in [int(x) for x in args.steps.split(",")]:
        r = run(config(args.agent, 64, steps, steps // 2))
        print(f"{64:6d} {steps:7d} {steps // 2:8d} {r['params_dense']:8d} "
              f"{r['dense_wall_s']:8.1f} {r['wall_s']:8.1f} {r['rss_mib']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
