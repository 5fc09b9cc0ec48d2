"""onnxruntime sessions as this package runs them: CPU, one thread."""
from __future__ import annotations

from typing import Any

from nas_prune.deploy.onnx import require

__all__ = ["session"]


def session(model: bytes, *, threads: int = 1) -> Any:
    """An onnxruntime ``InferenceSession`` on the CPU for a serialized model.

    One intra-op and one inter-op thread by default: latency is reported per thread, like
    the trials' torch settings, and a sweep runs one worker per core.

    Raises:
        DeployError: onnxruntime is not installed.
    """
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = threads
    opts.log_severity_level = 3  # errors only: no per-session warnings in a sweep's log
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
