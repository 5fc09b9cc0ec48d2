"""Agents end to end on tiny budgets: the paths the default CartPole configs do not take
(continuous actions, several minibatches, vanilla DQN, empty rollouts), and that training
moves the weights, stays finite and repeats per seed."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nas_prune.rl.agents import Agent, AgentSpec, agents
from nas_prune.rl.evaluation import EnvSpec
from nas_prune.rl.networks import weights_hash


def _agent(name: str, env: str, *, seed: int = 0, hyper: dict[str, Any] | None = None,
           max_episode_steps: int | None = None) -> Agent:
    cls = agents.get(name)
    spec = AgentSpec(env=EnvSpec(env, {}, max_episode_steps), hidden=[8, 8],
                     activation=cls.default_activation, hyper=cls.Hyper(**(hyper or {})),
                     seed=seed, train_steps=2048)
    return cls(spec)


def _trained(name: str, env: str, steps: int, **kw: Any) -> tuple[Agent, dict[str, str]]:
    agent = _agent(name, env, **kw)
    before = {k: weights_hash(torch.nn.ParameterList([torch.nn.Parameter(v)]))
              for k, v in agent.state_tensors().items()}
    agent.train(steps)
    agent.close()
    return agent, before


def _check_trained(agent: Agent, before: dict[str, str]) -> None:
    after = agent.state_tensors()
    assert all(torch.isfinite(v).all() for v in after.values())
    changed = [k for k, v in after.items()
               if weights_hash(torch.nn.ParameterList([torch.nn.Parameter(v)])) != before[k]]
    assert changed, "training changed no weight"


def test_ppo_gaussian_trains_log_std_and_repeats_per_seed() -> None:
    hyper = {"n_envs": 2, "n_steps": 64, "batch_size": 32, "n_epochs": 2, "ent_coef": 0.01}
    a, before = _trained("ppo", "Pendulum-v1", 512, hyper=hyper)
    _check_trained(a, before)
    assert a.head.kind == "gaussian"
    assert not torch.equal(a.state_tensors()["log_std"], torch.zeros(1))  # it learns
    b, _ = _trained("ppo", "Pendulum-v1", 512, hyper=hyper)
    assert weights_hash(a.policy) == weights_hash(b.policy)  # same seed, same weights
    c, _ = _trained("ppo", "Pendulum-v1", 512, hyper=hyper, seed=1)
    assert weights_hash(a.policy) != weights_hash(c.policy)


def test_ppo_gaussian_actions_are_clipped_to_the_env_bounds() -> None:
    agent = _agent("ppo", "Pendulum-v1", hyper={"n_envs": 2, "n_steps": 8,
                                                "log_std_init": 3.0})
    seen: list[np.ndarray] = []
    step = agent.vec.step

    def spy(action: np.ndarray) -> Any:
        seen.append(np.asarray(action))
        return step(action)

    agent.vec.step = spy  # type: ignore[method-assign]
    agent.train(16)
    agent.close()
    acts = np.concatenate(seen)
    assert acts.min() >= -2.0 and acts.max() <= 2.0  # std e^3 would leave [-2, 2] unclipped


def test_ppo_several_minibatches_per_epoch() -> None:
    a, before = _trained("ppo", "CartPole-v1", 512,
                         hyper={"n_envs": 4, "n_steps": 32, "batch_size": 16, "n_epochs": 2})
    _check_trained(a, before)


def test_ppo_rollout_without_valid_steps_is_skipped() -> None:
    # one env, one step per rollout, episodes of one step: every other rollout holds only a
    # reset step, which PPO drops; the update must then do nothing rather than fail
    a, _ = _trained("ppo", "CartPole-v1", 8, hyper={"n_envs": 1, "n_steps": 1},
                    max_episode_steps=1)
    assert a.env_steps == 8


@pytest.mark.parametrize("double", [True, False])
def test_dqn_trains_with_and_without_double(double: bool) -> None:
    hyper = {"learning_starts": 100, "train_freq": 50, "gradient_steps": 4, "double": double,
             "target_update_interval": 20}
    a, before = _trained("dqn", "CartPole-v1", 400, hyper=hyper)
    _check_trained(a, before)


def test_dqn_double_and_vanilla_differ() -> None:
    # the target net equals the online net at a round's start, so the two only part once
    # the online net's greedy next action changes within a round: long rounds, large steps
    hyper = {"learning_starts": 100, "train_freq": 100, "gradient_steps": 64, "lr": 0.01}
    a, _ = _trained("dqn", "CartPole-v1", 600, hyper={**hyper, "double": True})
    b, _ = _trained("dqn", "CartPole-v1", 600, hyper={**hyper, "double": False})
    assert weights_hash(a.policy) != weights_hash(b.policy)


@pytest.mark.parametrize("warmup", [True, False])
def test_dqn_random_warmup_acts_without_the_q_network_until_learning_starts(
        warmup: bool) -> None:
    # epsilon 0 throughout: only the warm-up can make an action random
    hyper = {"learning_starts": 50, "train_freq": 1000, "exploration_initial_eps": 0.0,
             "exploration_final_eps": 0.0, "random_warmup": warmup}
    agent = _agent("dqn", "CartPole-v1", hyper=hyper)
    greedy_at: list[int] = []
    act = agent.fq.act_forward  # type: ignore[attr-defined]
    agent.fq.act_forward = lambda x: (greedy_at.append(agent.env_steps), act(x))[1]  # type: ignore[attr-defined]
    agent.train(80)
    agent.close()
    assert greedy_at == (list(range(50, 80)) if warmup else list(range(80)))


def test_dqn_target_copies_the_q_network_at_the_next_round() -> None:
    hyper = {"learning_starts": 100, "train_freq": 50, "gradient_steps": 4,
             "target_update_interval": 10}
    agent = _agent("dqn", "CartPole-v1", hyper=hyper)
    agent.train(200)  # ends right after a round at step 200, then a sync is due
    q_now = [t.clone() for t in agent.q.state_dict().values()]  # type: ignore[attr-defined]
    target = agent.target.weights  # type: ignore[attr-defined]
    assert any(not torch.equal(w, q) for (w, _), q in zip(target, q_now[::2]))  # stale yet
    agent._sync_target()  # type: ignore[attr-defined]
    assert all(torch.equal(w, q) for (w, _), q in zip(target, q_now[::2]))
    agent.close()


def test_ppo_ortho_init_is_sb3s() -> None:
    """ortho_init: orthogonal weights (gain sqrt 2 inside, 0.01 for the actor's output, 1 for
    the critic's), zero biases; off by default (the default draw is torch's)."""
    agent = _agent("ppo", "CartPole-v1", hyper={"ortho_init": True})
    default = _agent("ppo", "CartPole-v1")
    for net, out_gain in ((agent.policy, 0.01), (agent.critic, 1.0)):  # type: ignore[attr-defined]
        layers = net.linears()
        for i, layer in enumerate(layers):
            w = layer.weight.detach()
            gain = out_gain if i == len(layers) - 1 else float(np.sqrt(2))
            small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(small, gain ** 2 * torch.eye(len(small)), atol=1e-5,
                                       rtol=1e-4)
            assert not layer.bias.any()
    assert default.policy.linears()[0].bias.any()  # type: ignore[attr-defined]


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_replay_stores_integer_images_in_bytes_and_returns_the_envs_floats(dtype: Any) -> None:
    import gymnasium as gym

    from nas_prune.rl.agents.dqn import ReplayBuffer
    from nas_prune.rl.envs import flat_observations, observation_levels

    high = 255 if dtype == np.uint8 else 1
    space = gym.spaces.Box(0, high, (3, 4, 2), dtype)

    class Images(gym.Env):  # type: ignore[type-arg]
        observation_space, action_space = space, gym.spaces.Discrete(2)

    env = flat_observations(Images())
    levels = observation_levels(env)
    assert levels == (1 / 255 if dtype == np.uint8 else 1.0)
    rng = np.random.default_rng(0)
    frames = [env.observation(rng.integers(0, high + 1, space.shape).astype(dtype))
              for _ in range(6)]
    buf = ReplayBuffer(4, 24, levels=levels)  # wraps around once
    for i in range(5):
        buf.add(frames[i], i % 2, 1.0, frames[i + 1], False)
    assert buf.obs.dtype == np.uint8 and buf.obs.nbytes == 4 * 24
    obs, _, _, next_obs, _ = buf.sample(np.array([0, 1, 3]))
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, np.stack([frames[4], frames[1], frames[3]]))
    np.testing.assert_array_equal(next_obs, np.stack([frames[5], frames[2], frames[4]]))
    assert observation_levels(flat_observations(
        gym.make("CartPole-v1"))) is None  # not an image: float32 storage


@pytest.mark.parametrize("name", ["dqn", "ppo"])
def test_cnn_agents_train_the_same_through_a_device_mirror(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a CUDA device takes (``AutogradNet`` with a mirror: weights copied in per
    forward, gradients copied back, outputs brought back to the CPU), run on the CPU inside
    whole agents: the same weights as autograd on the net itself, bit for bit."""
    from nas_prune.rl.agents import dqn
    from nas_prune.rl.optim import flatnet

    hyper = ({"learning_starts": 64, "train_freq": 4, "gradient_steps": 2, "batch_size": 8,
              "target_update_interval": 32} if name == "dqn"
             else {"n_envs": 2, "n_steps": 16, "batch_size": 16, "n_epochs": 2})
    weights = []
    for mirror in (False, True):
        def path(net: Any, device: str = "cpu", mirror: bool = mirror) -> Any:
            if isinstance(net, flatnet.MLP):
                return flatnet.FlatMLP(net)
            return flatnet.AutogradNet(net, device, mirror=mirror)

        monkeypatch.setattr(flatnet, "fast_net", path)
        monkeypatch.setattr(dqn, "fast_net", path)
        cls = agents.get(name)
        spec = AgentSpec(env=EnvSpec("MinAtar/Breakout-v1", {}, 200), hidden=[8],
                         activation="relu", hyper=cls.Hyper(**hyper), seed=0, train_steps=160,
                         network="cnn", channels=(2,), kernels=(3,), strides=(2,))
        agent = cls(spec)
        agent.train(160)
        agent.close()
        weights.append(agent.state_tensors())
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_check_env_names_the_registered_agents_that_fit_the_action_space(env_id: str) -> None:
    """Each agent declares its action spaces; one that does not fit the env is refused with
    the registered agents that do (derived from the registry, so a new agent is listed)."""
    import gymnasium as gym

    env = gym.make(env_id)
    fit = [n for n in agents.names() if isinstance(env.action_space, agents.get(n).action_spaces)]
    assert fit and "ppo" in fit  # PPO acts in both
    for name in agents.names():
        if name in fit:
            agents.get(name).check_env(env)
            continue
        with pytest.raises(ValueError) as err:
            agents.get(name).check_env(env)
        msg = str(err.value)
        assert msg.startswith(f"agent.name: {name} needs a ")
        assert msg.endswith(f"allowed agents for it: {', '.join(fit)}")
    env.close()


@pytest.mark.parametrize(("name", "env_id", "outputs"), [
    ("dqn", "CartPole-v1", 2), ("ppo", "CartPole-v1", 2), ("ppo", "Pendulum-v1", 1),
    ("sac", "Pendulum-v1", 1)])
def test_each_agent_deploys_the_outputs_its_head_reads(name: str, env_id: str,
                                                       outputs: int) -> None:
    """The deployed policy keeps the policy's first ``deployed_outputs`` outputs: all of a
    Q-network's or a PPO actor's, only a SAC actor's means (its log-stds only train)."""
    agent = _agent(name, env_id, hyper={"buffer_size": 64} if name != "ppo" else None)
    width = agent.policy.prunable_layers()[-1].n_units
    assert width == outputs * agent.outputs_per_action
    assert agent.deployed_outputs(width) == outputs
    agent.close()
