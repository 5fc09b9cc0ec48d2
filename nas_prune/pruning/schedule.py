"""Pruning schedules: one-shot, gradual (cubic, Zhu & Gupta 2017) and iterative, with
fine-tuning between steps."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from nas_prune.config.trial import PruningConfig, SnapshotConfig
from nas_prune.pruning.base import PruneContext, PruningMethod
from nas_prune.rl.agents.base import Agent, Progress
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.finetune import SnapshotKeeper, finetune, selection_eval

__all__ = ["ScheduleRun", "cubic_progress", "run_schedule"]


def cubic_progress(step: int, steps: int) -> float:
    """Fraction of the final sparsity reached after ``step`` of ``steps`` pruning steps:
    s_t = s_f * (1 - (1 - t/n)^3) (Zhu & Gupta 2017, with initial sparsity 0)."""
    return 1.0 - (1.0 - step / steps) ** 3


@dataclass
class ScheduleRun:
    """What a schedule needs besides the agent: the plan, the teacher and the callbacks."""

    method: PruningMethod
    plan: list[float]
    cfg: PruningConfig
    teacher: PrunableNet
    ctx: PruneContext
    snapshot: SnapshotConfig
    seed: int
    dense_selection_return: float
    progress: Progress | None = None
    # called with the policy right after its last planned pruning step (final size);
    # early stopping may raise here, before the rest of the fine-tuning and evaluation
    at_final_size: Callable[[PrunableNet], None] | None = None
    log: list[dict[str, float]] = field(default_factory=list)


def run_schedule(agent: Agent, run: ScheduleRun) -> None:
    """Prune ``agent.policy`` to ``run.plan`` on ``run.cfg.schedule``, fine-tuning between."""
    cfg = run.cfg
    total = cfg.finetune.steps
    if cfg.schedule == "oneshot":
        _prune_and_tune(agent, run, run.plan, total, last=True, final_size=True)
        return
    per_step = total // cfg.steps
    for k in range(1, cfg.steps + 1):
        targets = run.method.step_targets(run.plan, cubic_progress(k, cfg.steps))
        if cfg.schedule == "iterative":
            if not _iterative_step(agent, run, targets, per_step, k):
                return
        else:
            _prune_and_tune(agent, run, targets, per_step, last=k == cfg.steps,
                            final_size=k == cfg.steps)


def _prune_and_tune(agent: Agent, run: ScheduleRun, targets: list[float], steps: int, *,
                    last: bool, final_size: bool) -> None:
    net = agent.policy
    tune: Callable[..., None] = lambda n, **kw: finetune(  # noqa: E731
        agent, run.teacher, run.cfg.finetune, n, seed=run.seed + agent.env_steps, **kw)
    pre = steps // 2 if run.method.penalty(net) is not None else 0
    # Penalised fine-tuning (L1) drives weights to zero before they are thresholded.
    tune(pre, penalty=run.method.penalty, progress=run.progress)
    run.method.prune(net, targets, run.ctx)
    if final_size and run.at_final_size is not None:
        run.at_final_size(net)
    if not last or not run.snapshot.every_steps:
        tune(steps - pre, progress=run.progress)
        return
    keeper = SnapshotKeeper(run.snapshot, agent, run.seed, get_state=net.state_dict)

    def both(env_steps: int) -> None:
        keeper(env_steps)
        if run.progress is not None:
            run.progress(env_steps)

    tune(steps - pre, progress=both)
    keeper.check()
    assert keeper.best is not None
    net.load_state_dict(keeper.best[1])


def _iterative_step(agent: Agent, run: ScheduleRun, targets: list[float], steps: int,
                    k: int) -> bool:
    # Keep the last model within tolerance of the dense return; stop below it.
    before = copy.deepcopy(agent.policy)
    # a later revert only makes the policy larger: a size check here stays valid
    _prune_and_tune(agent, run, targets, steps, last=False, final_size=k == run.cfg.steps)
    score = selection_eval(agent.policy, agent, run.snapshot.episodes, run.seed).mean
    run.log.append({"step": float(k), "return": score})
    dense = run.dense_selection_return
    if score >= dense - (1.0 - run.cfg.tolerance) * abs(dense):  # also right for returns < 0
        return True
    agent.set_policy(before)
    return False
