"""Fine-tuning a pruned policy: the agent's own RL, or distillation from the dense teacher,
and best-snapshot keeping on selection episodes."""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from nas_prune.config.trial import FinetuneConfig, SnapshotConfig
from nas_prune.rl.agents.base import Agent, Penalty, Progress
from nas_prune.rl.envs import make_vec_env
from nas_prune.rl.evaluation import EvalResult, evaluate
from nas_prune.rl.heads import act
from nas_prune.rl.networks import PrunableNet
from nas_prune.rl.optim.flatnet import FastNet, FlatTrainer, fast_net

__all__ = ["DISTILL_BUFFER", "DISTILL_ENVS", "DISTILL_EPS", "DISTILL_ROLLOUT", "SnapshotKeeper",
           "distill", "finetune", "selection_eval"]

DISTILL_ENVS = 8
DISTILL_ROLLOUT = 32  # env steps per env between gradient rounds
DISTILL_EPS = 0.1  # random actions while collecting (discrete), for state coverage
DISTILL_BUFFER = 50_000


class SnapshotKeeper:
    """Calls back every ``every_steps`` env steps, evaluates ``get_net()`` on selection
    episodes (stream 1), and keeps a copy of the best ``get_state()``."""

    def __init__(self, cfg: SnapshotConfig, agent: Agent, seed: int, *,
                 get_state: Callable[[], dict[str, torch.Tensor]]) -> None:
        self.cfg, self.agent, self.seed, self.get_state = cfg, agent, seed, get_state
        self.next_at = agent.env_steps + cfg.every_steps
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None

    def __call__(self, env_steps: int) -> None:
        if self.cfg.every_steps and env_steps >= self.next_at:
            self.next_at = env_steps + self.cfg.every_steps
            self.check()

    def check(self) -> None:
        """Evaluate now and keep the state if it is the best so far (ties: the later)."""
        res = selection_eval(self.agent.policy, self.agent, self.cfg.episodes, self.seed)
        if self.best is None or res.mean >= self.best[0]:
            self.best = (res.mean, copy.deepcopy(self.get_state()))


def selection_eval(net: PrunableNet, agent: Agent, episodes: int, seed: int) -> EvalResult:
    """Evaluate on the selection stream, disjoint from the final evaluation's seeds."""
    return evaluate(net, agent.head, agent.spec.env, episodes=episodes, seed=seed, stream=1)


def finetune(agent: Agent, teacher: PrunableNet, cfg: FinetuneConfig, steps: int, *,
             penalty: Penalty | None = None, progress: Progress | None = None,
             seed: int = 0) -> None:
    """Fine-tune ``agent.policy`` for ``steps`` env steps, masks held."""
    if steps <= 0:
        return
    if cfg.mode == "rl":
        agent.train(steps, penalty=penalty, progress=progress)
    else:
        distill(agent, teacher, cfg, steps, penalty=penalty, progress=progress, seed=seed)


def distill(agent: Agent, teacher: PrunableNet, cfg: FinetuneConfig, steps: int, *,
            penalty: Penalty | None, progress: Progress | None, seed: int) -> None:
    """Policy distillation (PoPS, Livne & Cohen 2020): the student collects states with its
    own policy, the teacher labels them, the student minimises the agent's distillation
    loss (``agent.distill_grad``)."""
    student, env = agent.policy, agent.spec.env
    vec = make_vec_env(env.id, DISTILL_ENVS, env.kwargs, max_episode_steps=env.max_episode_steps)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    vec.action_space.seed(seed)
    trainer = FlatTrainer([student], lr=cfg.lr)
    states: list[np.ndarray] = []
    obs, _ = vec.reset(seed=seed)
    done_steps = 0
    try:
        while done_steps < steps:
            for _ in range(DISTILL_ROLLOUT):
                states.append(obs)
                obs = _student_step(vec, student, agent, obs, rng)
            done_steps += DISTILL_ROLLOUT * DISTILL_ENVS
            agent.env_steps += DISTILL_ROLLOUT * DISTILL_ENVS
            states = states[-(DISTILL_BUFFER // DISTILL_ENVS):]
            data = torch.as_tensor(np.concatenate(states), dtype=torch.float32)
            _distill_round(agent, trainer, fast_net(teacher), data, cfg, penalty, gen)
            if progress is not None:
                progress(agent.env_steps)
    finally:
        vec.close()


def _student_step(vec: object, student: PrunableNet, agent: Agent, obs: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    action, _ = act(student, agent.head, obs)
    if not agent.head.continuous:
        explore = rng.random(len(action)) < DISTILL_EPS
        action = np.where(explore, vec.action_space.sample(), action)  # type: ignore[attr-defined]
    next_obs, *_ = vec.step(action)  # type: ignore[attr-defined]
    return next_obs  # type: ignore[no-any-return]


def _distill_round(agent: Agent, trainer: FlatTrainer, teacher: FastNet, data: torch.Tensor,
                   cfg: FinetuneConfig, penalty: Penalty | None, gen: torch.Generator) -> None:
    # one gradient step per DISTILL_ROLLOUT env steps of one env: 32 steps per round
    student = trainer.nets[0]
    for _ in range(DISTILL_ROLLOUT):
        idx = torch.randint(len(data), (cfg.batch_size,), generator=gen)
        batch = data[idx]
        out = trainer[student].forward(batch, record=True)
        trainer.step({student: agent.distill_grad(out, teacher.forward(batch))},
                     what="distillation loss", penalty=penalty)
