"""Env creation (gymnasium ids, ``module:env-id`` and ``module:Class`` entry points, env
packages that register on request), observation flattening, space checks, seeding."""
from __future__ import annotations

import functools
import importlib
import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.wrappers import TimeLimit

__all__ = ["PLUGINS", "PREPROCESS", "act_dim", "check_env_id", "check_spaces", "count_env_steps",
           "env_steps_taken", "episode_seeds", "flat_observations", "make_env", "make_vec_env",
           "obs_dim", "observation_levels", "observation_shape"]

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


# Env packages whose ids exist only once a function of theirs runs (gymnasium 1.x loads no
# plugins): the id's namespace -> (module, its registration function, the extra to install).
PLUGINS: dict[str, tuple[str, str | None, str]] = {
    "MinAtar": ("minatar.gym", "register_envs", "games"),
    "ALE": ("ale_py", None, "games"),  # ale_py registers its ids on import
}


def _atari(gym_id: str, kwargs: dict[str, Any], max_episode_steps: int | None) -> gym.Env:
    """An ALE game with the standard DQN preprocessing (Mnih et al. 2015, Machado et al.
    2018): up to 30 no-op starts, 4 frames skipped with max-pooling, 84 x 84 grayscale,
    4 frames stacked (channels first). Rewards are not clipped: returns stay the game's
    score. ``env.kwargs`` go to the ALE env (``repeat_action_probability``, ...)."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    env = gym.make(gym_id, **{"frameskip": 1, **kwargs})
    try:
        env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84,
                                 grayscale_obs=True)
    except gym.error.DependencyNotInstalled:
        env.close()
        raise ValueError(f"env.id: {gym_id} needs opencv; install it with pip install -e "
                         f"'.[games]'") from None
    env = FrameStackObservation(env, 4)
    # env.max_episode_steps counts agent steps (4 frames each), as for every other env
    return env if max_episode_steps is None else TimeLimit(env, max_episode_steps)


# How an id of these namespaces is made, when not plainly: Atari's preprocessing.
PREPROCESS: dict[str, Callable[[str, dict[str, Any], int | None], gym.Env]] = {
    "ALE": _atari}


def _entry_class(module_name: str, cls_name: str) -> Callable[..., gym.Env]:
    module = _import(module_name)
    cls = getattr(module, cls_name, None)
    # only gymnasium Env classes: an entry point must not name an arbitrary callable
    if not (isinstance(cls, type) and issubclass(cls, gym.Env)):
        raise ValueError(f"env.id: {module_name}:{cls_name} is not a gymnasium.Env class")
    return cls  # type: ignore[no-any-return]


def _import(module_name: str, extra: str | None = None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with pip install -e '.[{extra}]'" if extra else ""
        raise ValueError(f"env.id: cannot import module {module_name!r} ({exc}){hint}") from None


def _registered(gym_id: str) -> str:
    """``gym_id`` once it is in gymnasium's registry, running its package's registration
    (``PLUGINS``) first when its namespace needs one."""
    namespace = gym_id.split("/", 1)[0] if "/" in gym_id else None
    if gym_id not in gym.registry and namespace in PLUGINS:
        module_name, register, extra = PLUGINS[namespace]
        module = _import(module_name, extra)
        if register is not None:
            getattr(module, register)()
    try:
        gym.spec(gym_id)
    except Exception as exc:  # gymnasium raises several error types here
        raise ValueError(f"env.id: unknown gymnasium id {gym_id!r} ({exc})") from None
    return gym_id


def _resolve(env_id: str) -> str | Callable[..., gym.Env]:
    """What to make for an env id: a registered gymnasium id (``CartPole-v1``,
    ``MinAtar/Breakout-v1``), gymnasium's ``module:env-id`` form (the module is imported
    first, so a package that registers its ids on import needs no code from the user), or
    a ``package.module:ClassName`` entry point (a gymnasium.Env class)."""
    if ":" not in env_id:
        return _registered(env_id)
    module_name, _, rest = env_id.partition(":")
    if rest.isidentifier() or not rest:
        return _entry_class(module_name, rest)
    _import(module_name)
    return _registered(rest)


def check_env_id(env_id: str) -> str:
    """Raise ValueError unless ``env_id`` is a registered id (after its package's
    registration), a ``module:env-id`` or an importable ``module:Class`` entry point."""
    _resolve(env_id)
    return env_id


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, *,
             max_episode_steps: int | None = None) -> gym.Env:
    """Create one env from a gymnasium id or a ``package.module:ClassName`` entry point."""
    env = _make_uncounted(env_id, kwargs, max_episode_steps)
    return _checked(_Counted(env), env.observation_space, env.action_space)


def _make_uncounted(env_id: str, kwargs: dict[str, Any] | None,
                    max_episode_steps: int | None) -> gym.Env:
    return flat_observations(_make_raw(env_id, kwargs, max_episode_steps))


@functools.lru_cache(maxsize=64)
def _raw_shape(env_id: str, kwargs_json: str) -> tuple[int, ...]:
    env = _make_raw(env_id, json.loads(kwargs_json), None)
    try:
        space = env.observation_space
        return tuple(int(x) for x in space.shape or ())
    finally:
        env.close()


def observation_shape(env_id: str, kwargs: dict[str, Any] | None = None) -> tuple[int, ...]:
    """The env's observation shape before ``flat_observations`` (an image stays (H, W, C)):
    what chooses and builds a CNN. Cached per id and kwargs (the env is made once)."""
    return _raw_shape(env_id, json.dumps(kwargs or {}, sort_keys=True, default=str))


def _make_raw(env_id: str, kwargs: dict[str, Any] | None,
              max_episode_steps: int | None) -> gym.Env:
    kwargs = dict(kwargs or {})
    with _env_errors(env_id):
        target = _resolve(env_id)
        if isinstance(target, str) and target.split("/", 1)[0] in PREPROCESS:
            env = PREPROCESS[target.split("/", 1)[0]](target, kwargs, max_episode_steps)
        elif isinstance(target, str):
            env = gym.make(target, max_episode_steps=max_episode_steps, **kwargs)
        else:
            env = target(**kwargs)
            if max_episode_steps is not None:
                env = TimeLimit(env, max_episode_steps)
    return env


def make_vec_env(env_id: str, num_envs: int, kwargs: dict[str, Any] | None = None, *,
                 max_episode_steps: int | None = None, counted: bool = True) -> VectorEnv:
    """A vector env: gymnasium's native vector implementation where the id has one.

    ``counted=False``: its steps are not added to ``env_steps_taken`` (the caller counts
    what it uses, e.g. evaluation skips sub-envs whose episode is over).
    """
    kwargs = dict(kwargs or {})
    with _env_errors(env_id):
        target = _resolve(env_id)
        if (isinstance(target, str) and gym.spec(target).vector_entry_point is not None
                and target.split("/", 1)[0] not in PREPROCESS):
            if max_episode_steps is not None:
                kwargs["max_episode_steps"] = max_episode_steps
            vec = gym.make_vec(target, num_envs=num_envs,
                               vectorization_mode="vector_entry_point", **kwargs)
        else:
            fns = [lambda: _make_uncounted(env_id, kwargs, max_episode_steps)] * num_envs
            vec = SyncVectorEnv(fns)
    wrapped = _CountedVec(vec) if counted else vec
    return _checked(wrapped, vec.single_observation_space, vec.single_action_space)


class _FlatFloat(gym.ObservationWrapper):  # type: ignore[type-arg]
    """A Box observation of rank >= 2 (an image, a table) as a flat float32 vector;
    uint8 values scaled to [0, 1], bool to {0, 1}."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        self._scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        # integer images: every value is k * scale for an integer k in [0, 255]
        self.levels = self._scale if space.dtype in (np.uint8, np.bool_) else None
        low = np.asarray(space.low, dtype=np.float32).reshape(-1) * self._scale
        high = np.asarray(space.high, dtype=np.float32).reshape(-1) * self._scale
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32).reshape(-1) * np.float32(self._scale)


def observation_levels(env: gym.Env) -> float | None:
    """The step between ``env``'s flat observation values when ``flat_observations``
    flattened an integer image (uint8: 1/255, bool: 1): its observations are then exactly
    ``k * step`` for integers k in [0, 255] (a replay buffer stores k in a byte); else
    None."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, _FlatFloat):
            return env.levels
        env = env.env
    return None


def flat_observations(env: gym.Env) -> gym.Env:
    """``env`` with its observations flat for an MLP: a rank-1 Box stays as it is, any
    other Box (an image of rank 3, a (5, 5) table) is flattened (``_FlatFloat``)."""
    space = env.observation_space
    if isinstance(space, gym.spaces.Box) and len(space.shape) >= 2:
        return _FlatFloat(env)
    return env


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
    """Raise ValueError naming the space unless obs is a flat Box (``flat_observations``
    flattens any other Box first) and act Discrete or a flat Box."""
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
        raise ValueError(f"env.id: observation space {obs} is not supported; need a Box")
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
