"""What follows from the packaged template's own resources, added by ``make package``.

Alarms.

Every function gets an ``Errors`` and a ``Throttles`` alarm, and every table and each of its
global secondary indexes a ``ReadThrottleEvents`` and a ``WriteThrottleEvents`` alarm (an
index's write throttling fails the base table's write, a user's POST). They are derived from
the template, so a function or table added later is watched without anyone remembering to.
Each alarm wakes the same target as the hand-written ones of ``infra/operations.yaml``.

Log groups. Each function's log group (``/aws/lambda/<function name>``, where Lambda writes) is
a resource of the stack with the ``LogRetentionInDays`` parameter's retention, instead of the
group Lambda would create on first use, which never expires.

Metrics and dimensions are AWS's: "Monitoring Lambda function metrics" (``AWS/Lambda``,
dimension ``FunctionName``) and "DynamoDB Metrics and dimensions" (``AWS/DynamoDB``,
dimensions ``TableName`` and ``GlobalSecondaryIndexName``).
"""

from typing import Any

FUNCTION = "AWS::Serverless::Function"
TABLE = "AWS::DynamoDB::Table"
ALARM = "AWS::CloudWatch::Alarm"
LOG_GROUP = "AWS::Logs::LogGroup"
ALERTS = {"Fn::If": ["AlertsToTopic", {"Ref": "AlertsTopicArn"}, {"Ref": "AlertsTopic"}]}
"""Who every alarm wakes: the ``AlertsTopicArn`` topic, or the stack's own alerts topic."""


def _alarm(
    description: str,
    namespace: str,
    metric: str,
    dimensions: list[dict[str, Any]],
    periods: int = 1,
) -> dict[str, Any]:
    """Any occurrence (a sum above 0) in each of ``periods`` five-minute periods."""
    return {
        "Type": ALARM,
        "Properties": {
            "AlarmActions": [ALERTS],
            "OKActions": [ALERTS],
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": periods,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def function_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An Errors and a Throttles alarm per function, by logical id.

    A scheduled function runs one at a time (reserved concurrency 1), so a run that outlasts
    its period is throttled once and retried by Lambda: only throttling through three periods
    (15 minutes) alarms for it. Any other function's throttling fails a request or delays a
    queue, so one period alarms.
    """
    alarms = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != FUNCTION:
            continue
        events = resource["Properties"].get("Events", {}).values()
        scheduled = any(event["Type"] == "Schedule" for event in events)
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": name}}]
        alarms[f"{name}ErrorsAlarm"] = _alarm(
            f"{name} raised an error (an invocation failed).", "AWS/Lambda", "Errors", dimensions
        )
        alarms[f"{name}ThrottlesAlarm"] = _alarm(
            f"{name} was throttled (its concurrency is used up).",
            "AWS/Lambda",
            "Throttles",
            dimensions,
            periods=3 if scheduled else 1,
        )
    return alarms


def table_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A read and a write throttling alarm per table and per global secondary index."""
    alarms = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != TABLE:
            continue
        table = {"Name": "TableName", "Value": {"Ref": name}}
        targets = [(name, "", [table])]
        for index in resource["Properties"].get("GlobalSecondaryIndexes", []):
            index_name = index["IndexName"]
            logical = "".join(part.title() for part in index_name.split("-"))
            targets.append(
                (
                    f"{name}{logical}",
                    f" index {index_name}",
                    [table, {"Name": "GlobalSecondaryIndexName", "Value": index_name}],
                )
            )
        for logical, what, dimensions in targets:
            for kind in ("Read", "Write"):
                alarms[f"{logical}{kind}ThrottleAlarm"] = _alarm(
                    f"{name}{what} throttled {kind.lower()}s (a hot partition or a limit).",
                    "AWS/DynamoDB",
                    f"{kind}ThrottleEvents",
                    dimensions,
                )
    return alarms


def log_groups(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's log group, with the stack's retention, by logical id."""
    return {
        f"{name}LogGroup": {
            "Type": LOG_GROUP,
            "Metadata": {
                "checkov": {
                    "skip": [
                        {
                            "id": "CKV_AWS_158",
                            "comment": "Log lines carry ids, positions and error locations, "
                            "never user text; CloudWatch Logs encrypts them at rest.",
                        },
                        {
                            "id": "CKV_AWS_338",
                            "comment": "Operational logs for debugging; the retention is the "
                            "LogRetentionInDays parameter (30 days unless set).",
                        },
                    ]
                }
            },
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{name}}}"},
                "RetentionInDays": {"Ref": "LogRetentionInDays"},
            },
        }
        for name, resource in template["Resources"].items()
        if resource["Type"] == FUNCTION
    }


def complete(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every derived resource added; a hand-written one of the same id wins."""
    resources = template["Resources"]
    derived = {**function_alarms(template), **table_alarms(template), **log_groups(template)}
    for name, resource in derived.items():
        resources.setdefault(name, resource)
    return template
