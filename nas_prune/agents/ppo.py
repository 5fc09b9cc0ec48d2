"""Clipped PPO with GAE over vectorised envs; Categorical or diagonal Gaussian policy."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch.distributions import Categorical, Distribution, Normal

from nas_prune.agents.base import (
    Agent,
    AgentSpec,
    Penalty,
    Progress,
    agents,
    masked_step,
    prefixed,
    unprefixed,
)
from nas_prune.envs import act_dim, make_vec_env, obs_dim
from nas_prune.networks import MLP
from nas_prune.policy import Head


class PPOHyper(BaseModel):
    """Defaults: rl-zoo's tuned CartPole-v1 PPO (lr and clip range decay linearly to 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_envs: int = Field(default=8, ge=1)
    n_steps: int = Field(default=32, ge=1)
    batch_size: int = Field(default=256, ge=1)
    n_epochs: int = Field(default=20, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    linear_decay: bool = True
    gamma: float = Field(default=0.98, ge=0, le=1)
    gae_lambda: float = Field(default=0.8, ge=0, le=1)
    clip_range: float = Field(default=0.2, gt=0)
    ent_coef: float = Field(default=0.0, ge=0)
    vf_coef: float = Field(default=0.5, ge=0)
    max_grad_norm: float = Field(default=0.5, gt=0)
    log_std_init: float = 0.0


@agents.register("ppo")
class PPOAgent(Agent):
    """PPO with separate actor and critic MLPs; the deployed policy is the actor."""

    Hyper = PPOHyper
    default_hidden = [64, 64]
    default_activation = "tanh"

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.hp: PPOHyper = spec.hyper  # type: ignore[assignment]
        torch.manual_seed(spec.seed)
        self.gen = torch.Generator().manual_seed(spec.seed)
        self.vec = make_vec_env(spec.env.id, self.hp.n_envs, spec.env.kwargs,
                                max_episode_steps=spec.env.max_episode_steps)
        space = self.vec.single_action_space
        self.continuous = isinstance(space, gym.spaces.Box)
        self._head = Head.for_space("gaussian" if self.continuous else "categorical", space)
        n_obs, n_act = obs_dim(self.vec.single_observation_space), act_dim(space)
        self.critic = MLP([n_obs, *spec.hidden, 1], spec.activation)
        self.log_std = torch.nn.Parameter(torch.full((n_act,), self.hp.log_std_init))
        self.set_policy(MLP([n_obs, *spec.hidden, n_act], spec.activation))
        self.vec.action_space.seed(spec.seed)
        self._obs, _ = self.vec.reset(seed=spec.seed)
        self._resetting = np.zeros(self.hp.n_envs, dtype=bool)

    def close(self) -> None:
        self.vec.close()

    @property
    def policy(self) -> MLP:
        return self.actor

    @property
    def head(self) -> Head:
        return self._head

    def set_policy(self, net: MLP) -> None:
        self.actor = net
        params = [*net.parameters(), *self.critic.parameters()]
        if self.continuous:
            params.append(self.log_std)
        self.opt = torch.optim.Adam(params, lr=self.hp.lr, eps=1e-5, fused=True)

    def _dist(self, out: torch.Tensor) -> Distribution:
        if self.continuous:
            return Normal(out, self.log_std.exp())
        return Categorical(logits=out)

    def _log_prob(self, dist: Distribution, action: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(action)
        return lp.sum(-1) if self.continuous else lp

    def train(self, steps: int, *, penalty: Penalty | None = None,
              progress: Progress | None = None) -> None:
        hp = self.hp
        per_rollout = hp.n_steps * hp.n_envs
        rollouts = max(1, steps // per_rollout)
        for r in range(rollouts):
            frac = 1.0 - r / rollouts if hp.linear_decay else 1.0
            for group in self.opt.param_groups:
                group["lr"] = hp.lr * frac
            batch = self._rollout()
            self._update(batch, hp.clip_range * frac, penalty)
            if progress is not None:
                progress(self.env_steps)

    @torch.no_grad()
    def _rollout(self) -> dict[str, torch.Tensor]:
        hp = self.hp
        T, N = hp.n_steps, hp.n_envs
        obs = torch.zeros((T + 1, N, self._obs.shape[1]))
        actions, logps, rewards = [], torch.zeros(T, N), torch.zeros(T, N)
        dones, valid = torch.zeros(T, N), torch.zeros(T, N)
        for t in range(T):
            obs[t] = torch.as_tensor(self._obs)
            dist = self._dist(self.actor(obs[t]))
            action = dist.sample()
            logps[t] = self._log_prob(dist, action)
            actions.append(action)
            env_action = action.numpy()
            if self.continuous:
                env_action = np.clip(env_action, self._head.low, self._head.high)
            self._obs, reward, term, trunc, _ = self.vec.step(env_action)
            # NEXT_STEP autoreset: the step after an episode's end only resets that env.
            valid[t] = torch.as_tensor(~self._resetting, dtype=torch.float32)
            rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
            dones[t] = torch.as_tensor(term, dtype=torch.float32)
            self._resetting = term | trunc
            self.env_steps += int(N)
        obs[T] = torch.as_tensor(self._obs)
        values = self.critic(obs).squeeze(-1)
        adv = self._gae(values, rewards, dones, valid)
        return {"obs": obs[:T].flatten(0, 1), "actions": torch.stack(actions).flatten(0, 1),
                "logps": logps.flatten(), "adv": adv.flatten(),
                "returns": (adv + values[:T]).flatten(), "valid": valid.flatten()}

    def _gae(self, values: torch.Tensor, rewards: torch.Tensor, terms: torch.Tensor,
             valid: torch.Tensor) -> torch.Tensor:
        hp = self.hp
        T = rewards.shape[0]
        adv = torch.zeros_like(rewards)
        last = torch.zeros(rewards.shape[1])
        ends = torch.ones(rewards.shape[1])  # 1 where the chain continues to t + 1
        for t in reversed(range(T)):
            # an episode ends at t when the next stored step is a reset step (not valid)
            ends = valid[t + 1] if t + 1 < T else torch.as_tensor(~self._resetting,
                                                                  dtype=torch.float32)
            delta = rewards[t] + hp.gamma * values[t + 1] * (1 - terms[t]) - values[t]
            last = delta + hp.gamma * hp.gae_lambda * ends * (1 - terms[t]) * last
            adv[t] = last * valid[t]
        return adv

    def _update(self, batch: dict[str, torch.Tensor], clip: float, penalty: Penalty | None) -> None:
        hp = self.hp
        keep = batch["valid"].bool()
        data = {k: v[keep] for k, v in batch.items()}
        n = len(data["adv"])
        for _ in range(hp.n_epochs):
            order = torch.randperm(n, generator=self.gen)
            for start in range(0, n, hp.batch_size):
                idx = order[start:start + hp.batch_size]
                loss = self._loss({k: v[idx] for k, v in data.items()}, clip)
                masked_step(self.opt, loss, self.actor, what="ppo loss", penalty=penalty,
                            max_grad_norm=hp.max_grad_norm)

    def _loss(self, mb: dict[str, torch.Tensor], clip: float) -> torch.Tensor:
        hp = self.hp
        adv = mb["adv"]
        if len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        dist = self._dist(self.actor(mb["obs"]))
        ratio = (self._log_prob(dist, mb["actions"]) - mb["logps"]).exp()
        policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
        value_loss = F.mse_loss(self.critic(mb["obs"]).squeeze(-1), mb["returns"])
        entropy = dist.entropy()
        entropy = entropy.sum(-1) if self.continuous else entropy
        return policy_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy.mean()

    def distill_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        if self.continuous:
            return F.mse_loss(student_out, teacher_out)
        # KL(teacher || student) over the action distribution.
        return F.kl_div(F.log_softmax(student_out, -1), F.log_softmax(teacher_out, -1),
                        log_target=True, reduction="batchmean")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**prefixed("actor", self.actor.state_dict()),
                **prefixed("critic", self.critic.state_dict()),
                "log_std": self.log_std.detach().clone()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.actor.load_state_dict(unprefixed("actor", tensors))
        self.critic.load_state_dict(unprefixed("critic", tensors))
        with torch.no_grad():
            self.log_std.copy_(tensors["log_std"])
