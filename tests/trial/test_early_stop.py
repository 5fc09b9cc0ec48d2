"""nas_prune.trial.early_stop: RungMonitor evaluates at each rung of the fine-tune budget
and stops through ``decide``; EarlyStop's message; dominance counts."""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from nas_prune.rl.evaluation import EnvSpec
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP
from nas_prune.trial.early_stop import SIZE_CHECK, EarlyStop, RungMonitor, dominated_count


def _always_1() -> MLP:
    """Always action 1 (return 4 per episode on FixedLengthEnv); one nonzero parameter."""
    net = MLP([2, 2])
    with torch.no_grad():
        net.layers[0].weight.zero_()
        net.layers[0].bias.copy_(torch.tensor([0.0, 1.0]))
    return net


def _agent(env_steps: int = 0) -> Any:
    env = EnvSpec("tests.rl.toy_envs:FixedLengthEnv", {"length": 4})
    return SimpleNamespace(policy=_always_1(), head=Head("q"), env_steps=env_steps,
                           spec=SimpleNamespace(env=env), deployed_outputs=lambda n: n)


class _Decide:
    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[int, tuple[float, float]]] = []
        self.stop_at = stop_at

    def __call__(self, rung: int, point: tuple[float, float]) -> bool:
        self.calls.append((rung, point))
        return rung == self.stop_at


def test_evaluates_once_at_each_rung() -> None:
    decide, seen = _Decide(), []
    mon = RungMonitor(_agent(env_steps=100), 1000, [0.25, 0.5], decide, episodes=3,
                      then=seen.append)
    for steps in (200, 349):  # < 25% of the budget since the monitor started at 100
        mon(steps)
    assert decide.calls == []
    mon(350)
    assert decide.calls == [(0, (1.0, 4.0))]  # (params_nonzero, selection return)
    mon(500)  # between rungs
    mon(600)
    mon(2000)  # every rung done: no more evaluations
    assert decide.calls == [(0, (1.0, 4.0)), (1, (1.0, 4.0))]
    assert mon.points == [(1.0, 4.0), (1.0, 4.0)]
    assert mon.eval_steps == 2 * 3 * 4  # two rungs x 3 episodes x 4 steps
    assert seen == [200, 349, 350, 500, 600, 2000]  # ``then`` sees every call


def test_one_rung_per_call_when_progress_jumps() -> None:
    decide = _Decide()
    mon = RungMonitor(_agent(), 100, [0.1, 0.2, 0.3], decide, episodes=1)
    mon(100)  # past all three fractions at once
    assert [r for r, _ in decide.calls] == [0]
    mon(100)
    mon(100)
    assert [r for r, _ in decide.calls] == [0, 1, 2]


def test_decide_true_stops_with_the_rung_and_point() -> None:
    decide = _Decide(stop_at=1)
    mon = RungMonitor(_agent(), 100, [0.5, 1.0 - 1e-9], decide, episodes=2)
    mon(50)
    with pytest.raises(EarlyStop) as info:
        mon(100)
    assert (info.value.rung, info.value.point) == (1, (1.0, 4.0))
    assert str(info.value) == "stopped at rung 1: params 1, return 4.0"
    assert mon.points == [(1.0, 4.0), (1.0, 4.0)]  # the stopping point is kept


def test_no_budget_means_no_rungs() -> None:
    decide = _Decide()
    mon = RungMonitor(_agent(), 0, [0.5], decide)
    mon(10**6)
    assert decide.calls == [] and mon.eval_steps == 0


def test_size_check_message() -> None:
    stop = EarlyStop(SIZE_CHECK, (1234.4, math.nan))
    assert str(stop) == "stopped at final size: params 1234 certainly dominated"
    assert stop.rung == SIZE_CHECK == -1


@pytest.mark.parametrize(("point", "others", "n"), [
    ((100.0, 50.0), [], 0),
    ((100.0, 50.0), [(90.0, 60.0), (100.0, 51.0), (90.0, 50.0)], 3),
    ((100.0, 50.0), [(100.0, 50.0)], 0),  # equal does not dominate
    ((100.0, 50.0), [(110.0, 90.0), (50.0, 10.0)], 0),  # trade-offs do not either
    ((100.0, math.nan), [(10.0, 500.0)], 0),  # a NaN return is never dominated
])
def test_dominated_count(point: tuple[float, float], others: list[tuple[float, float]],
                         n: int) -> None:
    assert dominated_count(point, others) == n


def test_rung_points_carry_the_sweeps_count_objectives() -> None:
    decide = _Decide()
    mon = RungMonitor(_agent(), 1000, [0.5], decide, episodes=2, extra=("macs_nonzero",))
    mon(500)
    # (params_nonzero, return, macs_nonzero): its one nonzero parameter is a bias, no MAC
    assert decide.calls == [(0, (1.0, 4.0, 0.0))]


@pytest.mark.parametrize(("point", "others", "expected"), [
    ((10.0, 5.0, 100.0), [(9.0, 6.0, 90.0)], 1),  # better in all three
    ((10.0, 5.0, 100.0), [(9.0, 6.0, 110.0)], 0),  # more MACs: not dominated
    ((10.0, 5.0, 100.0), [(10.0, 5.0, 100.0)], 0),  # equal
    ((10.0, 5.0, 100.0), [(10.0, 5.0, 99.0), (8.0, 5.0, 100.0), (11.0, 9.0, 1.0)], 2),
    ((10.0, 5.0, 100.0), [(1.0, 9.0)], 0),  # a point of another length is not compared
])
def test_dominated_count_in_three_objectives(point: tuple[float, ...],
                                             others: list[tuple[float, ...]],
                                             expected: int) -> None:
    assert dominated_count(point, others) == expected


def test_rung_points_count_only_the_deployed_outputs() -> None:
    """A rung point's size is the trial's reported one: outputs an agent does not deploy
    (SAC's log-stds) are not counted. Here the one nonzero parameter is the bias of the
    second output, which this agent does not deploy."""
    agent = _agent()
    agent.deployed_outputs = lambda n: 1
    decide = _Decide()
    RungMonitor(agent, 1000, [0.5], decide, episodes=2, extra=("macs_nonzero",))(500)
    assert decide.calls == [(0, (0.0, 4.0, 0.0))]  # acting still uses both outputs
