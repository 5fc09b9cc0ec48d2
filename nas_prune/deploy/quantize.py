"""Post-training int8 quantization of an exported policy (onnxruntime's quantizer)."""
from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from nas_prune.deploy.onnx import INPUT, require, to_onnx

if TYPE_CHECKING:
    from nas_prune.rl.networks import MLP

__all__ = ["int8_onnx"]


def int8_onnx(net: MLP, calibration_obs: np.ndarray | None = None) -> bytes:
    """The policy as an int8 ONNX model.

    Args:
        net: the policy network (fp32), exported with ``to_onnx`` first.
        calibration_obs: visited observations ``[n, obs_dim]``. Given: static quantization,
            activations' ranges calibrated on them. None: dynamic quantization (weights int8,
            activation ranges computed per call), which needs no data.

    Returns:
        The serialized int8 ONNX model (same input / output names and batch axis).

    Raises:
        DeployError: the ``[deploy]`` extra is not installed.
    """
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = to_onnx(net)
    # the quantizer reads and writes paths only: a private temp dir, removed after. Its
    # root-logger advice ("consider pre-processing") is muted: a sweep would print it per
    # trial, and pre-processing (shape inference, folding) changes nothing in a Gemm chain
    with tempfile.TemporaryDirectory(prefix="nas_prune_q") as tmp, _quiet_root_logger():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        if calibration_obs is None:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        else:
            _quantize_static(src, dst, np.asarray(calibration_obs, dtype=np.float32))
        return dst.read_bytes()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize_static(src: Path, dst: Path, obs: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._rows = iter(np.array_split(obs, max(1, len(obs) // 64)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._rows, None)
            return None if batch is None else {INPUT: batch}

    quantize_static(src, dst, _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
