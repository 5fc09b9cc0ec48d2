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


@dataclass(frozen=True)
class Latency:
    """One latency measurement.

    us: median microseconds per forward; iqr_us: interquartile range of the timed forwards;
    method: ``"onnxruntime"`` or ``"torch"``; batch: rows per forward.
    """

    us: float
    iqr_us: float
    method: str
    batch: int


def measure_latency(net: PrunableNet, *, batch: int = 1, repeats: int = 200, warmup: int = 50,
                    engine: str = "auto") -> Latency:
    """Time ``repeats`` forwards of a random batch after ``warmup`` untimed ones, one thread.

    Args:
        net: the policy network, as deployed (shrink a structured-pruned net first).
        batch: rows per forward (>= 1).
        repeats: timed forwards (>= 1); the median and IQR are over these.
        warmup: untimed forwards first (caches, allocator, onnxruntime's first-run setup).
        engine: ``"onnxruntime"`` (the exported ONNX graph, one intra-op thread),
            ``"torch"`` (the module under ``inference_mode`` with 1 torch thread, restored
            after), or ``"auto"``: onnxruntime when importable, else torch.

    Returns:
        The median and IQR in microseconds, the engine used and the batch.

    Raises:
        ValueError: an unknown engine, or batch / repeats below 1.
        DeployError: ``engine="onnxruntime"`` without the ``[deploy]`` extra.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    _check_counts(batch, repeats, warmup)
    if engine == "auto":
        engine = "onnxruntime" if _has_onnxruntime() else "torch"
    from nas_prune.deploy.onnx import obs_size

    x = _random_obs(batch, obs_size(net))
    if engine == "onnxruntime":
        from nas_prune.deploy.onnx import to_onnx

        return _measure(_ort_forward(to_onnx(net), x), batch, repeats=repeats, warmup=warmup,
                        method=engine)
    return _measure(_torch_forward(net, x), batch, repeats=repeats, warmup=warmup, method=engine)


def measure_onnx_latency(model: bytes, *, batch: int = 1, repeats: int = 200,
                         warmup: int = 50) -> Latency:
    """``measure_latency`` for a serialized ONNX model (an int8 one, say), via onnxruntime.

    Raises:
        ValueError: batch / repeats below 1.
        DeployError: the ``[deploy]`` extra is not installed.
    """
    _check_counts(batch, repeats, warmup)
    run = _ort_forward(model, None, batch=batch)
    return _measure(run, batch, repeats=repeats, warmup=warmup, method="onnxruntime")


def policy_bytes(net: PrunableNet) -> int:
    """Size in bytes of the fp32 ``policy.safetensors`` a trial saves for ``net``.

    Serialized in memory with the same tensors ``save_policy`` writes, so it is exact and
    leaves no file behind.
    """
    from safetensors.torch import save

    return len(save({k: v.detach().contiguous() for k, v in net.state_dict().items()}))


def _check_counts(batch: int, repeats: int, warmup: int) -> None:
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"latency: need batch >= 1, repeats >= 1, warmup >= 0; got "
                         f"{batch}, {repeats}, {warmup}")


def _random_obs(batch: int, dim: int) -> np.ndarray:
    # the values do not change a dense forward's cost; fixed so two runs time the same input
    return np.random.default_rng(0).standard_normal((batch, dim)).astype(np.float32)


def _measure(run: Callable[[], object], batch: int, *, repeats: int, warmup: int,
             method: str) -> Latency:
    with _one_torch_thread():
        times = _time_calls(run, repeats=repeats, warmup=warmup)
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return Latency(us=float(med), iqr_us=float(q3 - q1), method=method, batch=batch)


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _time_calls(run: Callable[[], object], *, repeats: int, warmup: int,
                clock: Callable[[], int] = time.perf_counter_ns) -> np.ndarray:
    for _ in range(warmup):
        run()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = clock()
        run()
        times[i] = clock() - t0
    return times / 1e3


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
