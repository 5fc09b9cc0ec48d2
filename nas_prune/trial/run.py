"""run_trial(TrialConfig) -> TrialResult: train (or load) dense -> prune per schedule with
fine-tuning -> evaluate; or, for ``during`` / ``sparse``, train from scratch while pruning
-> evaluate. Imports neither Optuna nor Ray."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nas_prune.config.base import dump_yaml
from nas_prune.config.trial import TRAINING_SCHEDULES, TrialConfig, layer_sparsity
from nas_prune.pruning import PruneContext, PruningMethod, methods
from nas_prune.pruning.base import check_plan
from nas_prune.pruning.counting import achieved_sparsity, count
from nas_prune.pruning.schedule import ScheduleRun, run_schedule
from nas_prune.pruning.sparse_training import distribute
from nas_prune.pruning.training_schedule import TrainingRun, train_pruned
from nas_prune.rl.agents.base import Agent, Progress
from nas_prune.rl.cnn import CNN
from nas_prune.rl.envs import env_steps_taken
from nas_prune.rl.evaluation import EvalResult, evaluate, visited_states
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import PrunableNet, weights_hash
from nas_prune.rl.normalization import is_statistic
from nas_prune.rl.optim.flatnet import gradient_steps_taken
from nas_prune.trial.artifacts import CheckpointError, save_policy
from nas_prune.trial.dense_cache import Dense, build_agent, dense_evaluation, env_spec, obtain_dense
from nas_prune.trial.deployed import deploy_metrics, deployed_policy
from nas_prune.trial.early_stop import SIZE_CHECK, Decide, EarlyStop, RungMonitor, SizeDecide
from nas_prune.trial.finetune import selection_eval
from nas_prune.trial.metrics import TrialMetrics
from nas_prune.trial.noise import noisy_evaluate, observation_scale

__all__ = ["Rungs", "TrialResult", "TrialStopped", "run_trial", "write_trial"]

STATE_ENVS, STATE_STEPS = 8, 128  # 1,024 visited states for data-driven importance


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial: its config, every metric, and the deployable policy."""

    config: TrialConfig
    metrics: TrialMetrics
    policy: PrunableNet
    head: Head


def run_trial(cfg: TrialConfig, *, cache_dir: Path | None = None, out: Path | None = None,
              progress: Progress | None = None, rungs: Rungs | None = None) -> TrialResult:
    """Run one trial.

    Args:
        cfg: the trial; its seed determines the result.
        cache_dir: where dense agents are cached (None: always train). ``during`` and
            ``sparse`` trials train from scratch and use no dense agent.
        out: if given, write metrics.json, the policy (safetensors + JSON) and config.yaml.
        progress: called with the fine-tuning (or training) agent's env-step count.
        rungs: early stopping: (fractions of the fine-tune budget, decide). A stop raises
            ``TrialStopped`` carrying the partial metrics. ``during`` / ``sparse`` trials
            use only the size check.

    Returns:
        The TrialResult; ``metrics`` holds the figures the report reads.
    """
    torch.set_num_threads(cfg.threads)
    clock = _Clock(time.perf_counter(), gradient_steps_taken())
    if cfg.pruning.schedule in TRAINING_SCHEDULES:
        agent = build_agent(cfg, cfg.seed)  # the dense agent's seed: sparsity 0 is dense
        try:
            return _run_from_scratch(cfg, agent, clock, out=out, progress=progress,
                                     rungs=rungs)
        finally:
            agent.close()
    dense = obtain_dense(cfg, cache_dir)
    agent = build_agent(cfg, cfg.seed + 1)
    try:
        return _run(cfg, agent, dense, clock, out=out, progress=progress, rungs=rungs,
                    cache_dir=cache_dir)
    finally:
        agent.close()


@dataclass(frozen=True)
class _Clock:
    """Where a trial's wall time and optimizer steps started counting."""

    start: float
    gradient_steps: int

    def paid(self) -> dict[str, Any]:
        return {"gradient_steps": gradient_steps_taken() - self.gradient_steps,
                "wall_s": time.perf_counter() - self.start}


def _method(cfg: TrialConfig, net: PrunableNet) -> tuple[PruningMethod, list[float]]:
    """The configured method and its per-layer plan for ``net`` (checked)."""
    method_cls = methods.get(cfg.pruning.method)
    method = method_cls(method_cls.Params(**cfg.pruning.method_params))
    plan = layer_sparsity(cfg)
    if cfg.pruning.distribution != "uniform":
        plan = distribute(net, plan[0], cfg.pruning.distribution)
    check_plan(net, plan, method_cls)
    return method, plan


def _run(cfg: TrialConfig, agent: Agent, dense: Dense, clock: _Clock, *, out: Path | None,
         progress: Progress | None, rungs: Rungs | None, cache_dir: Path | None) -> TrialResult:
    try:
        agent.load_state_tensors(dense.tensors)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"dense_checkpoint: does not fit agent {cfg.agent.name} with "
                              f"hidden {cfg.agent.hidden} ({str(exc)[:120]})") from None
    agent.begin_finetune()
    teacher = copy.deepcopy(agent.policy)
    eval_seed = cfg.eval.seed if cfg.eval.seed is not None else cfg.seed
    dense_eval = dense_evaluation(cfg, teacher, agent.head, seed=eval_seed, cache_dir=cache_dir)
    # what this trial steps beyond the shared (cached) dense agent and its evaluation
    steps_at_start = env_steps_taken()
    method, plan = _method(cfg, agent.policy)
    monitor = _monitor(cfg, agent, rungs, progress)
    states = _visited_states(teacher, agent, cfg.seed)
    run = ScheduleRun(
        method=method, plan=plan, cfg=cfg.pruning, teacher=teacher,
        ctx=PruneContext(torch.Generator().manual_seed(cfg.seed), states=states),
        snapshot=cfg.agent.snapshot, seed=cfg.seed + 2, progress=monitor or progress,
        dense_selection_return=_dense_selection(cfg, teacher, agent),
        at_final_size=_size_check(rungs, agent))
    base = _base(cfg, plan, _deployed_params(agent, teacher), eval_seed) | {  # the dense policy
        "dense_return_mean": dense_eval.mean, "dense_return_std": dense_eval.std,
        "dense_return_iqm": dense_eval.iqm, "dense_cached": dense.cached,
        "dense_env_steps": dense.env_steps, "dense_wall_s": dense.wall_s}
    try:
        run_schedule(agent, run)
    except EarlyStop as stop:
        partial = _partial(stop, agent, dense.env_steps, clock)
        partial["rung_env_steps"] = monitor.eval_steps if monitor else 0
        partial["trial_env_steps"] = env_steps_taken() - steps_at_start
        raise TrialStopped(stop, TrialMetrics(**base, **partial)) from None
    return _finish(cfg, agent, method, base, clock, out=out, teacher=teacher, states=states,
                   steps={
        "iterative_log": run.log, "rung_points": monitor.points if monitor else [],
        "rung_env_steps": monitor.eval_steps if monitor else 0,
        "finetune_env_steps": agent.env_steps, "train_env_steps": 0,
        "trial_env_steps": env_steps_taken() - steps_at_start,
        "env_steps": dense.env_steps + agent.env_steps})


def _base(cfg: TrialConfig, plan: list[float], params_dense: int,
          eval_seed: int) -> dict[str, Any]:
    return {"env_id": cfg.env.id, "agent": cfg.agent.name, "method": cfg.pruning.method,
            "schedule": cfg.pruning.schedule, "finetune_mode": cfg.pruning.finetune.mode,
            "hidden": list(cfg.agent.hidden or []), "layer_sparsity_plan": plan,
            "params_dense": params_dense, "seed": cfg.seed, "eval_seed": eval_seed,
            **({"channels": list(cfg.agent.channels or [])} if cfg.agent.convs else {})}


def _run_from_scratch(cfg: TrialConfig, agent: Agent, clock: _Clock, *, out: Path | None,
                      progress: Progress | None, rungs: Rungs | None) -> TrialResult:
    # No dense agent: its figures are NaN (a report's dense references come from
    # post-training trials) and the trial pays its whole training in env_steps.
    steps_at_start = env_steps_taken()
    method, plan = _method(cfg, agent.policy)
    # no dense policy: the initial one's visited states (data-driven scores, noise scale)
    states = _visited_states(agent.policy, agent, cfg.seed)
    run = TrainingRun(
        method=method, plan=plan, cfg=cfg.pruning,
        ctx=PruneContext(torch.Generator().manual_seed(cfg.seed), states=states),
        snapshot=cfg.agent.snapshot, seed=cfg.seed + 2, train_steps=cfg.agent.train_steps,
        progress=progress, at_final_size=_size_check(rungs, agent))
    nan = float("nan")
    base = _base(cfg, plan, _deployed_params(agent, agent.policy),
                 cfg.eval.seed if cfg.eval.seed is not None else cfg.seed) | {
        "dense_return_mean": nan, "dense_return_std": nan, "dense_return_iqm": nan,
        "dense_cached": False, "dense_env_steps": 0, "dense_wall_s": 0.0}
    try:
        trained = train_pruned(agent, run)
    except EarlyStop as stop:
        partial = _partial(stop, agent, 0, clock)
        partial.update(trial_env_steps=env_steps_taken() - steps_at_start,
                       train_env_steps=agent.env_steps, finetune_env_steps=0)
        raise TrialStopped(stop, TrialMetrics(**base, **partial)) from None
    if cfg.eval.noise_std > 0 or cfg.eval.deploy_int8:
        # the noise scale and int8 calibration come from a trained policy's states, as for
        # post-training trials (there: the dense policy's); here, the trained sparse one's
        states = _visited_states(agent.policy, agent, cfg.seed)
    return _finish(cfg, agent, method, base, clock, out=out, teacher=None, states=states,
                   steps={
        "iterative_log": [], "rung_points": [], "rung_env_steps": 0,
        "finetune_env_steps": agent.env_steps - trained, "train_env_steps": trained,
        "trial_env_steps": env_steps_taken() - steps_at_start, "env_steps": agent.env_steps})


def _finish(cfg: TrialConfig, agent: Agent, method: PruningMethod, base: dict[str, Any],
            clock: _Clock, *, out: Path | None, steps: dict[str, Any],
            teacher: PrunableNet | None, states: torch.Tensor) -> TrialResult:
    """Shrink, evaluate (with observation noise when asked), measure the deployed policy,
    write it. ``teacher``: the dense policy (None for a trial trained from scratch);
    ``states``: visited states (noise scale, int8 calibration)."""
    # structured methods remove their units physically here, at the end of any schedule;
    # the agent's training-only outputs (SAC's log-stds) go too
    achieved = achieved_sparsity(agent.policy, method.structured)
    policy = deployed_policy(agent, agent.policy, remove_units=method.structured)
    final = evaluate(policy, agent.head, env_spec(cfg), episodes=cfg.eval.episodes,
                     seed=base["eval_seed"])
    measured = {**_noise_metrics(cfg, policy, teacher, agent.head, states, base["eval_seed"]),
                **deploy_metrics(policy, cfg.eval, states)}
    # every network's parameters but the deployed policy's (SAC: critics, targets,
    # temperature and the actor's log-std rows)
    every = sum(t.numel() for k, t in agent.state_tensors().items() if not is_statistic(k))
    metrics = TrialMetrics(**{
        **base, **_final_metrics(policy, final, base["params_dense"]), **measured,
        "layer_sparsity": achieved, **steps,
        "params_training_only": every - _deployed_params(agent, agent.policy),
        **clock.paid()})
    if out is not None:
        metrics = write_trial(out, cfg, policy, agent.head, metrics)
    return TrialResult(cfg, metrics, policy, agent.head)


@dataclass(frozen=True)
class Rungs:
    """Early stopping: rung fractions of the fine-tune budget and their stop decision, and
    the size check's decision (``nas_prune.rungs``)."""

    fractions: list[float]
    decide: Decide
    episodes: int = 10
    at_size: SizeDecide | None = None
    extra: tuple[str, ...] = ()  # further counts in each rung point (early_stop.RUNG_COUNTS)


def _deployed_params(agent: Agent, net: PrunableNet) -> int:
    """Parameters of ``net`` (units removed or not) as deployed: its deployed outputs only."""
    return count(deployed_policy(agent, net, remove_units=False)).params


def _size_check(rungs: Rungs | None, agent: Agent) -> Callable[[PrunableNet], None] | None:
    if rungs is None or rungs.at_size is None:
        return None
    at_size = rungs.at_size

    def check(net: PrunableNet) -> None:
        # counted as the trial will report it: the deployed outputs only
        params = float(count(deployed_policy(agent, net, remove_units=False)).params_nonzero)
        if at_size(params):
            raise EarlyStop(SIZE_CHECK, (params, float("nan")))
    return check


class TrialStopped(Exception):
    """A trial stopped early at a rung; ``metrics`` holds what it measured so far."""

    def __init__(self, stop: EarlyStop, metrics: TrialMetrics) -> None:
        super().__init__(str(stop))
        self.metrics = metrics


def _monitor(cfg: TrialConfig, agent: Agent, rungs: Rungs | None,
             progress: Progress | None) -> RungMonitor | None:
    if rungs is None:
        return None
    return RungMonitor(agent, cfg.pruning.finetune.steps, rungs.fractions, rungs.decide,
                       episodes=rungs.episodes, seed=cfg.seed + 3, then=progress,
                       extra=rungs.extra)


def _partial(stop: EarlyStop, agent: Agent, dense_steps: int, clock: _Clock) -> dict[str, Any]:
    part: dict[str, Any] = {"stopped_at_rung": stop.rung, "params_nonzero": int(stop.point[0]),
            "finetune_env_steps": agent.env_steps, "env_steps": dense_steps + agent.env_steps,
            **clock.paid()}
    if stop.rung == SIZE_CHECK:
        part["stopped_at"] = "final size (certainly dominated)"
    else:
        part.update(stopped_at=f"rung {stop.rung}", rung_return=stop.point[1])
    return part


def _final_metrics(policy: PrunableNet, final: EvalResult, dense_size: int) -> dict[str, Any]:
    c = count(policy)
    widths: dict[str, Any] = {"hidden_pruned": policy.hidden}
    if isinstance(policy, CNN):  # its conv channels and its dense part, apart
        widths = {"hidden_pruned": policy.hidden_sizes, "channels_pruned": policy.channels}
    return {**widths, "params": c.params,
            "params_nonzero": c.params_nonzero, "sparsity": 1.0 - c.params_nonzero / dense_size,
            "macs": c.macs, "macs_nonzero": c.macs_nonzero, "return_mean": final.mean,
            "return_std": final.std, "return_iqm": final.iqm, "returns": final.returns,
            "episodes": len(final.returns), "q_mean": final.q_mean,
            "eval_env_steps": final.env_steps, "weights_hash": weights_hash(policy)}


def _noise_metrics(cfg: TrialConfig, policy: PrunableNet, teacher: PrunableNet | None,
                   head: Head,
                   states: torch.Tensor, eval_seed: int) -> dict[str, Any]:
    """return_noise (and the dense policy's, for the report) on the final evaluation's
    episodes with observation noise; nothing when ``eval.noise_std`` is 0."""
    if cfg.eval.noise_std <= 0:
        return {}
    scale = observation_scale(states)
    runs = [noisy_evaluate(net, head, env_spec(cfg), episodes=cfg.eval.episodes,
                           seed=eval_seed, noise_std=cfg.eval.noise_std, scale=scale)
            for net in (policy, teacher) if net is not None]
    dense = {} if teacher is None else {"dense_return_noise": runs[1].mean}
    return {"return_noise": runs[0].mean, "return_noise_std": runs[0].std, **dense}


def _dense_selection(cfg: TrialConfig, teacher: PrunableNet, agent: Agent) -> float:
    if cfg.pruning.schedule != "iterative":
        return 0.0
    return selection_eval(teacher, agent, cfg.agent.snapshot.episodes, cfg.seed + 2).mean


def _visited_states(net: PrunableNet, agent: Agent, seed: int) -> torch.Tensor:
    states = visited_states(lambda obs: act(net, agent.head, obs), agent.spec.env, seed=seed,
                            envs=STATE_ENVS, steps=STATE_STEPS)
    return torch.from_numpy(states)


def write_trial(out: Path, cfg: TrialConfig, policy: PrunableNet, head: Head,
                metrics: TrialMetrics) -> TrialMetrics:
    """Write policy.safetensors + policy.json, the resolved config.yaml and metrics.json.

    Returns:
        ``metrics`` with the saved policy's SHA-256 (``policy_sha256``).
    """
    out.mkdir(parents=True, exist_ok=True)
    metrics = metrics.model_copy(update={"policy_sha256": save_policy(out, policy, head)})
    metrics.model_fields_set.add("policy_sha256")
    (out / "config.yaml").write_text(dump_yaml(cfg))
    (out / "metrics.json").write_text(json.dumps(metrics.as_dict(), indent=2))
    return metrics
