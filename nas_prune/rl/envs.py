"""Env creation (gymnasium ids and ``module:Class`` entry points), space checks, seeding."""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.wrappers import TimeLimit

__all__ = ["act_dim", "check_env_id", "check_spaces", "count_env_steps", "env_steps_taken",
           "episode_seeds", "make_env", "make_vec_env", "obs_dim"]

_taken = [0]  # env steps taken in this process, by every env made here


def env_steps_taken() -> int:
    """Env steps taken so far in this process by envs from ``make_env`` / ``make_vec_env``
    (a vector step counts one per sub-env) and by evaluations (steps of unfinished
    episodes): what a trial costs, measured, not estimated."""
    return _taken[0]


def count_env_steps(n: int) -> None:
    """Add ``n`` steps taken by an env made with ``counted=False``."""
    _taken[0] += n


class _Counted(gym.Wrapper):  # type: ignore[type-arg]
    def step(self, action: Any) -> Any:
        _taken[0] += 1
        return self.env.step(action)


class _CountedVec(VectorWrapper):
    def step(self, actions: Any) -> Any:
        _taken[0] += self.num_envs
        return self.env.step(actions)


def _entry_class(env_id: str) -> Callable[..., gym.Env]:
    module_name, _, cls_name = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"env.id: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, cls_name, None)
    # only gymnasium Env classes: an entry point must not name an arbitrary callable
    if not (isinstance(cls, type) and issubclass(cls, gym.Env)):
        raise ValueError(f"env.id: {module_name}:{cls_name} is not a gymnasium.Env class")
    return cls  # type: ignore[no-any-return]


def check_env_id(env_id: str) -> str:
    """Raise ValueError unless ``env_id`` is a registered id or an importable entry point."""
    if ":" in env_id:
        _entry_class(env_id)
        return env_id
    try:
        gym.spec(env_id)
    except Exception as exc:  # gymnasium raises several error types here
        raise ValueError(f"env.id: unknown gymnasium id {env_id!r} ({exc})") from None
    return env_id


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, *,
             max_episode_steps: int | None = None) -> gym.Env:
    """Create one env from a gymnasium id or a ``package.module:ClassName`` entry point."""
    env = _make_uncounted(env_id, kwargs, max_episode_steps)
    return _checked(_Counted(env), env.observation_space, env.action_space)


def _make_uncounted(env_id: str, kwargs: dict[str, Any] | None,
                    max_episode_steps: int | None) -> gym.Env:
    kwargs = dict(kwargs or {})
    with _env_errors(env_id):
        if ":" in env_id:
            env = _entry_class(env_id)(**kwargs)
            if max_episode_steps is not None:
                env = TimeLimit(env, max_episode_steps)
            return env
        return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)


def make_vec_env(env_id: str, num_envs: int, kwargs: dict[str, Any] | None = None, *,
                 max_episode_steps: int | None = None, counted: bool = True) -> VectorEnv:
    """A vector env: gymnasium's native vector implementation where the id has one.

    ``counted=False``: its steps are not added to ``env_steps_taken`` (the caller counts
    what it uses, e.g. evaluation skips sub-envs whose episode is over).
    """
    kwargs = dict(kwargs or {})
    with _env_errors(env_id):
        if ":" not in env_id and gym.spec(env_id).vector_entry_point is not None:
            if max_episode_steps is not None:
                kwargs["max_episode_steps"] = max_episode_steps
            vec = gym.make_vec(env_id, num_envs=num_envs,
                               vectorization_mode="vector_entry_point", **kwargs)
        else:
            fns = [lambda: _make_uncounted(env_id, kwargs, max_episode_steps)] * num_envs
            vec = SyncVectorEnv(fns)
    wrapped = _CountedVec(vec) if counted else vec
    return _checked(wrapped, vec.single_observation_space, vec.single_action_space)


@contextmanager
def _env_errors(env_id: str) -> Iterator[None]:
    # bad kwargs and gymnasium's own errors (e.g. DependencyNotInstalled) become one line
    try:
        yield
    except TypeError as exc:
        raise ValueError(f"env.kwargs: {exc}") from None
    except gym.error.Error as exc:
        raise ValueError(f"env.id: {env_id}: {exc}") from None


E = TypeVar("E", gym.Env, VectorEnv)


def _checked(env: E, obs: gym.Space, act: gym.Space) -> E:
    try:
        check_spaces(obs, act)
    except ValueError:
        env.close()
        raise
    return env


def check_spaces(obs: gym.Space, act: gym.Space) -> None:
    """Raise ValueError naming the space unless obs is a flat Box and act Discrete/flat Box."""
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
        raise ValueError(f"env.id: observation space {obs} is not supported; need a flat Box")
    flat_box = isinstance(act, gym.spaces.Box) and len(act.shape) == 1
    if not (isinstance(act, gym.spaces.Discrete) or flat_box):
        raise ValueError(f"env.id: action space {act} is not supported; need Discrete or flat Box")


def obs_dim(space: gym.Space) -> int:
    """Size of a flat Box observation."""
    return int(np.prod(_shape(space)))


def act_dim(space: gym.Space) -> int:
    """Outputs a policy needs: one per discrete action, or one mean per Box dimension."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    return int(np.prod(_shape(space)))


def _shape(space: gym.Space) -> tuple[int, ...]:
    if space.shape is None:
        raise ValueError(f"env: spaces must be Box or Discrete, got {space}")
    return space.shape


def episode_seeds(seed: int, n: int, stream: int = 0) -> list[int]:
    """``n`` reset seeds for evaluation stream ``stream`` (0: final, 1: snapshot selection)."""
    return [int(s) for s in np.random.SeedSequence([seed, stream]).generate_state(n)]
