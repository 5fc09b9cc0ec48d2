"""nas_prune.deploy.latency: latency is measured (timed forwards), repeatable, and the
deployed file's size is exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas_prune.deploy import latency as latency_mod
from nas_prune.deploy.latency import Latency, measure_latency, policy_bytes
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP
from nas_prune.trial.artifacts import POLICY_WEIGHTS, save_policy

ENGINES = ["torch", pytest.param("onnxruntime", marks=pytest.mark.skipif(
    not latency_mod._has_onnxruntime(), reason="needs the [deploy] extra"))]


@pytest.fixture(scope="module")
def nets() -> dict[str, MLP]:
    torch.manual_seed(0)
    return {"small": MLP([4, 8, 2]), "large": MLP([4, 1024, 1024, 2])}


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_net_and_batch_measure_slower(engine: str, nets: dict[str, MLP]) -> None:
    small = measure_latency(nets["small"], batch=256, repeats=30, warmup=5, engine=engine)
    large = measure_latency(nets["large"], batch=256, repeats=30, warmup=5, engine=engine)
    # ~1M MACs per row against ~50: a timing, not an estimate, still orders them
    assert large.us > 10 * small.us
    one = measure_latency(nets["large"], batch=1, repeats=30, warmup=5, engine=engine)
    assert large.us > 10 * one.us
    assert (small.method, small.batch, one.batch) == (engine, 256, 1)
    assert small.us > 0 and small.iqr_us >= 0


def test_median_and_iqr_of_timed_calls_only() -> None:
    # a scripted clock: warm-up calls are not timed; each timed call lasts its scripted ns.
    # (Whether two real measurements agree is machine noise: bench_latency prints it.)
    durations_ns = [9_000, 1_000, 3_000, 2_000, 5_000]
    ticks = iter(np.cumsum([0] + [d for d in durations_ns for d in (d, 0)])[:-1].tolist())
    calls: list[int] = []
    times = latency_mod._time_calls(lambda: calls.append(1), repeats=5, warmup=4,
                                    clock=lambda: next(ticks))
    assert len(calls) == 9
    assert times.tolist() == [9.0, 1.0, 3.0, 2.0, 5.0]


def test_latency_is_the_median_and_iqr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency_mod, "_time_calls",
                        lambda run, repeats, warmup: np.array([9.0, 1.0, 3.0, 2.0, 5.0]))
    lat = latency_mod._measure(lambda: None, 7, repeats=5, warmup=0, method="torch")
    assert lat == Latency(us=3.0, iqr_us=3.0, method="torch", batch=7)


def test_auto_uses_onnxruntime_when_installed_else_torch(
        monkeypatch: pytest.MonkeyPatch, nets: dict[str, MLP]) -> None:
    auto = measure_latency(nets["small"], repeats=5, warmup=0)
    assert auto.method == ("onnxruntime" if latency_mod._has_onnxruntime() else "torch")
    monkeypatch.setattr(latency_mod, "_has_onnxruntime", lambda: False)
    assert measure_latency(nets["small"], repeats=5, warmup=0).method == "torch"


def test_timed_forwards_are_counted(monkeypatch: pytest.MonkeyPatch, nets: dict[str, MLP]) -> None:
    calls: list[int] = []
    real = latency_mod._torch_forward

    def counting(net: MLP, x):  # type: ignore[no-untyped-def]
        run = real(net, x)

        def counted() -> object:
            calls.append(1)
            return run()

        return counted

    monkeypatch.setattr(latency_mod, "_torch_forward", counting)
    measure_latency(nets["small"], repeats=17, warmup=3, engine="torch")
    assert len(calls) == 20


def test_torch_threads_restored(nets: dict[str, MLP]) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        measure_latency(nets["small"], repeats=3, warmup=0, engine="torch")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kwargs,needle", [
    ({"engine": "tvm"}, "allowed: auto, onnxruntime, torch"),
    ({"batch": 0}, "batch >= 1"), ({"repeats": 0}, "repeats >= 1")])
def test_bad_arguments(kwargs: dict[str, object], needle: str, nets: dict[str, MLP]) -> None:
    with pytest.raises(ValueError, match=needle):
        measure_latency(nets["small"], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("sizes", [[4, 8, 2], [3, 5, 7, 1], [8, 64, 64, 4]])
def test_policy_bytes_is_the_saved_file_size(sizes: list[int], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    net = MLP(sizes)
    monkeypatch.chdir(tmp_path)
    size = policy_bytes(net)
    assert not any(tmp_path.iterdir())  # computed in memory: no file left behind
    save_policy(tmp_path, net, Head("q"))
    assert size == (tmp_path / POLICY_WEIGHTS).stat().st_size


def test_latency_is_a_frozen_record() -> None:
    lat = Latency(us=1.0, iqr_us=0.1, method="torch", batch=1)
    with pytest.raises(AttributeError):
        lat.us = 2.0  # type: ignore[misc]
