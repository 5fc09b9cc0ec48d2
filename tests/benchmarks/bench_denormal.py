"""Denormal floats and torch.set_flush_denormal: an elementwise multiply over 4M floats,
normal against denormal, with the flag off and on, on 1 and on 2 torch threads. Each
configuration runs in a fresh process (the flag is per CPU thread; worker pools persist).

    python -m tests.benchmarks.bench_denormal
"""
from __future__ import annotations

import subprocess
import sys

CHILD = """
import sys, time, torch
threads, ftz = int(sys.argv[1]), sys.argv[2] == "1"
torch.set_num_threads(threads)
normal, denormal = torch.full((4_000_000,), 1e-3), torch.full((4_000_000,), 1e-39)
normal * 0.9  # starts the intra-op pool before the flag is set, as in a trial
torch.set_flush_denormal(ftz)
def ms(x, n=50):
    start = time.perf_counter()
    for _ in range(n):
        x * 0.9
    return (time.perf_counter() - start) / n * 1e3
print(f"{ms(normal):.2f} {ms(denormal):.2f}")
"""


def main() -> None:
    print("elementwise x * 0.9 over 4M float32, ms per op (fresh process per row)")
    print(f"{'threads':>7s} {'flush':>6s} {'normal':>8s} {'denormal':>9s} {'ratio':>6s}")
    for threads in (1, 2):
        for ftz in (0, 1):
            out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(ftz)],
                                 capture_output=True, text=True, check=True).stdout.split()
            normal, denormal = float(out[0]), float(out[1])
            print(f"{threads:7d} {'on' if ftz else 'off':>6s} {normal:8.2f} {denormal:9.2f} "
                  f"{denormal / normal:5.1f}x")


if __name__ == "__main__":
    main()
