"""int8 against fp32 on trained policies: returns through onnxruntime (static quantization
calibrated on visited states, as ``nas-prune export --int8``, and dynamic) and sizes.

    python -m tests.benchmarks.bench_int8 TRIAL_DIR [TRIAL_DIR ...]

Each trial folder is copied to a temporary folder first (export writes DIR/export/).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from nas_prune.deploy.export import export_trial, load_trial
from nas_prune.deploy.quantize import int8_onnx
from nas_prune.deploy.runtime import OnnxPolicy, onnx_act
from nas_prune.deploy.session import session
from nas_prune.rl.evaluation import evaluate_fn
from nas_prune.trial.dense_cache import env_spec


def _row(directory: Path) -> str:
    row = export_trial(directory, int8=True)
    q = row["int8"]
    trial = load_trial(directory)
    cfg = trial.config
    dynamic = int8_onnx(trial.net)
    policy = OnnxPolicy(session(dynamic), trial.head, cfg, trial.spec)
    seed = cfg.eval.seed if cfg.eval.seed is not None else cfg.seed
    dyn = evaluate_fn(onnx_act(policy), env_spec(cfg), episodes=cfg.eval.episodes,
                      seed=seed).mean
    return (f"{str(trial.net.hidden):>12s} {row['fp32_safetensors_bytes']:8d} {len(dynamic):7d} "
            f"{q['return_mean_fp32']:8.1f} {q['return_mean_int8']:12.1f} {dyn:13.1f} "
            f"{cfg.eval.episodes:4d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("trials", nargs="+", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'trial':44s} {'hidden':>12s} {'fp32 B':>8s} {'int8 B':>7s} {'fp32':>8s} "
          f"{'int8 static':>12s} {'int8 dynamic':>13s} {'eps':>4s}")
    with tempfile.TemporaryDirectory(prefix="bench_int8") as tmp:
        for i, src in enumerate(args.trials):
            dst = Path(tmp) / str(i)
            shutil.copytree(src, dst)
            print(f"{str(src)[-44:]:44s} {_row(dst)}", flush=True)


if __name__ == "__main__":
    main()
