"""The one schema of a trial's metrics: what ``run_trial`` measures, what every backend and
the baseline record, and what reports read back. Fields are in the order trials.csv lists
them; a stopped trial (early stopping) carries the base fields and its partial figures,
the rest stay unset."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["TrialMetrics"]


class TrialMetrics(BaseModel):
    """Every figure of one trial. Unknown keys are refused (a metric has one name)."""

    # NaN (a from-scratch trial has no dense return) round-trips through JSON as NaN, not
    # null: the Ray backend sends metrics as JSON
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    # what was run: known before the trial prunes anything
    env_id: str
    agent: str
    method: str
    schedule: str
    finetune_mode: str
    hidden: list[int]
    layer_sparsity_plan: list[float]
    params_dense: int
    dense_return_mean: float
    dense_return_std: float
    dense_return_iqm: float
    dense_cached: bool
    dense_env_steps: int
    seed: int
    eval_seed: int
    dense_wall_s: float
    channels: list[int] | None = None  # a CNN's conv channels (dense)
    # the pruned, fine-tuned, evaluated policy (a finished trial)
    hidden_pruned: list[int] | None = None  # a CNN's: its dense part
    channels_pruned: list[int] | None = None  # a CNN's conv channels after pruning
    params: int | None = None
    params_nonzero: int | None = None
    sparsity: float | None = None
    macs: int | None = None
    macs_nonzero: int | None = None
    return_mean: float | None = None
    return_std: float | None = None
    return_iqm: float | None = None
    returns: list[float] | None = None
    episodes: int | None = None
    q_mean: float | None = None  # Q-value heads only
    eval_env_steps: int | None = None
    weights_hash: str | None = None
    # the deployed file and its speed (trial.deployed); latency is a measurement, not a
    # function of the seed: same-seed comparisons leave latency_* out
    bytes: int | None = None
    bytes_format: str | None = None  # "fp32_safetensors" or "int8_onnx"
    latency_us: float | None = None  # median of timed batch-1 forwards, one thread
    latency_iqr_us: float | None = None
    latency_method: str | None = None  # "onnxruntime" or "torch"
    # robustness (eval.noise_std > 0): Gaussian observation noise (trial.noise)
    return_noise: float | None = None
    return_noise_std: float | None = None
    dense_return_noise: float | None = None
    layer_sparsity: list[float] | None = None
    iterative_log: list[dict[str, Any]] | None = None
    rung_points: list[list[float]] | None = None
    rung_env_steps: int | None = None
    params_training_only: int | None = None
    finetune_env_steps: int | None = None
    # during / sparse: env steps of the training from scratch (post-training: 0; its dense
    # training is dense_env_steps when this trial paid it)
    train_env_steps: int | None = None
    trial_env_steps: int | None = None
    env_steps: int | None = None
    gradient_steps: int | None = None  # optimizer steps this trial paid (as env_steps)
    wall_s: float | None = None
    policy_sha256: str | None = None  # of policy.safetensors, when the trial was saved
    # a trial stopped early (PRUNED): where, and its return there
    stopped_at_rung: int | None = None
    stopped_at: str | None = None
    rung_return: float | None = None
    # the Ray backend: the node and its wall-clock times around the trial
    ray_node_id: str | None = None
    ray_started_at: float | None = None
    ray_reported_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields that were set, in schema order (JSON-ready)."""
        return self.model_dump(mode="json", exclude_unset=True)
