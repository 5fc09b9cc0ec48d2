"""nas_prune.rl.envs: ids and entry points, one-line errors, space checks, exact env-step
counting, seeding."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from nas_prune.rl import envs
from nas_prune.rl.envs import (
    act_dim,
    check_env_id,
    check_spaces,
    count_env_steps,
    env_steps_taken,
    episode_seeds,
    make_env,
    make_vec_env,
    obs_dim,
)

TOY = "tests.rl.toy_envs"
CARTPOLE_CLASS = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


# --- ids and entry points -----------------------------------------------------------------

@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", CARTPOLE_CLASS,
                                    f"{TOY}:FixedLengthEnv"])
def test_check_env_id_accepts(env_id: str) -> None:
    assert check_env_id(env_id) == env_id


@pytest.mark.parametrize(("env_id", "start"), [
    ("NoSuchEnv-v0", "env.id: unknown gymnasium id 'NoSuchEnv-v0' ("),
    ("CartPole-v99", "env.id: unknown gymnasium id 'CartPole-v99' ("),
    ("", "env.id: unknown gymnasium id '' ("),
    ("no_such_module_xyz:Env", "env.id: cannot import module 'no_such_module_xyz' ("),
    ("os:system", "env.id: os:system is not a gymnasium.Env class"),
    (f"{TOY}:NotAnEnv", f"env.id: {TOY}:NotAnEnv is not a gymnasium.Env class"),
    (f"{TOY}:Missing", f"env.id: {TOY}:Missing is not a gymnasium.Env class"),
    (f"{TOY}:", f"env.id: {TOY}: is not a gymnasium.Env class"),
])
def test_bad_id_is_a_one_line_value_error_naming_env_id(env_id: str, start: str) -> None:
    with pytest.raises(ValueError) as info:
        check_env_id(env_id)
    assert str(info.value).startswith(start)
    assert "\n" not in str(info.value)
    # making the env reports gymnasium's own message: still one line naming env.id and the id
    for make in (make_env, lambda i: make_vec_env(i, 2)):
        with pytest.raises(ValueError) as info:
            make(env_id)
        assert str(info.value).startswith("env.id: ")
        assert env_id.split(":")[0] in str(info.value)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("env_id", ["CartPole-v1", CARTPOLE_CLASS])
def test_id_and_entry_point_make_the_same_env(env_id: str) -> None:
    env = make_env(env_id)
    try:
        assert env.observation_space.shape == (4,)
        assert env.action_space == gym.spaces.Discrete(2)
        obs, _ = env.reset(seed=5)
        ref = gym.make("CartPole-v1")
        ref_obs, _ = ref.reset(seed=5)
        np.testing.assert_array_equal(obs, ref_obs)
        ref.close()
    finally:
        env.close()


def test_entry_point_kwargs_reach_the_class() -> None:
    env = make_env(f"{TOY}:FixedLengthEnv", {"length": 2})
    env.reset(seed=0)
    assert [env.step(1)[2] for _ in range(2)] == [False, True]
    env.close()


@pytest.mark.parametrize("env_id", ["CartPole-v1", f"{TOY}:FixedLengthEnv"])
def test_bad_kwargs_name_env_kwargs(env_id: str) -> None:
    with pytest.raises(ValueError) as info:
        make_env(env_id, {"bogus": 1})
    assert str(info.value).startswith("env.kwargs: ")
    assert "bogus" in str(info.value)


def test_kwargs_dict_is_not_mutated() -> None:
    kwargs = {"length": 3}
    make_vec_env(f"{TOY}:FixedLengthEnv", 2, kwargs, max_episode_steps=2).close()
    make_vec_env("CartPole-v1", 2, {}, max_episode_steps=2).close()
    assert kwargs == {"length": 3}


@pytest.mark.parametrize(("env_id", "limit"), [
    (f"{TOY}:ForeverEnv", 3), ("CartPole-v1", 5), (CARTPOLE_CLASS, 4)])
def test_max_episode_steps_truncates(env_id: str, limit: int) -> None:
    env = make_env(env_id, max_episode_steps=limit)
    env.reset(seed=0)
    flags = [env.step(t % 2)[2:4] for t in range(limit)]  # alternate: CartPole stays up
    env.close()
    assert flags[:-1] == [(False, False)] * (limit - 1)
    assert flags[-1] == (False, True)


# --- env packages: module:env-id and ids registered on request ---------------------------

def test_module_colon_env_id_imports_the_package_first() -> None:
    env_id = "tests.rl.toy_plugin:ToyPlugin/Fixed-v0"
    assert check_env_id(env_id) == env_id
    env = make_env(env_id)
    env.reset(seed=0)
    assert [env.step(1)[2] for _ in range(4)] == [False, False, False, True]
    env.close()
    make_vec_env(env_id, 2).close()


def test_namespace_of_a_known_package_registers_without_user_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(envs.PLUGINS, "ToyLazy",
                        ("tests.rl.toy_plugin", "register_lazy", "games"))
    monkeypatch.delitem(gym.registry, "ToyLazy/Fixed-v0", raising=False)
    assert check_env_id("ToyLazy/Fixed-v0") == "ToyLazy/Fixed-v0"
    make_env("ToyLazy/Fixed-v0").close()


def test_missing_env_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(envs.PLUGINS, "Nope", ("no_such_env_pkg_xyz", "register", "games"))
    with pytest.raises(ValueError) as info:
        check_env_id("Nope/Game-v0")
    msg = str(info.value)
    assert msg.startswith("env.id: cannot import module 'no_such_env_pkg_xyz' (")
    assert msg.endswith("install it with pip install -e '.[games]'")
    assert "\n" not in msg


@pytest.mark.parametrize("env_id", ["MinAtar/Breakout-v1", "minatar:MinAtar/Breakout-v1"])
def test_minatar_ids_work_without_registration_code(env_id: str) -> None:
    pytest.importorskip("minatar")
    env = make_env(env_id, max_episode_steps=7)
    obs, _ = env.reset(seed=3)
    # (10, 10, 4) bool, channels last, flattened to 400 floats in {0, 1}
    assert obs.shape == (400,) and obs.dtype == np.float32
    assert set(np.unique(obs)) <= {0.0, 1.0} and obs.sum() > 0
    assert env.action_space == gym.spaces.Discrete(3)  # the minimal action set
    steps = 0
    while True:
        steps += 1
        if any(env.step(0)[2:4]):
            break
    assert steps <= 7
    env.close()


# --- observations of rank >= 2 are flattened for an MLP -----------------------------------

@pytest.mark.parametrize(("name", "size", "first", "last"), [
    ("TableObsEnv", 12, 0.0, 2.3),  # (3, 4) float: t / 10 + i + j / 10 at t = 0
    ("Uint8ImageEnv", 90, 0.0, 0.0),  # (5, 6, 3) uint8 scaled to [0, 1]
    ("BoolImageEnv", 32, 0.0, 0.0),  # (4, 4, 2) bool
])
def test_rank_2_and_3_boxes_become_flat_float32(name: str, size: int, first: float,
                                                last: float) -> None:
    for env in (make_env(f"{TOY}:{name}"),):
        assert env.observation_space.shape == (size,)
        assert env.observation_space.dtype == np.float32
        obs, _ = env.reset(seed=0)
        assert obs.shape == (size,) and obs.dtype == np.float32
        assert obs[0] == pytest.approx(first) and obs[-1] == pytest.approx(last)
        assert env.observation_space.contains(obs)
        env.close()
    vec = make_vec_env(f"{TOY}:{name}", 3)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, size) and obs.dtype == np.float32
    vec.close()


def test_uint8_images_are_scaled_and_bool_images_are_zero_one() -> None:
    env = make_env(f"{TOY}:Uint8ImageEnv")
    env.reset(seed=0)
    obs = env.step(1)[0]
    np.testing.assert_allclose(obs, np.full(90, 51 / 255, dtype=np.float32))
    assert env.observation_space.high.max() == pytest.approx(1.0)
    env.close()
    env = make_env(f"{TOY}:BoolImageEnv")
    env.reset(seed=0)
    obs = env.step(1)[0]
    assert obs[0] == 1.0 and obs[1:].sum() == 0.0
    env.close()


# --- spaces -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "needle"), [
    ("DictObsEnv", "env.id: observation space Dict("),
    ("MultiDiscreteEnv", "env.id: action space MultiDiscrete([2 2]) is not supported; need "
                         "Discrete or flat Box"),
])
def test_unsupported_spaces_are_refused(name: str, needle: str) -> None:
    for make in (make_env, lambda i: make_vec_env(i, 2)):
        with pytest.raises(ValueError) as info:
            make(f"{TOY}:{name}")
        assert str(info.value).startswith(needle)


@pytest.mark.parametrize(("obs", "act", "ok"), [
    (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4), True),
    (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)), True),
    (gym.spaces.Box(-1, 1, (3, 1)), gym.spaces.Discrete(4), False),  # flattened before
    (gym.spaces.Discrete(5), gym.spaces.Discrete(4), False),
    (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2, 2)), False),
    (gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiBinary(2), False),
])
def test_check_spaces(obs: gym.Space, act: gym.Space, ok: bool) -> None:
    if ok:
        check_spaces(obs, act)
    else:
        with pytest.raises(ValueError, match=r"^env\.id: (observation|action) space "):
            check_spaces(obs, act)


@pytest.mark.parametrize(("space", "n_obs", "n_act"), [
    (gym.spaces.Box(-1, 1, (6,)), 6, 6),
    (gym.spaces.Discrete(3), None, 3),
    (gym.spaces.Box(-1, 1, (1,)), 1, 1),
])
def test_obs_and_act_dims(space: gym.Space, n_obs: int | None, n_act: int) -> None:
    if n_obs is not None:
        assert obs_dim(space) == n_obs
    assert act_dim(space) == n_act


def test_dims_of_a_shapeless_space() -> None:
    class Shapeless(gym.Space):  # type: ignore[type-arg]
        pass

    with pytest.raises(ValueError, match="spaces must be Box or Discrete"):
        obs_dim(Shapeless())


# --- env-step counting --------------------------------------------------------------------

def _steps(env: Any, n: int, action: Any) -> int:
    before = env_steps_taken()
    for _ in range(n):
        env.step(action)
    return env_steps_taken() - before


@pytest.mark.parametrize("env_id", ["CartPole-v1", CARTPOLE_CLASS, f"{TOY}:ForeverEnv"])
def test_make_env_counts_one_per_step(env_id: str) -> None:
    env = make_env(env_id)
    env.reset(seed=0)
    before = env_steps_taken()
    env.reset(seed=1)  # resets are not steps
    assert env_steps_taken() == before
    assert _steps(env, 7, 0) == 7
    env.close()


@pytest.mark.parametrize("env_id", ["CartPole-v1", f"{TOY}:ForeverEnv"])  # native / sync vector
@pytest.mark.parametrize("num_envs", [1, 3])
def test_make_vec_env_counts_one_per_sub_env(env_id: str, num_envs: int) -> None:
    vec = make_vec_env(env_id, num_envs)
    vec.reset(seed=0)
    assert _steps(vec, 5, np.zeros(num_envs, dtype=np.int64)) == 5 * num_envs
    vec.close()


def test_uncounted_vec_env_and_manual_count() -> None:
    vec = make_vec_env("CartPole-v1", 4, counted=False)
    vec.reset(seed=0)
    assert _steps(vec, 6, np.zeros(4, dtype=np.int64)) == 0
    vec.close()
    before = env_steps_taken()
    count_env_steps(11)
    count_env_steps(0)
    assert env_steps_taken() - before == 11


def test_steps_across_episode_ends_still_count() -> None:
    env = make_env(f"{TOY}:FixedLengthEnv", {"length": 2})
    before = env_steps_taken()
    for _ in range(3):  # three 2-step episodes
        env.reset()
        env.step(1)
        env.step(1)
    assert env_steps_taken() - before == 6
    env.close()


# --- seeding ------------------------------------------------------------------------------

def _trajectory(env_id: str, seed: int) -> np.ndarray:
    env = make_env(env_id)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for t in range(5):
        obs, *_ = env.step(t % 2)
        out.append(obs)
    env.close()
    return np.stack(out)


@pytest.mark.parametrize("env_id", ["CartPole-v1", CARTPOLE_CLASS])
def test_reset_seed_reproduces_the_episode(env_id: str) -> None:
    np.testing.assert_array_equal(_trajectory(env_id, 3), _trajectory(env_id, 3))
    assert not np.array_equal(_trajectory(env_id, 3), _trajectory(env_id, 4))


@pytest.mark.parametrize("env_id", ["CartPole-v1", f"{TOY}:RandomLengthEnv"])
def test_vec_reset_seed_reproduces_every_sub_env(env_id: str) -> None:
    def first_obs(seed: int) -> np.ndarray:
        vec = make_vec_env(env_id, 3, counted=False)
        obs, _ = vec.reset(seed=seed)
        for _ in range(4):
            obs, *_ = vec.step(np.ones(3, dtype=np.int64))
        vec.close()
        return np.asarray(obs)

    np.testing.assert_array_equal(first_obs(9), first_obs(9))


def test_episode_seeds_are_reproducible_and_streams_disjoint() -> None:
    a = episode_seeds(0, 50)
    assert a == episode_seeds(0, 50, stream=0)
    assert len(a) == len(set(a)) == 50
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in a)
    assert not set(a) & set(episode_seeds(0, 50, stream=1))  # final vs selection seeds
    assert not set(a) & set(episode_seeds(1, 50))
    assert episode_seeds(0, 0) == []


def test_atari_time_limit_counts_agent_steps() -> None:
    """env.max_episode_steps counts agent steps (4 frames each) for ALE ids, as for any env."""
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    env = make_env("ALE/Breakout-v5", max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(5)]
    env.close()
    assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])
