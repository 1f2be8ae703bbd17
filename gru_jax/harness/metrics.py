"""Which way each task metric is better, stated once."""

from __future__ import annotations

METRICS = ("mse", "accuracy")  # the tasks' eval metrics
HIGHER_IS_BETTER = frozenset({"accuracy"})  # every other metric (mse, loss) goes down


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


def reached(metric: str, value: float, threshold: float) -> bool:
    """`value` of `metric` is at least as good as `threshold` (mse <= t, accuracy >= t)."""
    return value >= threshold if higher_is_better(metric) else value <= threshold


def minimised(metric: str, value: float) -> float:
    """`value` as a number to minimise: as is, or negated for a metric that goes up."""
    return -value if higher_is_better(metric) else value
