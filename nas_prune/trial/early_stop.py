"""Multi-objective early stopping (neither Optuna's pruners nor Ray's schedulers handle
several objectives). Two checks, each recorded with the trial's partial metrics:

- size check: right after its last pruning step a trial's nonzero parameter count is final;
  if a finished trial with fewer parameters already scored the return's upper bound
  (``early_stop.return_upper_bound``; not ``max_return``, which is only the top of the
  hypervolume box), this trial is dominated whatever it scores, and stops before the rest
  of its fine-tuning and evaluation. Free and certain.
- rungs: at fractions of the fine-tuning budget a trial reports (params_nonzero, return on
  a few selection episodes, then any other count objective of the sweep: macs_nonzero); a
  point dominated by enough finished trials' points at the same rung stops. Objectives a
  rung cannot measure cheaply (bytes, latency_us, return_noise) are left out of the
  comparison: rungs are a heuristic either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from nas_prune.pruning.counting import count
from nas_prune.results.pareto import dominates_nd
from nas_prune.rl.agents.base import Agent, Progress
from nas_prune.trial.deployed import deployed_policy
from nas_prune.trial.finetune import selection_eval

__all__ = ["Decide", "EarlyStop", "RUNG_COUNTS", "RungMonitor", "RungPoint", "SIZE_CHECK",
           "SizeDecide", "dominated_count"]

RungPoint = tuple[float, ...]  # (params_nonzero, return, *counts named by RungMonitor.extra)
RUNG_COUNTS = ("macs_nonzero",)  # objectives besides params a rung measures (minimised)
Decide = Callable[[int, RungPoint], bool]  # True: stop the trial here
SizeDecide = Callable[[float], bool]  # params_nonzero at final size -> True: stop
SIZE_CHECK = -1  # EarlyStop.rung of the size check


class EarlyStop(Exception):
    """Raised inside a trial that a rung decision stopped; carries the rung and point
    (the size check's point has no return: NaN)."""

    def __init__(self, rung: int, point: RungPoint) -> None:
        what = (f"stopped at final size: params {point[0]:.0f} certainly dominated"
                if rung == SIZE_CHECK else
                f"stopped at rung {rung}: params {point[0]:.0f}, return {point[1]:.1f}")
        super().__init__(what)
        self.rung, self.point = rung, point


def dominated_count(point: RungPoint, others: Sequence[RungPoint]) -> int:
    """How many of ``others`` dominate ``point``: params and further counts minimised, the
    return (position 1) maximised."""
    def cost(p: RungPoint) -> list[float]:
        return [p[0], -p[1], *p[2:]]

    mine = cost(point)
    return sum(dominates_nd(cost(o), mine) for o in others if len(o) == len(point))


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
    extra: Sequence[str] = ()  # RUNG_COUNTS objectives appended to each point
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
        counts = count(deployed_policy(self.agent, net, remove_units=False))  # as reported
        point = (float(counts.params_nonzero), res.mean,
                 *(float(getattr(counts, name)) for name in self.extra))
        self.points.append(point)
        if self.decide(i, point):
            raise EarlyStop(i, point)
