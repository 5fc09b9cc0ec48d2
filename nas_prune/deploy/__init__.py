"""Deploying a policy: ONNX export, int8 quantization, measured latency and file size.

Only ``policy_bytes`` and the torch latency path work on the default install; ONNX export,
onnxruntime latency and quantization need the ``[deploy]`` extra (``pip install -e
".[deploy]"``), imported lazily so ``import nas_prune`` stays lean.
"""
from __future__ import annotations

from nas_prune.deploy.latency import Latency, measure_latency, measure_onnx_latency, policy_bytes
from nas_prune.deploy.onnx import DeployError, to_onnx
from nas_prune.deploy.quantize import int8_onnx

__all__ = ["DeployError", "Latency", "int8_onnx", "measure_latency", "measure_onnx_latency",
           "policy_bytes", "to_onnx"]
