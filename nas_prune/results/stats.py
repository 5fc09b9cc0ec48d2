"""Robust statistics of returns: the interquartile mean and percentile-bootstrap confidence
intervals (Agarwal et al. 2021, rliable's recommendations). Pure numpy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["bootstrap_ci", "iqm"]

FloatArray = npt.NDArray[np.float64]
# Inputs: lists, tuples, numpy arrays (pandas Series work through np.asarray too).
Floats = Sequence[float] | npt.NDArray[Any]

# Most resample draws bootstrap_ci holds in memory at once (8 MB of int64 indices).
_MAX_DRAWS_PER_CHUNK = 1_000_000


def iqm(values: Floats) -> float:
    """Return the interquartile mean: the mean after cutting 25% from each end.

    ``int(0.25 * n)`` values are cut from each end of the sorted values.

    Same as ``scipy.stats.trim_mean(values, 0.25)``, the IQM of Agarwal et al. 2021
    (rliable).

    Raises:
        ValueError: if ``values`` is empty, not 1-D or not finite.
    """
    x = _as_values(values)
    return float(_iqm_rows(x[np.newaxis, :])[0])


def bootstrap_ci(
    values: Floats,
    *,
    stat: str = "mean",
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Return a percentile bootstrap confidence interval of the mean or IQM.

    Deterministic for a given ``seed`` (``np.random.default_rng(seed)``); resamples are
    drawn and reduced as 2-D arrays, in chunks that bound memory.

    Args:
        values: per-episode (or per-seed) returns.
        stat: "mean" or "iqm".
        confidence: two-sided coverage in (0, 1).
        resamples: number of bootstrap resamples, >= 1.
        seed: seed for the resampling generator.

    Returns:
        (low, high) percentiles of the bootstrap distribution.

    Raises:
        ValueError: for an unknown ``stat``, ``confidence`` outside (0, 1),
            ``resamples < 1``, or empty/non-finite ``values``.
    """
    reducers: dict[str, Callable[[FloatArray], FloatArray]] = {
        "mean": _mean_rows,
        "iqm": _iqm_rows,
    }
    if stat not in reducers:
        raise ValueError(f"stat must be one of {sorted(reducers)}, got {stat!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    x = _as_values(values)
    stats = _bootstrap_stats(x, reducers[stat], resamples, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _as_values(values: Floats) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"values must be a non-empty 1-D sequence, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("values must all be finite")
    return x


def _mean_rows(samples: FloatArray) -> FloatArray:
    return np.asarray(samples.mean(axis=1), dtype=np.float64)


def _iqm_rows(samples: FloatArray) -> FloatArray:
    n = samples.shape[1]
    cut = int(0.25 * n)  # scipy.stats.trim_mean(x, 0.25) convention
    trimmed = np.sort(samples, axis=1)[:, cut : n - cut]
    return np.asarray(trimmed.mean(axis=1), dtype=np.float64)


def _bootstrap_stats(
    x: FloatArray,
    reduce: Callable[[FloatArray], FloatArray],
    resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    rows = max(1, _MAX_DRAWS_PER_CHUNK // x.size)
    chunks = []
    for start in range(0, resamples, rows):
        idx = rng.integers(0, x.size, size=(min(rows, resamples - start), x.size))
        chunks.append(reduce(x[idx]))
    return np.concatenate(chunks)
