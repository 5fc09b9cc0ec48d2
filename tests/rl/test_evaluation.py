"""nas_prune.rl.evaluation: episode counts, exact returns on envs with known returns,
summaries computed by hand, seeding, and the errors."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from nas_prune.rl import evaluation
from nas_prune.rl.envs import env_steps_taken, episode_seeds
from nas_prune.rl.evaluation import EnvSpec, EvalResult, evaluate, evaluate_fn
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP
from tests.rl.toy_envs import RandomLengthEnv

TOY = "tests.rl.toy_envs"


def _constant(outputs: list[float]) -> MLP:
    """An MLP [2, n] whose output is ``outputs`` whatever the observation."""
    net = MLP([2, len(outputs)])
    with torch.no_grad():
        net.layers[0].weight.zero_()
        net.layers[0].bias.copy_(torch.tensor(outputs))
    return net


ALWAYS_1 = _constant([0.0, 1.0])  # Q(., 0) = 0, Q(., 1) = 1: always action 1
ALWAYS_0 = _constant([1.0, 0.0])


@pytest.mark.parametrize(("episodes", "max_envs"), [(1, 100), (7, 3), (6, 3), (5, 100),
                                                     (4, 1)])
def test_episode_count_and_exact_returns(episodes: int, max_envs: int) -> None:
    env = EnvSpec(f"{TOY}:FixedLengthEnv", {"length": 4})
    before = env_steps_taken()
    res = evaluate(ALWAYS_1, Head("q"), env, episodes=episodes, seed=0, max_envs=max_envs)
    assert res.returns == [4.0] * episodes
    assert (res.mean, res.std, res.iqm) == (4.0, 0.0, 4.0)
    assert res.q_mean == 1.0  # max-Q of every state visited
    assert res.env_steps == 4 * episodes
    assert env_steps_taken() - before == 4 * episodes  # counted once, by evaluation


@pytest.mark.parametrize(("net", "ret"), [(ALWAYS_1, 3.0), (ALWAYS_0, 0.0)])
def test_categorical_head_has_no_q_mean(net: MLP, ret: float) -> None:
    env = EnvSpec(f"{TOY}:FixedLengthEnv", {"length": 3})
    res = evaluate(net, Head("categorical"), env, episodes=3, seed=1)
    assert res.returns == [ret] * 3
    assert res.q_mean is None


def test_gaussian_actions_are_clipped_before_the_env_sees_them() -> None:
    net = _constant([5.0, 0.0])  # mean 5 on a [-2, 2] action: clipped to 2, reward 2 a step
    env = EnvSpec(f"{TOY}:BoxActionEnv", {"length": 4})
    res = evaluate(net, Head("gaussian", [-2.0, -2.0], [2.0, 2.0]), env, episodes=2, seed=0)
    assert res.returns == [8.0, 8.0]


def test_returns_are_the_episode_lengths_drawn_from_the_batch_seeds() -> None:
    # hand computation: batch b resets sub-env i with seed episode_seeds(...)[b] % 2**31 + i
    episodes, max_envs, seed = 10, 4, 3
    expected = []
    for b, batch_seed in enumerate(episode_seeds(seed, 3, stream=0)):
        for i in range(min(max_envs, episodes - b * max_envs)):
            env = RandomLengthEnv()
            env.reset(seed=batch_seed % 2**31 + i)
            expected.append(float(env.length))
    res = evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:RandomLengthEnv"), episodes=episodes,
                   seed=seed, max_envs=max_envs)
    assert res.returns == expected
    assert len(set(expected)) > 1  # episodes of different lengths in one vector env
    assert res.env_steps == sum(expected)  # steps after an episode's end are not counted


def test_summaries_match_a_hand_computation() -> None:
    res = evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:RandomLengthEnv"), episodes=12,
                   seed=5)
    r = sorted(res.returns)
    cut = int(0.25 * len(r))  # 3 from each end
    assert res.mean == pytest.approx(sum(r) / 12)
    assert res.std == pytest.approx(math.sqrt(sum((x - res.mean) ** 2 for x in r) / 12))
    assert res.iqm == pytest.approx(sum(r[cut:-cut]) / (12 - 2 * cut))


@pytest.mark.parametrize(("returns", "mean", "std", "iqm"), [
    ([1.0, 2.0, 3.0, 4.0], 2.5, math.sqrt(1.25), 2.5),
    ([0.0] * 7 + [100.0], 12.5, math.sqrt(7 * 12.5**2 + 87.5**2) / math.sqrt(8), 0.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 3.0, math.sqrt(2.0), 3.0),  # cut int(1.25) = 1 each end
    ([-5.0], -5.0, 0.0, -5.0),
    ([10.0, 0.0, 500.0, 20.0, 30.0, 40.0, 1.0, 2.0], 75.375, None, (2 + 10 + 20 + 30) / 4),
])
def test_eval_result_from_returns(returns: list[float], mean: float, std: float | None,
                                  iqm: float) -> None:
    res = EvalResult.from_returns(returns, None, 17)
    assert res.returns == returns
    assert res.mean == pytest.approx(mean)
    if std is not None:
        assert res.std == pytest.approx(std)
    assert res.iqm == pytest.approx(iqm)
    assert (res.q_mean, res.env_steps) == (None, 17)


def test_same_seed_same_returns_on_cartpole() -> None:
    torch.manual_seed(0)
    net = MLP([4, 8, 2])
    env = EnvSpec("CartPole-v1")

    def run(seed: int, stream: int = 0) -> list[float]:
        return evaluate(net, Head("categorical"), env, episodes=8, seed=seed,
                        stream=stream).returns

    first = run(0)
    assert run(0) == first
    assert len(first) == 8
    assert run(1) != first
    assert run(0, stream=1) != first  # selection episodes differ from final ones


def test_evaluate_fn_takes_any_batched_policy() -> None:
    calls: list[int] = []

    def first_step_only(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        calls.append(len(obs))
        return (obs[:, 0] == 0).astype(np.int64), None  # action 1 only at t = 0

    res = evaluate_fn(first_step_only, EnvSpec(f"{TOY}:FixedLengthEnv", {"length": 3}),
                      episodes=5, seed=0, max_envs=2)
    assert res.returns == [1.0] * 5
    assert calls == [2, 2, 2, 2, 2, 2, 1, 1, 1]  # batches of 2, 2, 1 envs, 3 steps each
    assert res.q_mean is None


def test_time_limit_ends_episodes() -> None:
    env = EnvSpec(f"{TOY}:ForeverEnv", max_episode_steps=6)
    res = evaluate(ALWAYS_1, Head("q"), env, episodes=3, seed=0)
    assert res.returns == [6.0, 6.0, 6.0]


def test_episodes_without_end_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation, "MAX_EVAL_STEPS", 20)
    with pytest.raises(ValueError) as info:
        evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:ForeverEnv"), episodes=2, seed=0)
    assert str(info.value).startswith("env.max_episode_steps: evaluation episodes did not end "
                                      "after 20 steps")


def test_non_finite_return_raises() -> None:
    with pytest.raises(FloatingPointError, match="not finite"):
        evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:NanRewardEnv"), episodes=2, seed=0)


def test_envs_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[tuple[str, int]] = []
    real_close = gym.vector.SyncVectorEnv.close

    def spy(self: gym.vector.SyncVectorEnv, **kwargs: object) -> None:
        # named, so that a stray env of another test closed by the garbage collector is told
        # apart
        closed.append((type(self.envs[0].unwrapped).__name__, self.num_envs))
        real_close(self, **kwargs)

    monkeypatch.setattr(gym.vector.SyncVectorEnv, "close", spy)
    evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:FixedLengthEnv"), episodes=5, seed=0,
             max_envs=2)
    with pytest.raises(FloatingPointError):
        evaluate(ALWAYS_1, Head("q"), EnvSpec(f"{TOY}:NanRewardEnv"), episodes=1, seed=0)
    ours = [c for c in closed if c[0] in ("FixedLengthEnv", "NanRewardEnv")]
    # every batch, the failing one too
    assert ours == [("FixedLengthEnv", 2), ("FixedLengthEnv", 2), ("FixedLengthEnv", 1),
                    ("NanRewardEnv", 1)]
