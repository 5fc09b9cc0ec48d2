"""Clipped PPO with GAE over vectorised envs; Categorical or diagonal Gaussian policy."""
from __future__ import annotations

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
from nas_prune.rl.envs import act_dim, make_vec_env, obs_dim
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import PrunableNet
from nas_prune.rl.normalization import RewardScaler, attach_obs_norm, freeze_obs_norm
from nas_prune.rl.optim.flatnet import FlatTrainer
from nas_prune.rl.optim.losses import (
    LOG_2PI,
    kl_grad,
    mse_grad,
    normalized,
    ppo_categorical_grad,
    ppo_gaussian_grad,
)

__all__ = ["PPOAgent", "PPOHyper"]


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
    # SB3's ortho_init: orthogonal weights (gain sqrt 2; the actor's output 0.01, the
    # critic's 1), zero biases; off by default (this package's earlier results ran without)
    ortho_init: bool = False
    # SB3 VecNormalize (rl-zoo's MuJoCo setting): running observation statistics, part of
    # the deployed actor and frozen once pruning starts; rewards over the running std of the
    # discounted return (training only). rl.normalization says how.
    normalize_obs: bool = False
    normalize_reward: bool = False


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
        self.rng = np.random.default_rng(spec.seed)  # action sampling, minibatch order
        self.vec = make_vec_env(spec.env.id, self.hp.n_envs, spec.env.kwargs,
                                max_episode_steps=spec.env.max_episode_steps)
        space = self.vec.single_action_space
        self.continuous = isinstance(space, gym.spaces.Box)
        self._head = Head.for_space("gaussian" if self.continuous else "categorical", space)
        n_obs, n_act = obs_dim(self.vec.single_observation_space), act_dim(space)
        self.critic = spec.build_net(n_obs, 1)
        actor = spec.build_net(n_obs, n_act)
        if self.hp.ortho_init:
            _ortho_init(actor, 0.01)
            _ortho_init(self.critic, 1.0)
        if self.hp.normalize_obs:
            attach_obs_norm(actor, n_obs)
        self.reward_scaler = (RewardScaler(self.hp.n_envs, self.hp.gamma)
                              if self.hp.normalize_reward else None)
        self.log_std = torch.nn.Parameter(torch.full((n_act,), self.hp.log_std_init))
        self.set_policy(actor)
        self.vec.action_space.seed(spec.seed)
        obs, _ = self.vec.reset(seed=spec.seed)
        self._obs = np.asarray(obs, dtype=np.float32)
        self._resetting = np.zeros(self.hp.n_envs, dtype=bool)

    def close(self) -> None:
        self.vec.close()

    def begin_finetune(self) -> None:
        freeze_obs_norm(self.actor)  # the statistics are fixed from here on
        if self.reward_scaler is not None:
            self.reward_scaler.stats.frozen = True

    @property
    def policy(self) -> PrunableNet:
        return self.actor

    @property
    def head(self) -> Head:
        return self._head

    def set_policy(self, net: PrunableNet) -> None:
        self.actor = net
        self.trainer = FlatTrainer([net, self.critic], [self.log_std] if self.continuous else [],
                                   lr=self.hp.lr, eps=1e-5, max_grad_norm=self.hp.max_grad_norm,
                                   device=self.spec.device)

    def train(self, steps: int, *, penalty: Penalty | None = None,
              progress: Progress | None = None) -> None:
        hp = self.hp
        per_rollout = hp.n_steps * hp.n_envs
        rollouts = max(1, steps // per_rollout)
        for r in range(rollouts):
            frac = 1.0 - r / rollouts if hp.linear_decay else 1.0
            self.trainer.lr = hp.lr * frac
            batch = self._rollout()
            self._update(batch, hp.clip_range * frac, penalty)
            if progress is not None:
                progress(self.env_steps)
            # after the update (and any snapshot), so an iteration acts and learns with one
            # set of statistics; not after the last: the weights keep the ones they saw
            if self.actor.obs_norm is not None and r + 1 < rollouts:
                self.actor.obs_norm.update(batch["obs"])

    def _sample(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # numpy on a few rows: (action, its log-probability), drawn from self.rng
        out = self.trainer[self.actor].act_forward(obs)
        if self.continuous:
            log_std = self.log_std.detach().numpy()
            noise = self.rng.standard_normal(out.shape).astype(np.float32)
            action = out + np.exp(log_std) * noise
            logp = (-0.5 * noise * noise - log_std - 0.5 * LOG_2PI).sum(-1)
            return action, logp
        shifted = out - out.max(-1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(-1))
        u = self.rng.random(out.shape, dtype=np.float32)
        gumbel = -np.log(-np.log(np.maximum(u, np.finfo(np.float32).tiny)))
        action = (shifted + gumbel).argmax(-1)  # Gumbel-max: a draw from softmax(out)
        return action, shifted[np.arange(len(action)), action] - log_norm

    def _rollout(self) -> dict[str, np.ndarray]:
        hp = self.hp
        T, N = hp.n_steps, hp.n_envs
        obs = np.zeros((T + 1, N, self._obs.shape[1]), np.float32)
        actions: list[np.ndarray] = []
        logps, rewards = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
        terms, valid = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
        for t in range(T):
            obs[t] = self._obs
            action, logps[t] = self._sample(self._obs)
            actions.append(action)
            env_action = action
            if self.continuous:
                env_action = np.clip(action, self._head.low, self._head.high)
            next_obs, reward, term, trunc, _ = self.vec.step(env_action)
            self._obs = np.asarray(next_obs, dtype=np.float32)
            # NEXT_STEP autoreset: the step after an episode's end only resets that env.
            valid[t] = ~self._resetting
            if self.reward_scaler is not None:
                reward = self.reward_scaler(reward, valid[t], term | trunc)
            rewards[t], terms[t] = reward, term
            self._resetting = term | trunc
            self.env_steps += int(N)
        obs[T] = self._obs
        flat_obs = torch.from_numpy(self._critic_input(obs.reshape((T + 1) * N, -1)))
        values = self.trainer[self.critic].forward(flat_obs).numpy().reshape(T + 1, N)
        adv = self._gae(values, rewards, terms, valid)
        keep = valid.reshape(-1).astype(bool)
        act = np.stack(actions).reshape(T * N, -1)
        return {"obs": obs[:T].reshape(T * N, -1)[keep],
                "actions": act[keep] if self.continuous else act[keep, 0],
                "logps": logps.reshape(-1)[keep], "adv": adv.reshape(-1)[keep],
                "returns": (adv + values[:T]).reshape(-1)[keep]}

    def _gae(self, values: np.ndarray, rewards: np.ndarray, terms: np.ndarray,
             valid: np.ndarray) -> np.ndarray:
        hp = self.hp
        T = rewards.shape[0]
        adv = np.zeros_like(rewards)
        last = np.zeros(rewards.shape[1], np.float32)
        for t in reversed(range(T)):
            # an episode ends at t when the next stored step is a reset step (not valid)
            ends = valid[t + 1] if t + 1 < T else (~self._resetting).astype(np.float32)
            cont = 1.0 - terms[t]
            delta = rewards[t] + hp.gamma * values[t + 1] * cont - values[t]
            last = delta + hp.gamma * hp.gae_lambda * ends * cont * last
            adv[t] = last * valid[t]
        return adv

    def _update(self, data: dict[str, np.ndarray], clip: float, penalty: Penalty | None) -> None:
        hp = self.hp
        n = len(data["adv"])
        if n == 0:  # every step of the rollout was a reset step
            return
        if n <= hp.batch_size:  # one minibatch: the whole rollout, the same every epoch
            data = {**data, "adv": normalized(data["adv"])}
            for _ in range(hp.n_epochs):
                self._minibatch_step(data, clip, penalty)
            return
        for _ in range(hp.n_epochs):
            order = self.rng.permutation(n)
            for start in range(0, n, hp.batch_size):
                mb = {k: v[order[start:start + hp.batch_size]] for k, v in data.items()}
                mb["adv"] = normalized(mb["adv"])
                self._minibatch_step(mb, clip, penalty)

    def _minibatch_step(self, mb: dict[str, np.ndarray], clip: float,
                        penalty: Penalty | None) -> None:
        hp = self.hp
        obs = torch.from_numpy(mb["obs"])
        out = self.trainer[self.actor].forward(obs, record=True).numpy()
        critic_obs = torch.from_numpy(self._critic_input(mb["obs"]))
        values = self.trainer[self.critic].forward(critic_obs, record=True).numpy()
        grads = {self.critic: mse_grad(values, mb["returns"][:, None], coef=hp.vf_coef)}
        extra = {}
        if self.continuous:
            grads[self.actor], extra[self.log_std] = ppo_gaussian_grad(
                out, self.log_std.detach().numpy(), mb, clip=clip, ent_coef=hp.ent_coef)
        else:
            grads[self.actor] = ppo_categorical_grad(out, mb, clip=clip, ent_coef=hp.ent_coef)
        self.trainer.step(grads, extra=extra, what="ppo loss", penalty=penalty)

    def _critic_input(self, obs: np.ndarray) -> np.ndarray:
        # the critic reads what the actor's input stage makes of obs (one set of statistics)
        norm = self.actor.obs_norm
        return obs if norm is None else norm.normalize(obs)

    def distill_grad(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        student, teacher = student_out.numpy(), teacher_out.numpy()
        if self.continuous:
            return torch.from_numpy(mse_grad(student, teacher))
        return torch.from_numpy(kl_grad(student, teacher))  # KL(teacher || student)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**prefixed("actor", self.actor.state_dict()),
                **prefixed("critic", self.critic.state_dict()),
                "log_std": self.log_std.detach().clone(),
                **({} if self.reward_scaler is None else self.reward_scaler.state_tensors())}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.actor.load_state_dict(unprefixed("actor", tensors))
        self.critic.load_state_dict(unprefixed("critic", tensors))
        with torch.no_grad():
            self.log_std.copy_(tensors["log_std"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_tensors(tensors)


@torch.no_grad()
def _ortho_init(net: torch.nn.Module, out_gain: float) -> None:
    """SB3's PPO initialisation: orthogonal weights with gain sqrt(2), ``out_gain`` for the
    output layer, zero biases (every Linear and conv layer, input first)."""
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for i, layer in enumerate(layers):
        torch.nn.init.orthogonal_(layer.weight, gain=out_gain if i == len(layers) - 1
                                  else float(np.sqrt(2)))
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)
