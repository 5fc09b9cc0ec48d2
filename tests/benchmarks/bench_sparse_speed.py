"""Does a sparse network make training cheaper? FLOPs saved (counted) against wall time
(measured), for DQN on CartPole ([256, 256] Q-network), dense against sparse at the same
env steps, and the kernel that would have to deliver the saving.

    python -m tests.benchmarks.bench_sparse_speed [--steps 20000] [--repeats 3]

FLOPs of the Q-network per gradient step, 2 per multiply-accumulate: the forward of the
batch and of its next states (double DQN: 2 · batch rows), and the backward of the batch
(gradients of inputs and of weights: 2 forwards' worth), so 2 · MACs · (2 + 2) · batch;
the target network's forward is not counted. A sparse kernel would need MACs_nonzero
instead of MACs. Masked training here runs dense kernels (``torch.addmm``) on zero-filled
weights.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from nas_prune.config.base import parse
from nas_prune.config.trial import TrialConfig
from nas_prune.pruning import PruneContext, methods
from nas_prune.pruning.counting import count
from nas_prune.pruning.sparse_training import DynamicParams, DynamicSparsity
from nas_prune.rl.agents.dqn import DQNAgent
from nas_prune.rl.optim.flatnet import gradient_steps_taken
from nas_prune.trial.dense_cache import build_agent

VARIANTS = [("dense", None, 0.0), ("static 0.9", "random", 0.9), ("RigL 0.9", "rigl", 0.9),
            ("static 0.95", "random", 0.95), ("RigL 0.95", "rigl", 0.95)]


def time_training(name: str | None, sparsity: float, steps: int, seed: int) -> tuple[
        float, int, int, int]:
    cfg = parse(TrialConfig, {"agent": {"name": "dqn", "train_steps": steps}, "seed": seed})
    agent = build_agent(cfg, seed)
    net = agent.policy
    if name is not None:
        cls = methods.get(name)
        method = cls(DynamicParams() if name == "rigl" else None)
        ctx = PruneContext(torch.Generator().manual_seed(seed))
        method.prune(net, [sparsity] * 3, ctx)
        agent.trainer.hook = DynamicSparsity(net, method, lambda: agent.env_steps / steps, ctx)
    before = gradient_steps_taken()
    t0 = time.perf_counter()
    agent.train(steps)
    wall = time.perf_counter() - t0
    c = count(net)
    agent.close()
    return wall, gradient_steps_taken() - before, c.macs, c.macs_nonzero


def training_table(steps: int, repeats: int) -> None:
    hp = DQNAgent.Hyper()
    # forward-equivalent rows per gradient step: [s; s'] forward (2 B), backward of s (2 B)
    rows = 4 * hp.batch_size
    print(f"DQN CartPole-v1, [256, 256], {steps:,} env steps, {repeats} repeats")
    print("variant        wall_s mean±std   grad steps   MACs/fwd  nonzero   "
          "GFLOPs dense-kernel  GFLOPs sparse-kernel")
    for label, name, s in VARIANTS:
        walls = []
        for r in range(repeats):
            wall, grads, macs, nonzero = time_training(name, s, steps, r)
            walls.append(wall)
        dense_flops = 2 * rows * macs * grads / 1e9
        sparse_flops = 2 * rows * nonzero * grads / 1e9
        print(f"{label:12s} {np.mean(walls):7.2f} ± {np.std(walls):4.2f}   {grads:9,d}  "
              f"{macs:9,d} {nonzero:8,d}   {dense_flops:10.2f}  {sparse_flops:10.2f}")


def kernel_table(repeats: int = 200) -> None:
    print("\nOne 256x256 layer, forward, µs per call (1 thread): dense addmm on masked "
          "weights vs torch.sparse CSR")
    print("batch  sparsity   dense   csr   csr/dense")
    gen = torch.Generator().manual_seed(0)
    for batch in (64, 128, 1024):
        x = torch.randn(batch, 256, generator=gen)
        for s in (0.9, 0.95, 0.99):
            w = torch.randn(256, 256, generator=gen)
            w[torch.rand(256, 256, generator=gen) < s] = 0
            b = torch.zeros(256)
            csr = w.to_sparse_csr()
            dense_us = _time(lambda b=b, x=x, w=w: torch.addmm(b, x, w.t()), repeats)
            csr_us = _time(lambda b=b, x=x, c=csr: torch.sparse.mm(c, x.t()).t() + b, repeats)
            print(f"{batch:5d}  {s:8.2f} {dense_us:7.1f} {csr_us:6.1f}   "
                  f"{csr_us / dense_us:6.2f}")


def _time(fn: object, repeats: int) -> float:
    for _ in range(10):
        fn()  # type: ignore[operator]
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - t0) / repeats * 1e6


def main() -> None:
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    training_table(args.steps, args.repeats)
    kernel_table()


if __name__ == "__main__":
    main()
