"""Measured (never estimated) forward latency and the deployed file's size."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from nas_prune.rl.networks import PrunableNet

__all__ = ["ENGINES", "Latency", "measure_latency", "measure_onnx_latency", "policy_bytes"]

ENGINES = ("auto", "onnxruntime", "torch")
ROUNDS, ROUND_S, WARMUP = 7, 0.005, 50
MAX_CALLS = 1 << 20  # per round: the calibration stops doubling here whatever the clock says


@dataclass(frozen=True)
class Latency:
    """One latency measurement.

    us: microseconds per forward, the median over timed rounds of each round's mean;
    iqr_us: the interquartile range of those round means; method: ``"onnxruntime"`` or
    ``"torch"``; batch: rows per forward.

    Rounds, not single calls: a median of 200 single calls (1.6 ms in all for a small
    policy) read 9.1 then 5.9 µs back to back on a shared 2-core VM, and in 15 such pairs
    differed by up to 64-106%; the median of 7 rounds of >= 5 ms differed by at most 13-26%
    in the same runs (``bench_latency`` prints this repeatability).
    """

    us: float
    iqr_us: float
    method: str
    batch: int


def measure_latency(net: PrunableNet, *, batch: int = 1, rounds: int = ROUNDS,
                    round_s: float = ROUND_S, warmup: int = WARMUP,
                    engine: str = "auto") -> Latency:
    """Time ``rounds`` rounds of forwards of a random batch after ``warmup`` untimed ones,
    one thread. A round is n forwards back to back, n doubled from 1 until one round lasts
    ``round_s`` seconds (those calibration rounds are not kept).

    Args:
        net: the policy network, as deployed (shrink a structured-pruned net first).
        batch: rows per forward (>= 1).
        rounds: timed rounds (>= 1); the median and IQR are over their per-forward means.
        round_s: the least duration of a round, seconds (> 0).
        warmup: untimed forwards first (caches, allocator, onnxruntime's first-run setup).
        engine: ``"onnxruntime"`` (the exported ONNX graph, one intra-op thread),
            ``"torch"`` (the module under ``inference_mode`` with 1 torch thread, restored
            after), or ``"auto"``: onnxruntime when importable, else torch.

    Returns:
        The median and IQR in microseconds, the engine used and the batch.

    Raises:
        ValueError: an unknown engine, batch or rounds below 1, round_s not above 0.
        DeployError: ``engine="onnxruntime"`` without the ``[deploy]`` extra.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    _check_counts(batch, rounds, round_s, warmup)
    if engine == "auto":
        engine = "onnxruntime" if _has_onnxruntime() else "torch"
    from nas_prune.deploy.onnx import obs_size

    x = _random_obs(batch, obs_size(net))
    if engine == "onnxruntime":
        from nas_prune.deploy.onnx import to_onnx

        run = _ort_forward(to_onnx(net), x)
    else:
        run = _torch_forward(net, x)
    return _measure(run, batch, rounds=rounds, round_s=round_s, warmup=warmup, method=engine)


def measure_onnx_latency(model: bytes, *, batch: int = 1, rounds: int = ROUNDS,
                         round_s: float = ROUND_S, warmup: int = WARMUP) -> Latency:
    """``measure_latency`` for a serialized ONNX model (an int8 one, say), via onnxruntime.

    Raises:
        ValueError: batch or rounds below 1, round_s not above 0.
        DeployError: the ``[deploy]`` extra is not installed.
    """
    _check_counts(batch, rounds, round_s, warmup)
    run = _ort_forward(model, None, batch=batch)
    return _measure(run, batch, rounds=rounds, round_s=round_s, warmup=warmup,
                    method="onnxruntime")


def policy_bytes(net: PrunableNet) -> int:
    """Size in bytes of the fp32 ``policy.safetensors`` a trial saves for ``net``.

    Serialized in memory with the same tensors ``save_policy`` writes, so it is exact and
    leaves no file behind.
    """
    from safetensors.torch import save

    return len(save({k: v.detach().contiguous() for k, v in net.state_dict().items()}))


def _check_counts(batch: int, rounds: int, round_s: float, warmup: int) -> None:
    if batch < 1 or rounds < 1 or not round_s > 0 or warmup < 0:
        raise ValueError(f"latency: need batch >= 1, rounds >= 1, round_s > 0, warmup >= 0; "
                         f"got {batch}, {rounds}, {round_s}, {warmup}")


def _random_obs(batch: int, dim: int) -> np.ndarray:
    # the values do not change a dense forward's cost; fixed so two runs time the same input
    return np.random.default_rng(0).standard_normal((batch, dim)).astype(np.float32)


def _measure(run: Callable[[], object], batch: int, *, rounds: int, round_s: float,
             warmup: int, method: str) -> Latency:
    with _one_torch_thread():
        means = _time_rounds(run, rounds=rounds, round_s=round_s, warmup=warmup)
    q1, med, q3 = np.percentile(means, [25, 50, 75])
    return Latency(us=float(med), iqr_us=float(q3 - q1), method=method, batch=batch)


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _time_rounds(run: Callable[[], object], *, rounds: int, round_s: float, warmup: int,
                 clock: Callable[[], int] = time.perf_counter_ns) -> np.ndarray:
    """Each timed round's mean microseconds per call (see ``measure_latency``)."""
    for _ in range(warmup):
        run()
    n = 1
    while _round_ns(run, n, clock) < round_s * 1e9 and n < MAX_CALLS:
        n *= 2
    return np.array([_round_ns(run, n, clock) / n for _ in range(rounds)]) / 1e3


def _round_ns(run: Callable[[], object], n: int, clock: Callable[[], int]) -> int:
    t0 = clock()
    for _ in range(n):
        run()
    return clock() - t0


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _torch_forward(net: PrunableNet, x: np.ndarray) -> Callable[[], object]:
    import torch

    obs = torch.from_numpy(x)

    def run() -> object:
        with torch.inference_mode():
            return net(obs)

    return run


def _ort_forward(model: bytes, x: np.ndarray | None, *, batch: int = 1
                 ) -> Callable[[], object]:
    from nas_prune.deploy.onnx import INPUT
    from nas_prune.deploy.session import session

    sess = session(model)
    if x is None:
        x = _random_obs(batch, int(sess.get_inputs()[0].shape[1]))
    feed = {INPUT: x}
    return lambda: sess.run(None, feed)
