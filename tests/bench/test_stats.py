"""The benchmarks' one percentile definition: nearest rank, always one of the values."""

import math

from benchmarks.stats import median, percentile, rank


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]  # 1 to 10
    assert [percentile(values, p) for p in (10, 50, 90, 95, 99, 100)] == [1, 5, 9, 10, 10, 10]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # sorted first
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.0  # the lower middle, never 2.5
    assert rank(5, 50) == 2


def test_a_percentile_is_defined_with_infinite_samples_and_nan_for_none() -> None:
    late = [0.1, 0.2, math.inf, math.inf]
    assert percentile(late, 50) == 0.2
    assert percentile(late, 95) == math.inf
    assert math.isnan(percentile([], 50))
