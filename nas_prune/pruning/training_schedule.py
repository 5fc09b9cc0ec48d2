"""Schedules that prune while the agent learns, from scratch (no dense agent is trained or
loaded): ``during`` (gradual magnitude pruning during training, Zhu & Gupta 2017's cubic
schedule as used by Obando-Ceron et al. 2024) and ``sparse`` (sparse from the first step:
static, SET or RigL, as compared by Graesser et al. 2022).

Only the deployed policy is pruned (PPO's critic stays dense: it is training-only, as the
target network of DQN). After training, ``pruning.finetune.steps`` more env steps of the
agent's own RL run with the masks held (0: none); distillation needs a dense teacher these
schedules do not have.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nas_prune.config.trial import TRAINING_SCHEDULES, PruningConfig, SnapshotConfig
from nas_prune.pruning.base import PruneContext, PruningMethod
from nas_prune.pruning.schedule import cubic_progress
from nas_prune.pruning.sparse_training import DynamicSparsePruning, DynamicSparsity
from nas_prune.rl.agents.base import Agent, Progress
from nas_prune.rl.networks import PrunableNet
from nas_prune.trial.finetune import SnapshotKeeper

__all__ = ["TRAINING_SCHEDULES", "TrainingRun", "during_targets", "train_pruned"]


@dataclass
class TrainingRun:
    """What a training schedule needs besides the agent."""

    method: PruningMethod
    plan: list[float]
    cfg: PruningConfig
    ctx: PruneContext
    snapshot: SnapshotConfig
    seed: int
    train_steps: int
    progress: Progress | None = None
    # called with the policy once its masks stop changing (early stopping's size check)
    at_final_size: Callable[[PrunableNet], None] | None = None


def during_targets(cfg: PruningConfig, train_steps: int) -> list[int]:
    """The env steps at which ``during`` prunes: ``cfg.steps`` equal intervals from
    ``start`` to ``end`` of training; the k-th reaches cubic_progress(k) of the plan."""
    first, last = cfg.start * train_steps, cfg.end * train_steps
    return [int(round(first + (last - first) * k / cfg.steps)) for k in range(1, cfg.steps + 1)]


class _Pruner:
    """The progress callback that prunes on schedule and keeps the best snapshot once the
    masks are final."""

    def __init__(self, agent: Agent, run: TrainingRun) -> None:
        self.agent, self.run = agent, run
        self.net = agent.policy
        self.at = during_targets(run.cfg, run.train_steps) if run.cfg.schedule == "during" else []
        self.done = 0
        method = run.method
        self.freeze_at = 0
        if isinstance(method, DynamicSparsePruning):
            self.freeze_at = int(method.dynamic.end * run.train_steps)
        self.keeper: SnapshotKeeper | None = None

    def __call__(self, env_steps: int) -> None:
        while self.done < len(self.at) and env_steps >= self.at[self.done]:
            self.prune_next()
        if self.keeper is None and self.done == len(self.at) and env_steps >= self.freeze_at:
            self.final_size()
        if self.keeper is not None:
            self.keeper(env_steps)
        if self.run.progress is not None:
            self.run.progress(env_steps)

    def prune_next(self) -> None:
        self.done += 1
        run = self.run
        targets = run.method.step_targets(run.plan, cubic_progress(self.done, len(self.at)))
        run.method.prune(self.net, targets, run.ctx)

    def final_size(self) -> None:
        if self.run.at_final_size is not None:
            self.run.at_final_size(self.net)
        self.keeper = SnapshotKeeper(self.run.snapshot, self.agent, self.run.seed,
                                     get_state=self.net.state_dict)


def train_pruned(agent: Agent, run: TrainingRun) -> int:
    """Train ``agent`` from scratch for ``run.train_steps`` env steps while its policy is
    pruned on ``run.cfg.schedule``, then fine-tune ``cfg.finetune.steps`` with the masks
    held; with snapshots on, restore the best snapshot taken at the final topology.

    Returns:
        The env steps of the training (before the fine-tuning).
    """
    net, cfg = agent.policy, run.cfg
    if cfg.schedule == "sparse":
        run.method.prune(net, run.plan, run.ctx)
        agent.trainer.hook = DynamicSparsity(
            net, run.method, lambda: agent.env_steps / run.train_steps, run.ctx)
    pruner = _Pruner(agent, run)
    # a penalised method (L1) trains with its penalty throughout; the others pay no call
    penalty = run.method.penalty if run.method.penalty(net) is not None else None
    agent.train(run.train_steps, penalty=penalty, progress=pruner)
    while pruner.done < len(pruner.at):  # PPO may stop a rollout short of the last target
        pruner.prune_next()
    if pruner.keeper is None:
        pruner.final_size()
    trained = agent.env_steps
    # fine-tuning: the sparse hook stays (past ``end``, it only masks the gradients)
    agent.begin_finetune()
    if cfg.finetune.steps:
        agent.train(cfg.finetune.steps, progress=pruner)
    keeper = pruner.keeper
    assert keeper is not None
    if run.snapshot.every_steps:
        keeper.check()
        assert keeper.best is not None
        net.load_state_dict(keeper.best[1])
    return trained
