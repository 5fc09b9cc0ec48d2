"""The deployed policy (``deployed_policy``: what a trial saves, exports and counts), and
its size and speed as trial metrics: ``bytes`` always (an in-memory serialisation,
0.3 ms), ``latency_us`` only when the trial's config asks for it (a sweep does when
latency_us is an objective: the ONNX export, 50 warm-up and 200 timed forwards take
7-8 ms for a [64, 64] MLP, plus 0.64 s once per process for the imports). The measuring
functions live in ``nas_prune.deploy``."""
from __future__ import annotations

from typing import Any

import torch

from nas_prune.config.trial import EvalConfig
from nas_prune.pruning.surgery import deployed
from nas_prune.rl.agents.base import Agent
from nas_prune.rl.networks import PrunableNet

__all__ = ["LATENCY_REPEATS", "LATENCY_WARMUP", "deploy_metrics", "deployed_policy",
           "latency_metrics"]

LATENCY_REPEATS, LATENCY_WARMUP = 200, 50  # batch-1 forwards: timed, then untimed first


def deployed_policy(agent: Agent, net: PrunableNet, *, remove_units: bool) -> PrunableNet:
    """``net`` (``agent``'s policy or a copy of it) as the trial deploys, saves and counts
    it: a copy with only the outputs the agent deploys (``Agent.deployed_outputs``) and,
    when ``remove_units`` (a structured method), without its removed units."""
    outputs = agent.deployed_outputs(net.prunable_layers()[-1].n_units)
    return deployed(net, outputs, remove_units=remove_units)


def deploy_metrics(policy: PrunableNet, settings: EvalConfig,
                   states: torch.Tensor) -> dict[str, Any]:
    """``bytes`` (and ``bytes_format``) of the file the trial deploys, and its latency when
    ``settings.latency``.

    Args:
        policy: the deployed network (structured pruning already shrunk).
        settings: the trial's eval settings (``deploy_int8``, ``latency``).
        states: visited states, the int8 quantizer's calibration data.
    """
    from nas_prune.deploy.latency import policy_bytes

    if settings.deploy_int8:
        from nas_prune.deploy.quantize import int8_onnx

        out: dict[str, Any] = {"bytes": len(int8_onnx(policy, states.numpy())),
                               "bytes_format": "int8_onnx"}
    else:
        out = {"bytes": policy_bytes(policy), "bytes_format": "fp32_safetensors"}
    if settings.latency:
        out.update(latency_metrics(policy))
    return out


def latency_metrics(policy: PrunableNet) -> dict[str, Any]:
    """``latency_us`` (median), ``latency_iqr_us`` and ``latency_method`` of batch-1
    forwards, one thread, through onnxruntime when installed, else torch."""
    from nas_prune.deploy.latency import measure_latency

    lat = measure_latency(policy, batch=1, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP)
    return {"latency_us": lat.us, "latency_iqr_us": lat.iqr_us, "latency_method": lat.method}
