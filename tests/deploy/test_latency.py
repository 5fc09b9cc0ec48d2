"""nas_prune.deploy.latency: latency is measured (timed forwards), repeatable, and the
deployed file's size is exact."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

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
    small = measure_latency(nets["small"], batch=256, rounds=3, warmup=5, engine=engine)
    large = measure_latency(nets["large"], batch=256, rounds=3, warmup=5, engine=engine)
    # ~1M MACs per row against ~50: a timing, not an estimate, still orders them
    assert large.us > 10 * small.us
    one = measure_latency(nets["large"], batch=1, rounds=3, warmup=5, engine=engine)
    assert large.us > 10 * one.us
    assert (small.method, small.batch, one.batch) == (engine, 256, 1)
    assert small.us > 0 and small.iqr_us >= 0


class ScriptedClock:
    """A clock that only moves when the timed function runs: call k costs cost(k) ns."""

    def __init__(self, cost: Callable[[int], int]) -> None:
        self.cost, self.calls, self.now = cost, 0, 0

    def run(self) -> None:
        self.calls += 1
        self.now += self.cost(self.calls)

    def __call__(self) -> int:
        return self.now


def test_rounds_calibrate_then_time_their_mean_per_call() -> None:
    # 4 warm-up calls, then rounds of 1, 2, 4, 8, 16 calls of 1 µs until one lasts 10 µs
    # (31 calls); the 5 timed rounds of 16 calls cost 9, 1, 3, 2, 5 µs per call.
    untimed = 4 + 31
    per_round = [9_000, 1_000, 3_000, 2_000, 5_000]
    clock = ScriptedClock(lambda k: 1_000 if k <= untimed else per_round[(k - untimed - 1) // 16])
    means = latency_mod._time_rounds(clock.run, rounds=5, round_s=1e-5, warmup=4, clock=clock)
    assert means.tolist() == [9.0, 1.0, 3.0, 2.0, 5.0]
    assert clock.calls == untimed + 5 * 16
    # (whether two real measurements agree is machine noise: bench_latency prints it)


def test_a_clock_that_never_moves_stops_calibrating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency_mod, "MAX_CALLS", 8)
    clock = ScriptedClock(lambda k: 0)
    means = latency_mod._time_rounds(clock.run, rounds=7, round_s=1.0, warmup=0, clock=clock)
    assert means.tolist() == [0.0] * 7
    assert clock.calls == (1 + 2 + 4 + 8) + 7 * 8


def test_latency_is_the_median_and_iqr_of_the_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency_mod, "_time_rounds",
                        lambda run, rounds, round_s, warmup: np.array([9.0, 1.0, 3.0, 2.0, 5.0]))
    lat = latency_mod._measure(lambda: None, 7, rounds=5, round_s=1.0, warmup=0, method="torch")
    assert lat == Latency(us=3.0, iqr_us=3.0, method="torch", batch=7)


def test_auto_uses_onnxruntime_when_installed_else_torch(
        monkeypatch: pytest.MonkeyPatch, nets: dict[str, MLP]) -> None:
    auto = measure_latency(nets["small"], rounds=1, round_s=1e-4, warmup=0)
    assert auto.method == ("onnxruntime" if latency_mod._has_onnxruntime() else "torch")
    monkeypatch.setattr(latency_mod, "_has_onnxruntime", lambda: False)
    assert measure_latency(nets["small"], rounds=1, round_s=1e-4, warmup=0).method == "torch"


def test_the_torch_forward_is_what_runs(monkeypatch: pytest.MonkeyPatch,
                                        nets: dict[str, MLP]) -> None:
    calls: list[int] = []
    real = latency_mod._torch_forward

    def counting(net: MLP, x):  # type: ignore[no-untyped-def]
        run = real(net, x)

        def counted() -> object:
            calls.append(1)
            return run()

        return counted

    monkeypatch.setattr(latency_mod, "_torch_forward", counting)
    monkeypatch.setattr(latency_mod, "MAX_CALLS", 4)  # a round never exceeds 4 calls
    measure_latency(nets["small"], rounds=5, round_s=10.0, warmup=3, engine="torch")
    assert len(calls) == 3 + (1 + 2 + 4) + 5 * 4


def test_torch_threads_restored(nets: dict[str, MLP]) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        measure_latency(nets["small"], rounds=1, round_s=1e-4, warmup=0, engine="torch")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kwargs,needle", [
    ({"engine": "tvm"}, "allowed: auto, onnxruntime, torch"),
    ({"batch": 0}, "batch >= 1"), ({"rounds": 0}, "rounds >= 1"),
    ({"round_s": 0.0}, "round_s > 0"), ({"warmup": -1}, "warmup >= 0")])
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
