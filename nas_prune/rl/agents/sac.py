"""Soft actor-critic (Haarnoja et al. 2018, as stable-baselines3 implements it): twin Q
critics with Polyak-averaged targets, a tanh-squashed diagonal Gaussian actor, automatic
entropy temperature, a replay buffer.

The actor is one MLP whose output holds the Gaussian's mean (first ``A`` columns) and
log-std (last ``A``, training only); the deployed policy is the actor cut to its mean rows
(``deployed_per_action``), and head ``squashed`` acts with ``tanh(mean)`` rescaled to the
action bounds, SAC's deterministic action. The critics, their targets and the temperature
are training-only. One ``FlatTrainer`` holds the actor (first: pruning penalties and
sparse-training hooks apply to it), the critics and log(alpha), and one fused Adam step
updates all three: Adam is elementwise, so this equals SB3's three optimizers, except that
the actor's loss uses the critics from before this step's critic update (SB3 uses those
after it; a one-step lag of a slowly moving target, as in the original SAC's simultaneous
updates).
"""
from __future__ import annotations

import copy
import math

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
from nas_prune.rl.agents.dqn import ReplayBuffer
from nas_prune.rl.envs import act_dim, make_env, obs_dim
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import PrunableNet
from nas_prune.rl.normalization import attach_obs_norm, freeze_obs_norm
from nas_prune.rl.optim.flatnet import FlatTrainer
from nas_prune.rl.optim.losses import sac_actor_grad, squashed_mse_grad, squashed_sample
from nas_prune.rl.optim.twin import StackedMLP

__all__ = ["SACAgent", "SACHyper"]


class SACHyper(BaseModel):
    """Defaults: stable-baselines3's SAC, which rl-zoo tunes per env (its MuJoCo entries
    set ``learning_starts: 10000``; Pendulum-v1 ``lr: 1e-3``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lr: float = Field(default=3e-4, gt=0)
    buffer_size: int = Field(default=1_000_000, ge=1)
    learning_starts: int = Field(default=100, ge=0)  # uniform random actions before it
    batch_size: int = Field(default=256, ge=1)
    tau: float = Field(default=0.005, gt=0, le=1)  # Polyak step of the target critics
    gamma: float = Field(default=0.99, ge=0, le=1)
    train_freq: int = Field(default=1, ge=1)  # env steps between gradient rounds
    gradient_steps: int = Field(default=1, ge=1)
    ent_coef_init: float = Field(default=1.0, gt=0)  # SB3's ent_coef "auto" starts at 1
    learn_ent_coef: bool = True  # false: alpha stays ent_coef_init
    target_entropy: float | None = None  # None: -dim(A), SB3's "auto"
    critic_hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    # running observation mean/var as the actor's input stage (rl.normalization); updated
    # from every observation acted on, frozen from begin_finetune; the replay buffer keeps
    # raw observations, normalised when sampled (SB3's VecNormalize with off-policy agents)
    normalize_obs: bool = False


class _BoxReplay(ReplayBuffer):
    """The replay buffer with float action vectors (in [-1, 1], before rescaling)."""

    def __init__(self, size: int, obs_size: int, n_act: int) -> None:
        super().__init__(size, obs_size)
        self.action = np.zeros((size, n_act), np.float32)  # type: ignore[assignment]


@agents.register("sac")
class SACAgent(Agent):
    """SAC on a Box-action env; the deployed policy is the actor's deterministic action."""

    Hyper = SACHyper
    action_spaces = (gym.spaces.Box,)
    default_hidden = [256, 256]
    default_activation = "relu"
    outputs_per_action = 2
    deployed_per_action = 1  # the mean; the log-std only trains

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.hp: SACHyper = spec.hyper  # type: ignore[assignment]
        hp = self.hp
        torch.manual_seed(spec.seed)
        self.env = make_env(spec.env.id, spec.env.kwargs,
                            max_episode_steps=spec.env.max_episode_steps)
        self.check_env(self.env)
        self.rng = np.random.default_rng(spec.seed)  # exploration, noise, minibatches
        self._head = Head.for_space("squashed", self.env.action_space)
        n_obs, self.n_act = obs_dim(self.env.observation_space), act_dim(self.env.action_space)
        self.critic = StackedMLP([n_obs + self.n_act, *hp.critic_hidden, 1], spec.activation)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.nn.Parameter(torch.full((1,), math.log(hp.ent_coef_init)))
        self.target_entropy = (-float(self.n_act) if hp.target_entropy is None
                               else hp.target_entropy)
        actor = spec.build_net(n_obs, self.outputs_per_action * self.n_act)
        if hp.normalize_obs:
            attach_obs_norm(actor, n_obs)
        self.set_policy(actor)
        self.buffer = _BoxReplay(hp.buffer_size, n_obs, self.n_act)
        self._obs, _ = self.env.reset(seed=spec.seed)
        self._finetuning = False

    @property
    def policy(self) -> PrunableNet:
        return self.actor

    @property
    def head(self) -> Head:
        return self._head

    def set_policy(self, net: PrunableNet) -> None:
        self.actor = net
        extra = [*self.critic.params(), *([self.log_alpha] if self.hp.learn_ent_coef else [])]
        self.trainer = FlatTrainer([net], extra, lr=self.hp.lr)

    def begin_finetune(self) -> None:
        # the policy acts from the first step (no uniform warm-up); updates start once the
        # buffer holds one batch
        self._finetuning = True
        freeze_obs_norm(self.actor)  # the statistics are fixed from here on

    def close(self) -> None:
        self.env.close()

    def net_input(self, obs: np.ndarray) -> np.ndarray:
        """Env observations (rows) as flat float32 rows: what the actor reads (its input
        stage, if any, normalises inside its forward)."""
        return np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)

    def critic_input(self, obs: np.ndarray) -> np.ndarray:
        """``net_input`` rows as the critics read them: through the actor's input stage, so
        the two can never use different statistics."""
        norm = self.actor.obs_norm
        return obs if norm is None else norm.normalize(obs)

    def _explore(self, obs: np.ndarray) -> np.ndarray:
        # an action in [-1, 1]^A: uniform during the warm-up, else a draw from the policy
        if not self._finetuning and self.env_steps < self.hp.learning_starts:
            return self.rng.uniform(-1.0, 1.0, self.n_act).astype(np.float32)
        out = self.trainer[self.actor].act_forward(self.net_input(obs[None]))
        noise = self.rng.standard_normal(out[:, :self.n_act].shape, dtype=np.float32)
        return squashed_sample(out, noise)[0][0]

    def _learning(self) -> bool:
        if self._finetuning:
            return len(self.buffer) >= self.hp.batch_size
        return self.env_steps > self.hp.learning_starts

    def train(self, steps: int, *, penalty: Penalty | None = None,
              progress: Progress | None = None) -> None:
        hp = self.hp
        norm = self.actor.obs_norm
        for _ in range(steps):
            if norm is not None:  # a frozen stage ignores it
                norm.update(self.net_input(self._obs[None]))
            action = self._explore(self._obs)
            next_obs, reward, term, trunc, _ = self.env.step(self._head.from_unit(action))
            # a time-limit truncation is not terminal: the target bootstraps through it
            self.buffer.add(self._obs, action, float(reward), next_obs,  # type: ignore[arg-type]
                            bool(term))
            self._obs = next_obs
            if term or trunc:
                self._obs, _ = self.env.reset()
            self.env_steps += 1
            if self._learning() and self.env_steps % hp.train_freq == 0:
                for _ in range(hp.gradient_steps):
                    self._gradient_step(penalty)
            if progress is not None:
                progress(self.env_steps)

    def _gradient_step(self, penalty: Penalty | None) -> None:
        rows = self.hp.batch_size
        obs, action, reward, next_obs, term = self.buffer.sample(
            self.rng.integers(0, len(self.buffer), rows))
        obs, next_obs = self.net_input(obs), self.net_input(next_obs)
        # one actor forward over [states; next states]: the actor loss's actions (recorded
        # rows first, which backward uses) and the target's next actions
        out = self.trainer[self.actor].forward(
            torch.from_numpy(np.concatenate([obs, next_obs])), record=True).numpy()
        noise = self.rng.standard_normal((2 * rows, self.n_act), dtype=np.float32)
        sampled, logp = squashed_sample(out, noise)
        alpha = float(self.log_alpha.detach().exp())  # before this step's update (SB3)
        target = self._td_target(next_obs, sampled[rows:], logp[rows:], reward, term, alpha)
        # one critic pass over [buffer actions; policy actions]: the critic loss's gradient
        # from the first rows, d min Q / d action from the later ones
        c_obs = self.critic_input(obs)
        q = self.critic(torch.from_numpy(np.concatenate(
            [np.concatenate([c_obs, action], 1), np.concatenate([c_obs, sampled[:rows]], 1)])),
            record=True).numpy()[..., 0]
        d_q = np.zeros_like(q)
        d_q[:, :rows] = (q[:, :rows] - target) / rows  # 0.5 * sum_i mse(Q_i, target)
        d_q[q[:, rows:].argmin(0), np.arange(rows, 2 * rows)] = 1.0
        critic_grads, d_in = self.critic.backward(torch.from_numpy(d_q[..., None]), rows)
        d_action = d_in.numpy()[:, -self.n_act:]
        extra: dict[torch.nn.Parameter, torch.Tensor | np.ndarray] = dict(
            zip(self.critic.params(), critic_grads))
        # SB3's temperature loss -log_alpha * mean(logp + target_entropy)
        extra[self.log_alpha] = -(logp[:rows] + self.target_entropy).mean(keepdims=True)
        actor_grad = sac_actor_grad(out[:rows], noise[:rows], sampled[:rows], d_action,
                                    alpha=alpha)
        self.trainer.step({self.actor: actor_grad}, extra=extra, what="sac loss",
                          penalty=penalty)
        self._polyak()

    def _td_target(self, next_obs: np.ndarray, next_action: np.ndarray, next_logp: np.ndarray,
                   reward: np.ndarray, term: np.ndarray, alpha: float) -> np.ndarray:
        next_q = self.critic_target(torch.from_numpy(
            np.concatenate([self.critic_input(next_obs), next_action], 1))).numpy()[..., 0].min(0)
        return reward + self.hp.gamma * (1.0 - term) * (next_q - alpha * next_logp)

    @torch.no_grad()
    def _polyak(self) -> None:
        torch._foreach_lerp_(list(self.critic_target.parameters()),
                             list(self.critic.parameters()), self.hp.tau)

    def distill_grad(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        """MSE between the student's and the teacher's deterministic actions, tanh(mean), in
        the [-1, 1] action box: the loss measures exactly the deployed behaviour, so
        saturated means that act alike (tanh(5) ~ tanh(9)) cost nothing, which an MSE on
        the raw means would chase; the log-std (not deployed) gets no gradient."""
        return torch.from_numpy(squashed_mse_grad(student_out.numpy(), teacher_out.numpy()))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**prefixed("actor", self.actor.state_dict()),
                **prefixed("critic", self.critic.state_dict()),
                **prefixed("critic_target", self.critic_target.state_dict()),
                "log_alpha": self.log_alpha.detach().clone()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.actor.load_state_dict(unprefixed("actor", tensors))
        self.critic.load_state_dict(unprefixed("critic", tensors))
        self.critic_target.load_state_dict(unprefixed("critic_target", tensors))
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
