"""Policy latency: dense MLP vs the same net with 90% of its neurons masked (structured
masks, zeros in place) vs the physically shrunk export, at batch 1 and batch 1024.

    python -m tests.benchmarks.bench_latency [--hidden 256,256] [--sparsity 0.9]
"""
from __future__ import annotations

import argparse
import time

import torch

from nas_prune.pruning import PruneContext, methods
from nas_prune.pruning.surgery import shrink
from nas_prune.rl.networks import MLP


def _time(net: torch.nn.Module, batch: int, *, seconds: float = 1.0) -> float:
    x = torch.randn(batch, net.sizes[0])  # type: ignore[index]
    with torch.inference_mode():
        for _ in range(20):
            net(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            net(x)
            n += 1
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hidden", default="256,256")
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hidden = [int(x) for x in args.hidden.split(",")]
    dense = MLP([4, *hidden, 2])
    masked = MLP([4, *hidden, 2])
    masked.load_state_dict(dense.state_dict())
    method = methods.get("importance")()
    method.prune(masked, [args.sparsity] * len(hidden), PruneContext(torch.Generator()))
    small = shrink(masked)
    x = torch.randn(64, 4)
    with torch.inference_mode():
        assert torch.allclose(masked(x), small(x), atol=1e-5)
    print(f"MLP 4 -> {hidden} -> 2, importance pruning at {args.sparsity:.0%} of neurons; "
          f"exported hidden {small.hidden}; 1 torch thread; µs per forward")
    print(f"{'batch':>6s} {'dense':>10s} {'masked':>10s} {'exported':>10s} "
          f"{'exported/dense':>15s} {'masked/dense':>13s}")
    for batch in (1, 1024):
        d, m, s = (_time(n, batch) for n in (dense, masked, small))
        print(f"{batch:6d} {d:10.1f} {m:10.1f} {s:10.1f} {s / d:15.3f} {m / d:13.3f}")


if __name__ == "__main__":
    main()
