"""Double DQN: target network, replay buffer, epsilon schedule, Huber loss, grad clipping."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from nas_prune.rl.agents.base import (
    Agent,
    AgentSpec,
    Penalty,
    Progress,
    agents,
    prefixed,
    unprefixed,
)
from nas_prune.rl.envs import act_dim, make_env, obs_dim, observation_levels
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import PrunableNet
from nas_prune.rl.optim.flatnet import FlatTrainer, fast_net
from nas_prune.rl.optim.losses import cross_entropy_grad, huber_q_grad

__all__ = ["DQNAgent", "DQNHyper", "ReplayBuffer"]


class DQNHyper(BaseModel):
    """Defaults: rl-zoo's tuned CartPole-v1 DQN (train_freq and target sync in env steps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lr: float = Field(default=2.3e-3, gt=0)
    batch_size: int = Field(default=64, ge=1)
    buffer_size: int = Field(default=100_000, ge=1)
    learning_starts: int = Field(default=1_000, ge=0)
    gamma: float = Field(default=0.99, ge=0, le=1)
    train_freq: int = Field(default=256, ge=1)
    gradient_steps: int = Field(default=128, ge=1)
    target_update_interval: int = Field(default=10, ge=1)
    exploration_fraction: float = Field(default=0.16, gt=0, le=1)
    exploration_initial_eps: float = Field(default=1.0, ge=0, le=1)
    exploration_final_eps: float = Field(default=0.04, ge=0, le=1)
    max_grad_norm: float = Field(default=10.0, gt=0)
    double: bool = True
    # SB3's warm-up: uniformly random actions for the first learning_starts env steps
    # (off: epsilon-greedy from the first step, as this package's earlier results ran)
    random_warmup: bool = False


class ReplayBuffer:
    """A preallocated ring buffer of transitions (numpy), sampled in bulk.

    ``levels``: observations are exactly ``k * levels`` for integers k in [0, 255] (an
    integer image flattened by ``rl.envs.flat_observations``); they are then stored as k
    in one byte, a quarter of float32's memory (MinAtar: 80 MB instead of 320 MB for 100k
    transitions; Atari: 5.6 GB instead of 22 GB), and sampled back as the same float32
    values the env gave.
    """

    def __init__(self, size: int, obs_size: int, *, levels: float | None = None) -> None:
        dtype = np.float32 if levels is None else np.uint8
        self.obs = np.zeros((size, obs_size), dtype)
        self.next_obs = np.zeros((size, obs_size), dtype)
        self.action = np.zeros(size, np.int64)
        self.reward = np.zeros(size, np.float32)
        self.terminal = np.zeros(size, np.float32)
        self.size, self.pos, self.full = size, 0, False
        self.levels = levels

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            terminal: bool) -> None:
        i = self.pos
        if self.levels is not None and self.levels != 1.0:
            obs, next_obs = np.rint(obs / self.levels), np.rint(next_obs / self.levels)
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminal[i] = next_obs, terminal
        self.pos = (i + 1) % self.size
        self.full = self.full or self.pos == 0

    def __len__(self) -> int:
        return self.size if self.full else self.pos

    def sample(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        obs, next_obs = self.obs[idx], self.next_obs[idx]
        if self.levels is not None:  # as flat_observations computes them
            obs = obs.astype(np.float32) * np.float32(self.levels)
            next_obs = next_obs.astype(np.float32) * np.float32(self.levels)
        return obs, self.action[idx], self.reward[idx], next_obs, self.terminal[idx]


@agents.register("dqn")
class DQNAgent(Agent):
    """Double DQN on a Discrete-action env; the deployed policy is the Q-network."""

    Hyper = DQNHyper
    action_spaces = (gym.spaces.Discrete,)
    default_hidden = [256, 256]
    default_activation = "relu"

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.hp: DQNHyper = spec.hyper  # type: ignore[assignment]
        torch.manual_seed(spec.seed)
        self.env = make_env(spec.env.id, spec.env.kwargs,
                            max_episode_steps=spec.env.max_episode_steps)
        self.check_env(self.env)
        self.env.action_space.seed(spec.seed)
        self.rng = np.random.default_rng(spec.seed)
        n_obs, n_act = obs_dim(self.env.observation_space), act_dim(self.env.action_space)
        self.set_policy(spec.build_net(n_obs, n_act))
        self.buffer = ReplayBuffer(self.hp.buffer_size, n_obs,
                                   levels=observation_levels(self.env))
        self._obs, _ = self.env.reset(seed=spec.seed)
        self._finetuning = False

    @property
    def policy(self) -> PrunableNet:
        return self.q

    @property
    def head(self) -> Head:
        return Head("q")

    def set_policy(self, net: PrunableNet) -> None:
        self.q = net
        device = self.spec.device
        self.trainer = FlatTrainer([net], lr=self.hp.lr, max_grad_norm=self.hp.max_grad_norm,
                                   device=device)
        self.fq = self.trainer[net]
        self.target = fast_net(copy.deepcopy(net), device)
        self._sync_due = False

    def begin_finetune(self) -> None:
        self._finetuning = True

    def close(self) -> None:
        self.env.close()

    def _epsilon(self) -> float:
        hp = self.hp
        if self._finetuning:
            return hp.exploration_final_eps
        frac = min(1.0, self.env_steps / (hp.exploration_fraction * self.spec.train_steps))
        return hp.exploration_initial_eps + frac * (hp.exploration_final_eps
                                                    - hp.exploration_initial_eps)

    def _act(self, obs: np.ndarray) -> int:
        if self.hp.random_warmup and self.env_steps < self.hp.learning_starts:
            return int(self.env.action_space.sample())
        if self.rng.random() < self._epsilon():
            return int(self.env.action_space.sample())
        return int(self.fq.act_forward(obs[None].astype(np.float32, copy=False)).argmax())

    def train(self, steps: int, *, penalty: Penalty | None = None,
              progress: Progress | None = None) -> None:
        hp = self.hp
        for _ in range(steps):
            action = self._act(self._obs)
            next_obs, reward, term, trunc, _ = self.env.step(action)
            self.buffer.add(self._obs, action, float(reward), next_obs, bool(term))
            self._obs = next_obs
            if term or trunc:
                self._obs, _ = self.env.reset()
            self.env_steps += 1
            if len(self.buffer) > hp.learning_starts and self.env_steps % hp.train_freq == 0:
                self._train_round(penalty)
            if self.env_steps % hp.target_update_interval == 0:
                # Training changes the Q-network only inside rounds, so copying it at the
                # next round's start copies the weights it has now (pruning between the
                # two is the exception: the target then starts from the pruned weights).
                self._sync_due = True
            if progress is not None:
                progress(self.env_steps)

    def _sync_target(self) -> None:
        with torch.no_grad():
            for t, p in zip(self.target.net.parameters(), self.q.parameters()):
                t.copy_(p)
        self._sync_due = False

    def _train_round(self, penalty: Penalty | None) -> None:
        hp = self.hp
        if self._sync_due:
            self._sync_target()
        steps, size = hp.gradient_steps, hp.batch_size
        idx = self.rng.integers(0, len(self.buffer), steps * size)
        obs, action, reward, next_obs, terminal = self.buffer.sample(idx)
        # The target network is fixed for the whole round: its values for the round come
        # from one batched forward.
        next_q = self.target.forward(torch.from_numpy(next_obs)).numpy()
        bootstrap = hp.gamma * (1.0 - terminal)
        if hp.double:
            # one forward per step over [states; next states]: Q(s) to train, and the
            # current online net's choice of next action (double DQN)
            inputs = np.concatenate([obs.reshape(steps, size, -1),
                                     next_obs.reshape(steps, size, -1)], 1)
        else:
            inputs = obs.reshape(steps, size, -1)
            reward = reward + bootstrap * next_q.max(1)
        rows = np.arange(size)
        for i in range(steps):
            sl = slice(i * size, (i + 1) * size)
            out = self.fq.forward(torch.from_numpy(inputs[i]), record=True).numpy()
            target = reward[sl]
            if hp.double:
                target = target + bootstrap[sl] * next_q[sl][rows, out[size:].argmax(1)]
            self.trainer.step({self.q: huber_q_grad(out[:size], action[sl], target)},
                              what="dqn loss", penalty=penalty)

    def distill_grad(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        # Teacher's greedy action as the label, student's Q-values as logits (PoPS).
        return torch.from_numpy(cross_entropy_grad(student_out.numpy(),
                                                   teacher_out.numpy().argmax(1)))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return prefixed("q", self.q.state_dict())

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.q.load_state_dict(unprefixed("q", tensors))
        self._sync_target()
