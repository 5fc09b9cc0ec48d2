"""Search-space schema and ``suggest``: one define-by-run function that turns an Optuna
trial (used by both the Optuna and the Ray Tune backends) into a TrialConfig."""
from __future__ import annotations

from typing import Any, Protocol, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from nas_prune.config.base import Strict
from nas_prune.config.trial import TRAINING_SCHEDULES, TrialConfig, parse_hidden, with_picks
from nas_prune.pruning import methods
from nas_prune.pruning.base import check_sparsity, prunable_layer_count

__all__ = ["Choice", "Dim", "Range", "Scalar", "SearchSpace", "SparsityDim",
           "Suggester", "channel_choices", "check_method_params", "hidden_choices",
           "suggest"]

Scalar = Union[bool, int, float, str]


class Suggester(Protocol):
    """The part of ``optuna.Trial`` that ``suggest`` uses."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


class Choice(Strict):
    """Pick one of ``choices``."""

    choices: list[Scalar] = Field(min_length=1)


class Range(Strict):
    """A number in [low, high]; ``int`` picks integers, ``log`` samples on a log scale."""

    low: float
    high: float
    log: bool = False
    int: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log ranges need low > 0")
        return self


Dim = Union[Choice, Range, Scalar]


class SparsityDim(Strict):
    """Per-layer sparsity in [low, high] (high < 1). ``per_layer`` false: one shared value.
    ``log_density`` samples the kept fraction (1 - s) log-uniformly, so 99% and 90%
    sparsity get as much attention as 50% and 0% (parameter counts span decades)."""

    low: float = 0.0
    high: float = 0.95
    per_layer: bool = True
    log_density: bool = True

    @field_validator("low", "high")
    @classmethod
    def _fraction(cls, v: float, info: ValidationInfo) -> float:
        return check_sparsity(v, f"sparsity.{info.field_name}")

    @model_validator(mode="after")
    def _ordered(self) -> SparsityDim:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        return self


class SearchSpace(Strict):
    """The dimensions a sweep searches; a plain value fixes a dimension.

    A space may mix post-training schedules (oneshot, gradual, iterative) with training
    ones (during, sparse). A dimension is asked only where it applies: ``sparse_method``
    and ``distribution`` for ``sparse`` (its method replaces ``method``),
    ``pruning_steps`` for all but ``sparse``, ``finetune_mode`` for the
    post-training schedules (during / sparse fine-tune with RL).
    """

    method: Dim = Choice(choices=["magnitude"])
    # None (unset, so studies fingerprinted before these existed resume): random, uniform
    sparse_method: Dim | None = None
    distribution: Dim | None = None
    hidden: Choice | str = "64,64"
    # a CNN's conv channels, searched as hidden widths are ("16" or {choices: ["8", "16,16"]});
    # None: the sweep's agent.channels
    channels: Choice | str | None = None
    sparsity: SparsityDim = Field(default_factory=SparsityDim)
    schedule: Dim = "oneshot"
    pruning_steps: Dim = 5
    finetune_mode: Dim = "rl"
    finetune_steps: Dim = 10_000
    method_params: dict[str, Dim] = Field(default_factory=dict)

    @field_validator("hidden", "channels")
    @classmethod
    def _widths(cls, v: Choice | str | None, info: ValidationInfo) -> Choice | str | None:
        for item in _values(v):
            parse_hidden(item, str(info.field_name))
        return v

    @model_validator(mode="after")
    def _integer_ranges(self) -> SearchSpace:
        # a float range for a count would pass here and fail every trial the sampler draws
        for name in ("pruning_steps", "finetune_steps"):
            dim = getattr(self, name)
            if isinstance(dim, Range) and not dim.int:
                raise ValueError(f"{name}: a count; write its range with int: true")
        return self

    @model_validator(mode="after")
    def _known_methods(self) -> SearchSpace:
        from nas_prune.pruning.sparse_training import DynamicSparsePruning

        for field in ("method", "sparse_method"):
            for name in _values(getattr(self, field)):
                if str(name) not in methods:
                    raise ValueError(f"{field}: unknown pruning method {name!r}; allowed: "
                                     f"{', '.join(methods.names())}")
        # SET / RigL train from scratch: they belong in sparse_method (schedule sparse); in
        # `method` every trial that drew them would fail
        dynamic = [str(m) for m in _values(self.method)
                   if issubclass(methods.get(str(m)), DynamicSparsePruning)]
        if dynamic:
            allowed = [n for n in methods.names()
                       if not issubclass(methods.get(n), DynamicSparsePruning)]
            raise ValueError(f"method: {', '.join(dynamic)} train a sparse network from "
                             f"scratch: put them in sparse_method (schedule sparse); allowed "
                             f"in method: {', '.join(allowed)}")
        return self


def _values(dim: Dim | None) -> list[Any]:
    if dim is None:
        return []
    if isinstance(dim, Choice):
        return list(dim.choices)
    if isinstance(dim, Range):
        raise ValueError("method: must be a name or {choices: [...]}, not a range")
    return [dim]


def hidden_choices(space: SearchSpace) -> list[list[int]]:
    """Every dense architecture the space can pick."""
    return [parse_hidden(x, "hidden") for x in _values(space.hidden)]


def channel_choices(space: SearchSpace) -> list[list[int]]:
    """Every conv torso (channels per layer) the space can pick; [] when it picks none."""
    return [parse_hidden(x, "channels") for x in _values(space.channels)]


def _pick(trial: Suggester, name: str, dim: Dim) -> Any:
    if isinstance(dim, Choice):
        return dim.choices[0] if len(dim.choices) == 1 else trial.suggest_categorical(
            name, dim.choices)
    if isinstance(dim, Range):
        if dim.int:
            return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return dim


def _sparsity(trial: Suggester, name: str, dim: SparsityDim) -> float:
    if dim.low == dim.high:
        return dim.low
    if not dim.log_density:
        return trial.suggest_float(name, dim.low, dim.high)
    density = trial.suggest_float(f"{name}_density", 1 - dim.high, 1 - dim.low, log=True)
    return round(1.0 - density, 6)


def suggest(trial: Suggester, space: SearchSpace, template: TrialConfig) -> TrialConfig:
    """Sample one TrialConfig: ``template`` (the sweep's fixed fields, ``Sweep.template``)
    with the space's picks of width and pruning."""
    # A space that can pick a training schedule asks the schedule first (it decides which
    # dimensions apply); other spaces keep their order, so their seeded draws stay as they were.
    mixed = any(str(s) in TRAINING_SCHEDULES for s in _values(space.schedule))
    schedule = _pick(trial, "schedule", space.schedule) if mixed else None
    if schedule == "sparse":
        method = str(_pick(trial, "sparse_method", space.sparse_method or "random"))
    else:
        method = str(_pick(trial, "method", space.method))
    hidden = parse_hidden(_pick(trial, "hidden", space.hidden), "hidden")
    channels = None if space.channels is None else parse_hidden(
        _pick(trial, "channels", space.channels), "channels")
    convs = template.agent.convs if channels is None else len(channels)
    distribution = _pick(trial, "distribution", space.distribution or "uniform") \
        if schedule == "sparse" else "uniform"
    sparsity = _layer_sparsity(trial, space, method, hidden, convs,
                               shared=distribution != "uniform")
    accepted = methods.get(method).Params.model_fields
    params = {k: _pick(trial, f"{method}.{k}", d) for k, d in space.method_params.items()
              if k in accepted}
    if schedule is None:
        schedule = _pick(trial, "schedule", space.schedule)
    pruning = {"method": method, "sparsity": sparsity, "method_params": params,
               "schedule": schedule, "distribution": distribution,
               "finetune": {}}
    if schedule != "sparse":
        pruning["steps"] = _pick(trial, "pruning_steps", space.pruning_steps)
    pruning["finetune"]["mode"] = "rl" if schedule in TRAINING_SCHEDULES else _pick(
        trial, "finetune_mode", space.finetune_mode)
    pruning["finetune"]["steps"] = _pick(trial, "finetune_steps", space.finetune_steps)
    return with_picks(template, hidden=hidden, pruning=pruning, channels=channels)


def _layer_sparsity(trial: Suggester, space: SearchSpace, method: str, hidden: list[int],
                    convs: int, *, shared: bool) -> float | list[float]:
    # shared: one value however per_layer is set (a distribution spreads it over layers)
    if space.sparsity.per_layer and not shared:
        n = prunable_layer_count(hidden, methods.get(method).structured, convs=convs)
        return [_sparsity(trial, f"sparsity_{i}", space.sparsity) for i in range(n)]
    return _sparsity(trial, "sparsity", space.sparsity)


def check_method_params(space: SearchSpace) -> None:
    """Every method_params key must apply to at least one method the space can pick."""
    names = [str(m) for m in _values(space.method)]
    if "sparse" in _values(space.schedule):
        names += [str(m) for m in _values(space.sparse_method or "random")]
    for key in space.method_params:
        if not any(key in methods.get(m).Params.model_fields for m in names):
            raise ValueError(f"space.method_params.{key}: applies to none of {names}")
