"""Operational metrics, written as CloudWatch embedded-metric-format log lines.

CloudWatch turns these log lines into metrics, so publishing one makes no API call and needs no
IAM permission. The alarms in ``infra/operations.yaml`` watch them.
"""

from collections.abc import Mapping

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from functions import names
from functions.settings import Settings


def publish(
    settings: Settings,
    name: str,
    value: float,
    unit: MetricUnit,
    dimensions: Mapping[str, str] | None = None,
) -> None:
    """One metric, with the stage's prefix as a dimension and any ``dimensions`` given."""
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=names.METRIC_NAMESPACE,
        default_dimensions={names.METRIC_DIMENSION: settings.prefix, **(dimensions or {})},
    ):
        pass
