"""SAC's correctness: the squashed log-density against its definition, the target (Polyak)
update, the temperature's direction, masks held through updates, repeatability per seed,
and the gradients by hand against autograd."""
from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from nas_prune.rl.agents import AgentSpec, agents
from nas_prune.rl.agents.sac import SACAgent
from nas_prune.rl.evaluation import EnvSpec
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import weights_hash
from nas_prune.rl.optim.losses import sac_actor_grad, squashed_mse_grad, squashed_sample
from nas_prune.rl.optim.twin import StackedMLP

TINY = {"batch_size": 32, "learning_starts": 64, "buffer_size": 1000, "critic_hidden": [16, 16]}


def _sac(seed: int = 0, env: str = "Pendulum-v1", **hyper: Any) -> SACAgent:
    spec = AgentSpec(env=EnvSpec(env, {}, None), hidden=[8, 8], activation="relu",
                     hyper=SACAgent.Hyper(**{**TINY, **hyper}), seed=seed, train_steps=1000)
    agent = agents.get("sac")(spec)
    assert isinstance(agent, SACAgent)
    return agent


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize(("mean", "log_std", "action"),
                         [(0.0, 0.0, 0.3), (0.5, -1.0, 0.45), (-1.0, 0.5, -0.9)])
def test_squashed_log_density_matches_the_probability_of_a_small_interval(
        mean: float, log_std: float, action: float) -> None:
    # brute force from the definition: P(a in [x - d, x + d]) / 2d, with a = tanh(u) and
    # u ~ N(mean, std): the interval's preimage under tanh is [atanh(x - d), atanh(x + d)]
    std, d = math.exp(log_std), 1e-4
    mass = (_normal_cdf((math.atanh(action + d) - mean) / std)
            - _normal_cdf((math.atanh(action - d) - mean) / std))
    noise = np.array([[(math.atanh(action) - mean) / std]], np.float32)
    out = np.array([[mean, log_std]], np.float32)
    sampled, logp = squashed_sample(out, noise)
    assert sampled[0, 0] == pytest.approx(action, abs=1e-6)
    assert float(logp[0]) == pytest.approx(math.log(mass / (2 * d)), abs=2e-3)


def test_squashed_log_density_of_a_vector_is_the_jacobian_change_of_variables() -> None:
    rng = np.random.default_rng(0)
    out = rng.normal(size=(1, 6)).astype(np.float32)  # 3 means, 3 log-stds
    noise = rng.normal(size=(1, 3)).astype(np.float32)
    _, logp = squashed_sample(out, noise)
    mean, std = torch.tensor(out[0, :3], dtype=torch.float64), torch.tensor(
        np.exp(out[0, 3:]), dtype=torch.float64)
    u = mean + std * torch.tensor(noise[0], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(torch.tanh, u)  # da/du, 3 x 3
    gauss = torch.distributions.Normal(mean, std).log_prob(u).sum()
    expected = float(gauss - torch.logdet(jac))
    assert float(logp[0]) == pytest.approx(expected, abs=1e-4)  # 1e-6 inside SB3's log


def _torch_actor_loss(out: torch.Tensor, noise: torch.Tensor, q: torch.nn.Module,
                      alpha: float) -> torch.Tensor:
    # SB3's actor loss written with autograd (clamped log-std, tanh, its log-prob)
    n = noise.shape[1]
    log_std = out[:, n:].clamp(-20.0, 2.0)
    u = out[:, :n] + log_std.exp() * noise
    a = torch.tanh(u)
    logp = (torch.distributions.Normal(out[:, :n], log_std.exp()).log_prob(u)
            - torch.log(1 - a * a + 1e-6)).sum(-1)
    return (alpha * logp - q(a)[:, 0]).mean()


def test_actor_gradient_matches_autograd() -> None:
    torch.manual_seed(0)
    rows, n = 16, 2
    out = torch.randn(rows, 2 * n)
    out[0, n] = 3.0  # clamped: no gradient to this log-std
    noise = torch.randn(rows, n)
    q = torch.nn.Sequential(torch.nn.Linear(n, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    leaf = out.clone().requires_grad_(True)
    _torch_actor_loss(leaf, noise, q, 0.3).backward()
    action, _ = squashed_sample(out.numpy(), noise.numpy())
    a = torch.from_numpy(action).requires_grad_(True)
    d_q, = torch.autograd.grad(q(a).sum(), a)
    mine = sac_actor_grad(out.numpy(), noise.numpy(), action, d_q.numpy(), alpha=0.3)
    assert leaf.grad is not None
    np.testing.assert_allclose(mine, leaf.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert mine[0, n] == 0.0


def test_distillation_gradient_matches_autograd_and_skips_the_log_std() -> None:
    torch.manual_seed(1)
    student, teacher = torch.randn(8, 4), torch.randn(8, 4)
    leaf = student.clone().requires_grad_(True)
    torch.nn.functional.mse_loss(torch.tanh(leaf[:, :2]), torch.tanh(teacher[:, :2])).backward()
    mine = squashed_mse_grad(student.numpy(), teacher.numpy())
    assert leaf.grad is not None
    np.testing.assert_allclose(mine, leaf.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert not mine[:, 2:].any()


def test_stacked_mlp_matches_separate_mlps_under_autograd() -> None:
    torch.manual_seed(2)
    twin = StackedMLP([5, 7, 6, 1], "relu")
    x = torch.randn(10, 5)
    rows = 4  # parameter gradients from rows :4, the input's from rows 4:
    d_out = torch.randn(2, 10, 1)
    out = twin(x, record=True)
    grads, d_in = twin.backward(d_out, rows)
    expected_in = torch.zeros(6, 5)
    for k in range(2):
        params = [p[k].detach().clone().requires_grad_(True) for p in twin.params()]
        xk = x.clone().requires_grad_(True)
        h = xk
        for i in range(3):
            h = h @ params[2 * i] + params[2 * i + 1]
            h = torch.relu(h) if i < 2 else h
        torch.testing.assert_close(h, out[k])
        g_params = torch.autograd.grad((h[:rows] * d_out[k, :rows]).sum(), params,
                                       retain_graph=True)
        for mine, ref in zip(grads, g_params):
            torch.testing.assert_close(mine[k], ref)
        expected_in += torch.autograd.grad((h[rows:] * d_out[k, rows:]).sum(), xk)[0][rows:]
    torch.testing.assert_close(d_in, expected_in)


def test_target_critics_move_by_polyak_averaging() -> None:
    agent = _sac(tau=0.1)
    agent.train(100)  # 36 gradient steps: the critics and targets differ
    before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent._gradient_step(None)
    after_critic = [p.detach().clone() for p in agent.critic.parameters()]
    for old, new, online in zip(before, agent.critic_target.parameters(), after_critic):
        assert not torch.equal(old, online)
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online)
    agent.close()


def _set_policy_spread(agent: SACAgent, log_std: float) -> None:
    # every state: mean 0, log-std ``log_std``
    out = agent.actor.linears()[-1]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        out.bias[agent.n_act:] = log_std


@pytest.mark.parametrize(("log_std", "rises"), [(-5.0, True), (0.0, False)])
def test_temperature_rises_below_the_target_entropy_and_falls_above(log_std: float,
                                                                    rises: bool) -> None:
    # target entropy -dim(A) = -1 on Pendulum; tanh(N(0, e^-5)) has entropy ~ -5 (below),
    # tanh(N(0, 1)) ~ +0.4 (above). The first update (no Adam momentum yet) moves by the
    # sign of the gradient.
    agent = _sac(learning_starts=200)
    agent.train(100)  # fills the buffer, no update yet
    _set_policy_spread(agent, log_std)
    before = float(agent.log_alpha.detach())
    agent._gradient_step(None)
    after = float(agent.log_alpha.detach())
    assert (after > before) is rises
    assert after != before
    agent.close()


def test_fixed_temperature_stays() -> None:
    agent = _sac(learn_ent_coef=False, ent_coef_init=0.2)
    agent.train(100)
    assert float(agent.log_alpha.detach().exp()) == pytest.approx(0.2)
    agent.close()


def test_actor_masks_hold_through_updates() -> None:
    agent = _sac()
    layer = agent.actor.prunable_layers()[1]
    mask = (torch.rand_like(layer.weight, generator=torch.Generator().manual_seed(0)) > 0.5
            ).float()
    agent.actor.set_mask(layer.name, mask)
    before = layer.weight.detach().clone()
    agent.train(200)
    assert (layer.weight[mask == 0] == 0).all()
    assert not torch.equal(layer.weight[mask == 1], before[mask == 1])
    agent.close()


def test_same_seed_same_weights_other_seed_differs() -> None:
    hashes = []
    for seed in (0, 0, 1):
        agent = _sac(seed)
        agent.train(150)
        hashes.append((weights_hash(agent.policy), weights_hash(agent.critic)))
        agent.close()
    assert hashes[0] == hashes[1]
    assert hashes[0][0] != hashes[2][0] and hashes[0][1] != hashes[2][1]


def test_state_tensors_round_trip_and_count_the_training_only_nets() -> None:
    agent = _sac()
    agent.train(100)
    tensors = agent.state_tensors()
    fresh = _sac(seed=3)
    fresh.load_state_tensors(tensors)
    assert weights_hash(fresh.policy) == weights_hash(agent.policy)
    for k, v in fresh.state_tensors().items():
        assert torch.equal(v, tensors[k]), k
    critic = sum(p.numel() for p in agent.critic.parameters())
    # Pendulum: 3 obs + 1 action -> 16 -> 16 -> 1, twice; the target as many; log(alpha)
    assert critic == 2 * (4 * 16 + 16 + 16 * 16 + 16 + 16 + 1)
    actor = sum(p.numel() for p in agent.policy.parameters())
    assert sum(v.numel() for v in tensors.values()) - actor == 2 * critic + 1
    agent.close()
    fresh.close()


def test_explores_within_the_action_bounds_and_acts_deterministically() -> None:
    agent = _sac(learning_starts=10)
    seen: list[np.ndarray] = []
    step = agent.env.step

    def spy(action: np.ndarray) -> Any:
        seen.append(np.asarray(action))
        return step(action)

    agent.env.step = spy  # type: ignore[method-assign]
    agent.train(60)
    acts = np.concatenate(seen)
    assert acts.min() >= -2.0 and acts.max() <= 2.0 and acts.std() > 0
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    action, _ = act(agent.policy, agent.head, obs)
    mean = agent.policy(torch.from_numpy(obs)).detach().numpy()[:, :1]
    np.testing.assert_allclose(action, 2.0 * np.tanh(mean), rtol=1e-5)
    assert agent.head == Head("squashed", [-2.0], [2.0])
    agent.close()


def test_refuses_a_discrete_action_space() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match="agent.name: sac needs a Box action space"):
        SACAgent.check_env(env)
    env.close()
