"""Multi-objective early stopping at fine-tuning rungs (neither Optuna's pruners nor Ray's
schedulers handle several objectives): at each rung a trial reports (params_nonzero,
return); a trial whose rung point is dominated by enough finished trials' points at the same
rung stops, and is recorded with its partial metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from nas_prune.agents.base import Agent, Progress
from nas_prune.finetune import selection_eval
from nas_prune.pareto import dominates
from nas_prune.pruning.counting import count

RungPoint = tuple[float, float]  # (params_nonzero, return)
Decide = Callable[[int, RungPoint], bool]  # True: stop the trial here


class EarlyStop(Exception):
    """Raised inside a trial that a rung decision stopped; carries the rung and point."""

    def __init__(self, rung: int, point: RungPoint) -> None:
        super().__init__(f"stopped at rung {rung}: params {point[0]:.0f}, return {point[1]:.1f}")
        self.rung, self.point = rung, point


def dominated_count(point: RungPoint, others: Sequence[RungPoint]) -> int:
    """How many of ``others`` dominate ``point`` (fewer params and higher return)."""
    return sum(dominates(o, point) for o in others)


@dataclass
class RungMonitor:
    """A progress callback: at each fraction of the fine-tuning budget, evaluate the policy on
    selection episodes and ask ``decide`` whether to stop (raising EarlyStop)."""

    agent: Agent
    total_steps: int
    fractions: Sequence[float]
    decide: Decide
    episodes: int = 10
    seed: int = 0
    then: Progress | None = None
    points: list[RungPoint] = field(default_factory=list)
    eval_steps: int = 0  # env steps spent on rung evaluations

    def __post_init__(self) -> None:
        self.start = self.agent.env_steps

    def __call__(self, env_steps: int) -> None:
        if self.then is not None:
            self.then(env_steps)
        i = len(self.points)
        if i >= len(self.fractions) or self.total_steps <= 0:
            return
        if env_steps - self.start < self.fractions[i] * self.total_steps:
            return
        net = self.agent.policy
        res = selection_eval(net, self.agent, self.episodes, self.seed)
        self.eval_steps += res.env_steps
        point = (float(count(net).params_nonzero), res.mean)
        self.points.append(point)
        if self.decide(i, point):
            raise EarlyStop(i, point)
