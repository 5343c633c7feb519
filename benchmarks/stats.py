"""The statistics every benchmark uses: one percentile definition, a slope, a stopwatch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


def rank(count: int, p: float) -> int:
    """The index, in ``count`` sorted values, of the p-th percentile by the nearest-rank
    method: ``ceil(p / 100 * count) - 1``, at least 0."""
    return max(0, math.ceil(p / 100 * count) - 1)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 to 100) by the **nearest-rank** method, the only one used here:
    the smallest value such that at least p% of the values are at or below it.

    It is always one of the values (never interpolated), so it is defined when some values
    are infinite (a sample that never arrived counts as infinitely late). NaN when empty.
    """
    if not values:
        return math.nan
    return sorted(values)[rank(len(values), p)]


def median(values: Sequence[float]) -> float:
    """``percentile(values, 50)``: with an even count, the lower of the two middle values."""
    return percentile(values, 50)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (x, y) points (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed:``; ``elapsed()``: seconds since entry, frozen on exit."""
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()
