"""Percentiles and medians without numpy."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) by the nearest-rank method, or None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def summary(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p90, p99 and max of latency samples in milliseconds."""
    return {
        "n": len(samples),
        "p50": _round(percentile(samples, 50)),
        "p90": _round(percentile(samples, 90)),
        "p99": _round(percentile(samples, 99)),
        "max": _round(max(samples) if samples else None),
    }


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that exist, or None."""
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _round(value: float | None) -> float | None:
    """Two decimals, enough for milliseconds."""
    return None if value is None else round(value, 2)
