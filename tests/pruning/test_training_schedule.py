"""nas_prune.pruning.training_schedule: ``during`` follows the cubic schedule between start
and end of training (checked at given env steps on a stand-in agent), ``sparse`` is at its
target from the first step, snapshots are taken only at the final topology."""
from __future__ import annotations

from typing import Any

import pytest
import torch

from nas_prune.config.trial import PruningConfig, SnapshotConfig
from nas_prune.pruning import PruneContext, methods
from nas_prune.pruning.base import n_to_prune
from nas_prune.pruning.schedule import cubic_progress
from nas_prune.pruning.training_schedule import TrainingRun, during_targets, train_pruned
from nas_prune.rl.networks import MLP
from nas_prune.rl.optim.flatnet import FlatTrainer

SIZES = [4, 32, 32, 2]
TRAIN = 1000


class StandIn:
    """The part of an Agent train_pruned uses; ``train`` reports every env step and records
    the policy's sparsity at each."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.policy = MLP(SIZES)
        self.trainer = FlatTrainer([self.policy], lr=1e-3)
        self.env_steps = 0
        self.seen: dict[int, list[int]] = {}
        self.finetuning = False

    def train(self, steps: int, *, penalty: Any = None, progress: Any = None) -> None:
        for _ in range(steps):
            self.env_steps += 1
            if progress is not None:
                progress(self.env_steps)
            self.seen[self.env_steps] = [int((layer.weight == 0).sum())
                                         for layer in self.policy.prunable_layers()]

    def begin_finetune(self) -> None:
        self.finetuning = True


def _run(agent: StandIn, **cfg: Any) -> TrainingRun:
    pruning = PruningConfig(**cfg)
    cls = methods.get(pruning.method)
    return TrainingRun(method=cls(), plan=[0.9, 0.9, 0.9], cfg=pruning,
                       ctx=PruneContext(torch.Generator().manual_seed(0)),
                       snapshot=SnapshotConfig(), seed=0, train_steps=TRAIN)


def test_during_targets_span_start_to_end() -> None:
    cfg = PruningConfig(schedule="during", steps=3, start=0.2, end=0.8)
    assert during_targets(cfg, TRAIN) == [400, 600, 800]


@pytest.mark.parametrize(("start", "end", "steps"), [(0.2, 0.8, 5), (0.0, 1.0, 4),
                                                     (0.5, 0.6, 1)])
def test_during_sparsity_follows_the_cubic_schedule(start: float, end: float,
                                                    steps: int) -> None:
    agent = StandIn()
    run = _run(agent, method="magnitude", schedule="during", sparsity=0.9, steps=steps,
               start=start, end=end, finetune={"steps": 0})
    trained = train_pruned(agent, run)  # type: ignore[arg-type]
    assert trained == TRAIN
    sizes = [layer.weight.numel() for layer in agent.policy.prunable_layers()]
    at = during_targets(run.cfg, TRAIN)
    assert agent.seen[at[0] - 1] == [0, 0, 0]  # dense before the first pruning step
    for k, step in enumerate(at, start=1):
        expected = [n_to_prune(0.9 * cubic_progress(k, steps), n) for n in sizes]
        assert agent.seen[step] == expected
        # the sparsity holds until the next pruning step
        assert agent.seen[(at[k] if k < len(at) else TRAIN + 1) - 1] == expected
    assert agent.seen[TRAIN] == [n_to_prune(0.9, n) for n in sizes]


def test_sparse_is_at_its_target_from_the_first_step_and_finetunes() -> None:
    agent = StandIn()
    run = _run(agent, method="random", schedule="sparse", sparsity=0.9,
               finetune={"steps": 50})
    assert train_pruned(agent, run) == TRAIN  # type: ignore[arg-type]
    sizes = [layer.weight.numel() for layer in agent.policy.prunable_layers()]
    target = [n_to_prune(0.9, n) for n in sizes]
    assert agent.seen[1] == target and agent.seen[TRAIN + 50] == target
    assert agent.env_steps == TRAIN + 50 and agent.finetuning


def test_snapshots_are_taken_only_at_the_final_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    import nas_prune.pruning.training_schedule as ts

    taken: list[int] = []

    class Keeper:
        def __init__(self, cfg: SnapshotConfig, agent: StandIn, seed: int, **_: Any) -> None:
            self.agent = agent
            self.best = (0.0, agent.policy.state_dict())

        def __call__(self, env_steps: int) -> None:
            taken.append(env_steps)

        def check(self) -> None:
            pass

    monkeypatch.setattr(ts, "SnapshotKeeper", Keeper)
    agent = StandIn()
    run = _run(agent, method="magnitude", schedule="during", sparsity=0.9, steps=2,
               finetune={"steps": 0})
    train_pruned(agent, run)  # type: ignore[arg-type]
    assert taken[0] == 800 and taken[-1] == TRAIN  # from the last pruning step (end 0.8)
