"""TrialConfig: the one frozen, validated config a trial runs from (unknown keys rejected)."""
from __future__ import annotations

import importlib.util
from typing import Any, Literal, Sequence

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from nas_prune.config.base import Strict, format_error, parse
from nas_prune.pruning import methods
from nas_prune.pruning.base import check_sparsity, prunable_layer_count
from nas_prune.rl.agents import agents
from nas_prune.rl.envs import check_env_id

__all__ = ["TRAINING_SCHEDULES", "AgentConfig", "EnvConfig", "EvalConfig", "FinetuneConfig",
           "PruningConfig", "SnapshotConfig", "TrialConfig", "layer_sparsity", "parse_hidden"]


def parse_hidden(value: str | float | Sequence[int], field: str = "agent.hidden") -> list[int]:
    """Hidden-layer widths from ``"64,64"``, ``64`` or ``[64, 64]``.

    Args:
        value: a comma list, one width, or a list of widths (any other YAML scalar is
            refused).
        field: the config field or flag named in the error.

    Returns:
        The widths, input side first.

    Raises:
        ValueError: not integers, none given, or a width below 1.
    """
    items = list(value) if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        widths = [int(x) for x in items if str(x).strip()]
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a comma list of widths") from None
    if not widths or min(widths) < 1:
        raise ValueError(f"{field}: {value!r} needs one or more positive widths")
    return widths


class EnvConfig(Strict):
    """A gymnasium id (``CartPole-v1``) or entry point (``pkg.module:Class``) and kwargs."""

    id: str = "CartPole-v1"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    max_episode_steps: int | None = Field(default=None, ge=1)

    @field_validator("id")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_env_id(v)


class SnapshotConfig(Strict):
    """Best-snapshot keeping: every ``every_steps`` env steps (0: off) the policy is evaluated
    on ``episodes`` selection episodes (seeds disjoint from the final evaluation's)."""

    every_steps: int = Field(default=0, ge=0)
    episodes: int = Field(default=10, ge=1)


class AgentConfig(Strict):
    """The agent, its dense network and training budget; ``hyper`` is checked by the agent."""

    name: str = "dqn"
    hidden: list[int] | None = None
    activation: str | None = None
    # mlp, cnn, or a cnn preset (minatar, nature); None: chosen from the observation space
    # (TrialConfig: cnn with the minatar torso for an image of rank 3, else mlp)
    network: Literal["mlp", "cnn", "minatar", "nature"] | None = None
    channels: list[int] | None = None  # cnn: output channels per conv layer
    kernels: list[int] | None = None  # cnn: kernel size per conv layer (default 3)
    strides: list[int] | None = None  # cnn: stride per conv layer (default 1)
    train_steps: int = Field(default=50_000, ge=1)
    hyper: dict[str, Any] = Field(default_factory=dict)
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        agents.get(v)
        return v

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else parse_hidden(v)

    @model_validator(mode="after")
    def _resolve(self) -> AgentConfig:
        from nas_prune.rl.networks import activations

        cls = agents.get(self.name)
        hyper = _validate_sub(cls.Hyper, self.hyper, "agent.hyper")
        activation = self.activation or cls.default_activation
        activations.get(activation)
        object.__setattr__(self, "hyper", hyper)
        object.__setattr__(self, "activation", activation)
        self._resolve_network()
        object.__setattr__(self, "hidden", list(self.hidden or cls.default_hidden))
        return self

    def _resolve_network(self, image: bool | None = None) -> None:
        """Presets and defaults of the conv torso; ``image``: whether the env's observation
        is an image (TrialConfig decides a network left unset; None: not known yet)."""
        from nas_prune.rl.cnn import PRESETS

        net = self.network
        if net is None and self.channels is not None:
            net = "cnn"
        elif net is None and image is not None:
            net = "minatar" if image else "mlp"
        if net in PRESETS:
            channels, kernels, strides, hidden = PRESETS[net]
            self.__dict__.update(channels=self.channels or channels,
                                 kernels=self.kernels or kernels,
                                 strides=self.strides or strides,
                                 hidden=self.hidden or hidden)
            net = "cnn"
        if net == "cnn":
            channels = parse_hidden(self.channels or [16], "agent.channels")
            n = len(channels)
            for name, default in (("kernels", 3), ("strides", 1)):
                values = getattr(self, name) or [default] * n
                if len(values) != n or min(values) < 1:
                    raise ValueError(f"agent.{name}: {values} needs {n} positive values, one "
                                     f"per conv layer (agent.channels: {channels})")
                self.__dict__[name] = list(values)
            self.__dict__["channels"] = channels
        elif net == "mlp" and (self.channels or self.kernels or self.strides):
            raise ValueError("agent.channels: channels, kernels and strides are for network "
                             "cnn; allowed networks: mlp, cnn, minatar, nature")
        self.__dict__["network"] = net

    @property
    def convs(self) -> int:
        """How many conv layers the network has (0: an MLP)."""
        return len(self.channels or []) if self.network == "cnn" else 0


class DistillSettings(Strict):
    """Distillation's optimiser settings (fine-tune mode ``distill``); a sweep sets them
    once for all its trials."""

    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=256, ge=1)


class FinetuneConfig(DistillSettings):
    """mode ``rl`` continues the agent's own training; ``distill`` imitates the dense teacher."""

    mode: Literal["rl", "distill"] = "rl"
    steps: int = Field(default=10_000, ge=0)


# schedules that train the agent from scratch while pruning (no dense agent, no teacher)
TRAINING_SCHEDULES = ("during", "sparse")


class PruningConfig(Strict):
    """What to prune, how far, on which schedule, and how to recover.

    Post-training schedules (oneshot, gradual, iterative) prune the trained dense agent;
    ``during`` and ``sparse`` train from scratch (``nas_prune.pruning.training_schedule``).
    """

    method: str = "magnitude"
    sparsity: float | list[float] = 0.0
    schedule: Literal["oneshot", "gradual", "iterative", "during", "sparse"] = "oneshot"
    steps: int = Field(default=5, ge=1)  # pruning steps of gradual / iterative / during
    tolerance: float = Field(default=0.95, gt=0, le=1)  # iterative: keep >= tol * dense
    # during: prune from start to end of training (fractions; Obando-Ceron et al. 2024)
    start: float = Field(default=0.2, ge=0, lt=1)
    end: float = Field(default=0.8, gt=0, le=1)
    # how a single sparsity value is spread over the weight layers (unstructured methods)
    distribution: Literal["uniform", "erk"] = "uniform"
    method_params: dict[str, Any] = Field(default_factory=dict)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)

    @field_validator("method")
    @classmethod
    def _known(cls, v: str) -> str:
        methods.get(v)
        return v

    @field_validator("sparsity")
    @classmethod
    def _fraction(cls, v: float | list[float]) -> float | list[float]:
        for s in v if isinstance(v, list) else [v]:
            check_sparsity(s)
        return v

    @model_validator(mode="after")
    def _resolve(self) -> PruningConfig:
        params = _validate_sub(methods.get(self.method).Params, self.method_params,
                               "pruning.method_params")
        object.__setattr__(self, "method_params", params)
        _check_family(self)
        return self


def _check_family(cfg: PruningConfig) -> None:
    from nas_prune.pruning.sparse_training import DynamicSparsePruning

    method = methods.get(cfg.method)
    if issubclass(method, DynamicSparsePruning) and cfg.schedule != "sparse":
        raise ValueError(f"pruning.schedule: method {cfg.method!r} trains a sparse network "
                         f"from scratch; allowed: sparse")
    if cfg.schedule in TRAINING_SCHEDULES and cfg.finetune.mode != "rl":
        raise ValueError(f"pruning.finetune.mode: schedule {cfg.schedule!r} trains no dense "
                         f"teacher to distill from; allowed: rl")
    if cfg.start >= cfg.end:
        raise ValueError(f"pruning.start: {cfg.start} must be below pruning.end {cfg.end}")
    if cfg.distribution == "erk" and (method.structured or isinstance(cfg.sparsity, list)):
        raise ValueError("pruning.distribution: erk spreads one sparsity value over the "
                         "weight layers of an unstructured method; allowed here: uniform")


class EvalConfig(Strict):
    """Final evaluation: ``episodes`` greedy episodes; ``seed`` None means the trial seed.

    ``noise_std`` > 0: the policy is also evaluated with Gaussian observation noise of that
    many per-dimension standard deviations (of the states the dense policy visits),
    giving ``return_noise``. ``latency``: measure the deployed policy's batch-1 latency
    (``latency_us``; a sweep turns it on when latency_us is an objective).
    ``deploy_int8``: ``bytes`` is the size of the int8 ONNX file (post-training static
    quantization calibrated on visited states; needs the ``[deploy]`` extra) instead of the
    fp32 safetensors file. Off values (0, false) keep older studies' fingerprints."""

    episodes: int = Field(default=100, ge=1)
    seed: int | None = None
    noise_std: float = Field(default=0.0, ge=0.0)
    latency: bool = False
    deploy_int8: bool = False

    @field_validator("deploy_int8")
    @classmethod
    def _int8_needs_onnxruntime(cls, v: bool) -> bool:
        # refused when the config loads, not after a trial's whole training
        if v and any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")):
            raise ValueError('eval.deploy_int8: needs onnx and onnxruntime; install them '
                             'with pip install -e ".[deploy]"')
        return v


class TrialConfig(Strict):
    """One trial: train dense (or load it) -> prune per schedule -> fine-tune -> evaluate."""

    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    pruning: PruningConfig = Field(default_factory=PruningConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)
    # where CNNs train (nas_prune.util.device): auto is CUDA when torch finds it, else the
    # CPU; MLPs always train on the CPU, acting and evaluation stay there
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dense_checkpoint: str | None = None

    @model_validator(mode="after")
    def _plan_fits(self) -> TrialConfig:
        if self.agent.network is None:
            from nas_prune.rl.envs import observation_shape

            image = len(observation_shape(self.env.id, self.env.kwargs)) == 3
            self.agent._resolve_network(image)
        layer_sparsity(self)
        return self


def with_picks(template: TrialConfig, *, hidden: list[int], pruning: dict[str, Any],
               channels: list[int] | None = None) -> TrialConfig:
    """``template`` with a width (and a CNN's ``channels``) and a pruning chosen (by a
    search space or a baseline):
    the one place where a sweep's fixed fields and one trial's choices become a
    TrialConfig. Fine-tune keys in ``pruning`` (mode, steps) go on top of the template's
    distillation settings.

    Raises:
        ConfigError: the result does not validate (one line naming the field).
    """
    data = template.model_dump()
    data["agent"]["hidden"] = list(hidden)
    if channels is not None:  # a CNN's conv widths; kernels / strides of another depth reset
        agent = data["agent"]
        for key in ("kernels", "strides"):
            if len(agent[key] or []) != len(channels):
                agent[key] = None
        agent["channels"] = list(channels)
    finetune = {**data["pruning"]["finetune"], **pruning.get("finetune", {})}
    data["pruning"] = {**data["pruning"], "method_params": {}, **pruning, "finetune": finetune}
    return parse(TrialConfig, data)  # type: ignore[no-any-return]


def layer_sparsity(cfg: TrialConfig) -> list[float]:
    """The per-layer plan: a scalar broadcast to every prunable layer, or the list given."""
    method = methods.get(cfg.pruning.method)
    hidden = cfg.agent.hidden or []
    n = prunable_layer_count(hidden, method.structured, convs=cfg.agent.convs)
    s = cfg.pruning.sparsity
    if not isinstance(s, list):
        return [float(s)] * n
    if len(s) != n:
        convs = f"channels {cfg.agent.channels} + " if cfg.agent.convs else ""
        raise ValueError(
            f"pruning.sparsity: {len(s)} values given; method {cfg.pruning.method!r} on "
            f"{convs}hidden {hidden} has {n} prunable layers")
    return [float(x) for x in s]


def _validate_sub(model: type[BaseModel], data: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        raise ValueError(format_error(exc, where)) from None
