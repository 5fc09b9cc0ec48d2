"""SweepConfig: a sweep file (env, agent, budgets, seeds, space, sampler, storage, backend)
resolved once into a Sweep that backends, reports and ``best`` share."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from nas_prune.config.base import ConfigError, Strict, load_yaml, parse
from nas_prune.config.objectives import DEFAULT_OBJECTIVES, check_objectives, pairs
from nas_prune.config.space import (
    SearchSpace,
    channel_choices,
    check_method_params,
    hidden_choices,
)
from nas_prune.config.trial import (
    AgentConfig,
    DistillSettings,
    EnvConfig,
    EvalConfig,
    TrialConfig,
    with_picks,
)
from nas_prune.pruning import methods
from nas_prune.pruning.base import check_sparsity
from nas_prune.pruning.counting import count_dense

__all__ = ["BaselineConfig", "EarlyStopConfig", "OBJECTIVES", "ReevalConfig", "SAFE_NAME",
           "Sweep", "SweepConfig", "TRIAL_FIELDS", "default_storage", "load_sweep"]

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# (metric, direction) of the default objectives: a study that recorded none (nas_prune
# 0.1.0) has these; a sweep's own are ``Sweep.objectives`` (config.objectives)
OBJECTIVES: tuple[tuple[str, str], ...] = tuple(pairs(DEFAULT_OBJECTIVES))
# sweep fields that change what a trial computes or which trials the sampler draws; the
# rest (trials, workers, storage, out, reeval, report's box, baseline.enabled) may change
# when a study resumes; so may device (where CNNs train: CUDA rounds differently, so a
# CUDA-trained dense agent has its own cache key, ``trial.dense_cache.dense_key``)
TRIAL_FIELDS = ("env", "agent", "finetune", "eval", "seeds", "sampler", "sampler_seed",
                "reproducible", "threads", "early_stop", "baseline", "reference_hidden",
                "reference_channels")


class ReevalConfig(Strict):
    """Front points re-evaluated on ``seeds`` fresh evaluation seeds x ``episodes``."""

    seeds: int = Field(default=3, ge=0)
    episodes: int = Field(default=100, ge=1)


class BaselineConfig(Strict):
    """Uniform pruning baseline on the reference architecture, same fine-tune budget."""

    enabled: bool = True
    method: str = "global_magnitude"
    schedule: Literal["oneshot", "gradual", "iterative"] = "gradual"
    sparsities: list[float] = Field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95, 0.98])
    finetune_mode: Literal["rl", "distill"] = "rl"
    finetune_steps: int | None = Field(default=None, ge=0)  # None: the space's largest

    @field_validator("method")
    @classmethod
    def _known(cls, v: str) -> str:
        methods.get(v, field="baseline.method")
        return v

    @field_validator("sparsities")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("baseline.sparsities: need one or more values in [0, 1)")
        return [check_sparsity(s, "baseline.sparsities") for s in v]


class EarlyStopConfig(Strict):
    """Multi-objective early stopping (Optuna backend); a stopped trial is recorded as
    PRUNED with its partial metrics.

    ``size_check``: right after its last pruning step a trial stops if a finished trial with
    fewer nonzero parameters already scored ``return_upper_bound``, a true supremum of an
    evaluation's mean return (CartPole-v1: 500; the check is off without it). Not
    ``max_return``: that is only the top of the hypervolume box.

    ``rungs`` (none by default): at each fraction of the fine-tune budget a trial is
    evaluated on ``episodes`` selection episodes; it stops when at least
    ``min_dominators`` finished trials' points at that rung dominate its
    (params_nonzero, return). On by default on the optuna backend; the ray backend runs
    without it (and refuses ``enabled: true`` written in the sweep file)."""

    enabled: bool = True  # on the optuna backend; measured in README "Performance"
    size_check: bool = True
    return_upper_bound: float | None = None
    rungs: list[float] = Field(default_factory=list)
    min_dominators: int = Field(default=3, ge=1)
    episodes: int = Field(default=10, ge=1)

    def requested(self) -> bool:
        """Enabled in the sweep file (not just by default): other backends refuse it."""
        return self.enabled and "enabled" in self.model_fields_set

    @field_validator("rungs")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < r < 1 for r in v) or v != sorted(v):
            raise ValueError(f"early_stop.rungs: need increasing fractions in (0, 1), got {v}")
        return v


class SweepConfig(Strict):
    """A sweep file. Paths (space, out) are relative to the sweep file's folder's cwd."""

    name: str
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    finetune: DistillSettings = Field(default_factory=DistillSettings)
    eval: EvalConfig = Field(default_factory=lambda: EvalConfig(episodes=20))
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    space: str
    trials: int = Field(default=20, ge=1)
    sampler: Literal["nsga2", "tpe", "random"] = "nsga2"
    sampler_seed: int = 0
    # generation-synchronous sampling: the same sweep file gives the same trials for any
    # number of workers (nas_prune.search.generations); false: asynchronous, as Optuna
    # does. The optuna backend only: Ray Tune's searcher always samples asynchronously.
    reproducible: bool = True
    storage: str | None = None
    study: str | None = None
    backend: str = "optuna"  # a name in nas_prune.search.backends
    out: str | None = None
    workers: int = Field(default=1, ge=1)
    threads: int = Field(default=1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where trials train CNNs (TrialConfig)
    reeval: ReevalConfig = Field(default_factory=ReevalConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    early_stop: EarlyStopConfig = Field(default_factory=EarlyStopConfig)
    reference_hidden: list[int] | None = None
    reference_channels: list[int] | None = None  # a CNN's; None: the space's largest
    max_return: float | None = None
    return_floor: float = 0.0
    # what the study trades off (config.objectives: fixed directions, return_mean first)
    objectives: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTIVES))

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        return check_objectives(v)

    @model_validator(mode="after")
    def _noise_needed(self) -> SweepConfig:
        if "return_noise" in self.objectives and self.eval.noise_std <= 0:
            raise ValueError("objectives: return_noise needs eval.noise_std > 0 (the noise, "
                             "in per-dimension standard deviations of visited states)")
        return self

    @model_validator(mode="after")
    def _early_stop_backend(self) -> SweepConfig:
        from nas_prune.search.backends import check_support

        check_support(self.backend, early_stop=self.early_stop.requested(),
                      reproducible=self.reproducible_requested())
        return self

    def reproducible_requested(self) -> bool:
        """Asked for in the sweep file (not just by default): other backends refuse it."""
        return self.reproducible and "reproducible" in self.model_fields_set

    @field_validator("name", "study")
    @classmethod
    def _safe(cls, v: str | None) -> str | None:
        if v is not None and not SAFE_NAME.match(v):
            raise ValueError(f"{v!r} must be letters, digits, '_', '.', '-' (no paths)")
        return v


@dataclass(frozen=True)
class Sweep:
    """A resolved sweep: config, loaded space, output folder, storage URL, study name."""

    config: SweepConfig
    space: SearchSpace
    out: Path
    storage: str
    study: str

    @property
    def study_dir(self) -> Path:
        """Everything this study writes (trials, baseline, report, Ray results) lives here;
        only the dense cache (``out/dense``) and the storage are shared by the out folder's
        studies."""
        return self.out / self.study

    def trial_dir(self, name: int | str) -> Path:
        """Where trial ``name`` (a trial number, or a Ray trial id) writes its files."""
        return self.study_dir / "trials" / (f"{name:05d}" if isinstance(name, int) else name)

    @property
    def dense_cache(self) -> Path:
        """Dense agents, shared by every study in the out folder (keyed by their config)."""
        return self.out / "dense"

    def fingerprint(self) -> dict[str, Any]:
        """Everything in the sweep that changes what its trials compute (or which trials
        are drawn): a study refuses to resume when it differs (``search.fingerprint``)."""
        c = self.config
        data = c.model_dump(mode="json", include=set(TRIAL_FIELDS))
        data["baseline"].pop("enabled", None)
        data["space"] = self.space.model_dump(mode="json")
        data["objectives"] = [f"{name}:{d}" for name, d in pairs(c.objectives)]
        return data

    @property
    def objectives(self) -> list[str]:
        """The study's objectives, in order (return_mean first)."""
        return list(self.config.objectives)

    def seed_for(self, index: int) -> int:
        """The training seed of the sweep's ``index``-th trial: the seeds rotate by trial
        number (a sampled seed would let the search favour lucky ones)."""
        return self.config.seeds[index % len(self.config.seeds)]

    def template(self, index: int = 0) -> TrialConfig:
        """The sweep's ``index``-th trial before the space picks its width and pruning:
        env, agent, evaluation, threads, the trial's seed and the distillation settings.
        ``config.space.suggest`` (and the baseline) fill in the rest with
        ``config.trial.with_picks``."""
        c = self.config
        # latency is measured only when it is an objective (or asked for in eval)
        measure = {"latency": c.eval.latency or "latency_us" in c.objectives}
        return parse(TrialConfig, {  # type: ignore[no-any-return]
            "env": c.env.model_dump(), "agent": c.agent.model_dump(),
            "eval": {**c.eval.model_dump(), **measure},
            "threads": c.threads, "device": c.device, "seed": self.seed_for(index),
            "pruning": {"finetune": c.finetune.model_dump()}})

    def reference(self) -> TrialConfig:
        """The reference architecture (the largest the space can pick, or the sweep's
        ``reference_hidden`` / ``reference_channels``) as a dense trial config: what the
        baseline prunes and what the hypervolume's parameter axis is relative to."""
        hidden = self.config.reference_hidden or max(hidden_choices(self.space), key=sum)
        template = self.template(0)
        channels = None
        if template.agent.network == "cnn":
            channels = (self.config.reference_channels
                        or max(channel_choices(self.space) or [template.agent.channels or []],
                               key=sum))
        return with_picks(template, hidden=hidden, pruning={}, channels=channels)

    def reference_params(self, obs_size: int, act_size: int) -> int:
        """Dense parameters of the reference architecture (the hypervolume's ref point)."""
        cfg = self.reference()
        if cfg.agent.network != "cnn":
            return count_dense([obs_size, *(cfg.agent.hidden or []), act_size])
        from nas_prune.rl.cnn import CNN, image_layout
        from nas_prune.rl.envs import observation_shape

        image, last = image_layout(observation_shape(cfg.env.id, cfg.env.kwargs))
        a = cfg.agent
        with torch.device("meta"):  # counted, never allocated
            net = CNN(image, a.channels or [], a.kernels or [], a.strides or [],
                      a.hidden or [], act_size, str(a.activation), last)
        return sum(layer.params() for layer in net.prunable_layers())


def load_sweep(path: Path, *, storage: str | None = None, study: str | None = None,
               out: Path | None = None, sampler_seed: int | None = None,
               device: str | None = None) -> Sweep:
    """Read and validate a sweep file and its search space; CLI flags override the file.

    ``sampler_seed`` (``--sampler-seed``) replaces the file's; when it differs from the file's
    and no study name is given, the study is ``<name>-seed<N>`` so that a second search of
    the same sweep lands beside the first in the same out folder (sharing its dense cache)
    instead of being refused as a different sweep under the first one's name. ``device``
    (``--device``) replaces the file's."""
    data = load_yaml(path)
    seeded = sampler_seed is not None and sampler_seed != (data or {}).get("sampler_seed", 0)
    if sampler_seed is not None and isinstance(data, dict):
        data = {**data, "sampler_seed": sampler_seed}
    if device is not None and isinstance(data, dict):
        data = {**data, "device": device}
    cfg: SweepConfig = parse(SweepConfig, data)
    space_path = Path(cfg.space)
    if not space_path.is_absolute() and not space_path.exists():
        space_path = path.parent / space_path
    space_data = load_yaml(space_path)
    if not space_data:
        raise ConfigError(f"space: {space_path} is empty; declare at least one dimension")
    space: SearchSpace = parse(SearchSpace, space_data)
    try:
        check_method_params(space)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out_dir = Path(out or cfg.out or Path("runs") / cfg.name)
    name = study or cfg.study or (f"{cfg.name}-seed{cfg.sampler_seed}" if seeded else cfg.name)
    if not SAFE_NAME.match(name):
        raise ConfigError(f"--study: {name!r} must be letters, digits, '_', '.', '-'")
    return Sweep(cfg, space, out_dir, storage or cfg.storage or default_storage(out_dir), name)


def default_storage(out: Path) -> str:
    """The embedded default: an Optuna journal file in the output folder (no server)."""
    return str(out / "study.journal")
