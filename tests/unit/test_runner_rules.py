"""The runner's reading of Lambda's rules: batch item failures, schedules, stream ARNs."""

import pytest

from emulator.runner import compile_filter, failed_ids, rate_seconds, table_of_stream

IDS = ["1", "2", "3"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "2"}]}, ["2"]),
        ({"batchItemFailures": [{"itemIdentifier": "9"}]}, None),  # unknown id: all failed
        ({"batchItemFailures": "2"}, None),
        ("ok", None),
    ],
)
def test_batch_item_failures_are_read_as_lambda_reads_them(
    response: object, failed: list[str] | None
) -> None:
    assert failed_ids(response, IDS) == failed


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    with pytest.raises(ValueError, match="unsupported schedule"):
        rate_seconds("cron(0 12 * * ? *)")


def test_table_of_stream() -> None:
    arn = "arn:aws:dynamodb:us-east-1:1:table/blog-outbox/stream/2026-01-01T00:00:00.000"
    assert table_of_stream(arn) == "blog-outbox"
    with pytest.raises(ValueError, match="not a DynamoDB stream ARN"):
        table_of_stream("arn:aws:sqs:us-east-1:1:queue")


def test_a_filter_pattern_matches_exact_values_and_nested_patterns() -> None:
    inserts = compile_filter({"eventName": ["INSERT"]})
    assert inserts({"eventName": "INSERT", "dynamodb": {}})
    assert not inserts({"eventName": "MODIFY"})
    assert not inserts({})
    nested = compile_filter({"dynamodb": {"Keys": {"kind": ["post", "comment"]}}})
    assert nested({"dynamodb": {"Keys": {"kind": "comment"}}})
    assert not nested({"dynamodb": {"Keys": {"kind": "like"}}})
    assert not nested({"dynamodb": "not an object"})


@pytest.mark.parametrize("rule", [[{"prefix": "IN"}], [], "INSERT", [{"exists": True}], [1.5]])
def test_a_filter_rule_the_runner_cannot_apply_is_refused(rule: object) -> None:
    with pytest.raises(ValueError, match="is not emulated"):
        compile_filter({"eventName": rule})
