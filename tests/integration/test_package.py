"""The packaged stack (``make package``): one template, wired, least privilege, shippable.

Packages once per module (about 10 s), then checks the template and the zip offline, and
records every AWS call each function's code makes under moto to compare with its role.
"""

import contextlib
import contextvars
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from emulator import runner
from emulator.control import LocalConsumers
from emulator.local import build_runner
from emulator.runner import EventSourceRunner
from emulator.stack import Stack
from emulator.template import ROOT
from functions import aws, names, settings
from functions.query import recovery
from operations import ops
from tests.conftest import Api
from tests.e2e.test_seed_scenario import run_seed_scenario
from tests.faults import failing
from tests.helpers import PREFIX, scheduled_event
from tests.integration.conftest import functions_of

FUNCTION = contextvars.ContextVar[str | None]("FUNCTION", default=None)


def test_the_zip_ships_app_and_functions(packaged: Path) -> None:
    names = zipfile.ZipFile(packaged.parent / "deployment.zip").namelist()
    assert "app.py" in names
    for module in (
        "functions/publisher.py",
        "functions/subscriptions/follower.py",
        "functions/query/recovery.py",
        "functions/names.py",
    ):
        assert module in names, module
    assert not any(name.startswith(("emulator/", "tests/", "tools/")) for name in names)


def test_the_template_passes_cfn_lint(packaged: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "cfn-lint"), str(packaged)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_event_sources_are_wired_in_the_same_template(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    sources = 0
    for name, properties in functions_of(template).items():
        for event in properties.get("Events", {}).values():
            if event["Type"] not in ("SQS", "DynamoDB"):
                continue
            sources += 1
            settings = event["Properties"]
            target = settings["Queue" if event["Type"] == "SQS" else "Stream"]
            logical, attribute = target["Fn::GetAtt"]
            assert logical in resources, name
            assert attribute == ("Arn" if event["Type"] == "SQS" else "StreamArn")
            assert settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
            if event["Type"] == "DynamoDB":
                assert 0 < settings["MaximumRetryAttempts"] <= 10
                assert settings["BisectBatchOnFunctionError"] is True
                destination = settings["DestinationConfig"]["OnFailure"]["Destination"]
                assert destination == {"Fn::GetAtt": ["PublisherFailureQueue", "Arn"]}
                [only_inserts] = settings["FilterCriteria"]["Filters"]
                assert json.loads(only_inserts["Pattern"]) == {"eventName": ["INSERT"]}
    assert sources == 4  # three queues and the outbox stream


def test_every_function_has_its_own_role_without_wildcards(template: dict[str, Any]) -> None:
    roles = [p["Role"]["Fn::GetAtt"][0] for p in functions_of(template).values()]
    assert len(roles) == len(set(roles)) == len(functions_of(template))
    for role in roles:
        for statement in statements(template, role):
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert all("*" not in action for action in actions), (role, actions)
            assert "*" not in json.dumps(statement["Resource"]).replace("-*", "").replace(
                "/*", ""
            ), role


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]


# --- least privilege: the calls each function makes, against its role ---------------------


def grants(template: dict[str, Any], function: str) -> set[tuple[str, str]]:
    """(IAM action, resource) pairs a function's role allows; resources as logical ids."""
    role = functions_of(template)[function]["Role"]["Fn::GetAtt"][0]
    granted: set[tuple[str, str]] = set()
    for statement in statements(template, role):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            granted |= {(action, logical_resource(r)) for r in resources}
    return granted


def logical_resource(resource: Any) -> str:
    if "Ref" in resource:
        return str(resource["Ref"])
    if "Fn::GetAtt" in resource:
        logical, attribute = resource["Fn::GetAtt"]
        return str(logical) if attribute == "Arn" else f"{logical}.{attribute}"
    text = resource["Fn::Sub"]
    return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)


def required(
    call: tuple[str, str, dict[str, Any]], logical: Callable[[str], str]
) -> set[tuple[str, str]]:
    """The (IAM action, logical resource) pairs one recorded API call needs."""
    service, operation, params = call
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "ConditionCheck": "ConditionCheckItem",
                "Delete": "DeleteItem",
            }
            return {
                (f"dynamodb:{kinds[kind]}", logical(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            }
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return {(f"dynamodb:{operation}", logical(table)) for table in params["RequestItems"]}
        table = logical(params["TableName"])
        if "IndexName" in params:
            table = f"{table}/index/{params['IndexName']}"
        return {(f"dynamodb:{operation}", table)}
    if service == "sns":
        return {("sns:Publish", logical(params["TopicArn"]))}
    if service == "sqs":
        return {(f"sqs:{operation}", logical(params["QueueUrl"]))}
    if service == "s3":
        return {(f"s3:{operation}", f"{logical(params['Bucket'])}/{params['Key'].split('/')[0]}/*")}
    raise AssertionError(f"no IAM mapping for {service}.{operation}")


@pytest.fixture
def recorded(
    monkeypatch: pytest.MonkeyPatch, deployed: Stack
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every AWS call made inside a function, with the function's packaged (logical) name."""
    calls: list[tuple[str, str, str, dict[str, Any]]] = []
    original = runner.resolve_handler

    def attributed(handler_string: str) -> runner.Handler:
        handler = original(handler_string)
        function = handler_function(handler_string)

        def invoke(event: dict[str, Any], context: Any) -> Any:
            with as_function(function):
                return handler(event, context)

        return invoke

    monkeypatch.setattr(runner, "resolve_handler", attributed)
    for service in ("dynamodb", "sns", "sqs", "s3"):
        client = aws.client(service)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            function = FUNCTION.get()
            if function is not None:
                calls.append((function, model.service_model.endpoint_prefix, model.name, params))

        client.meta.events.register(f"provide-client-params.{service}", record)
    return calls


def handler_function(handler_string: str) -> str:
    import app

    [name] = [s.name for s in app.app.event_sources if s.handler_string == handler_string]
    return "".join(part.title() for part in name.split("_"))


@contextlib.contextmanager
def as_function(name: str) -> Iterator[None]:
    token = FUNCTION.set(name)
    try:
        yield
    finally:
        FUNCTION.reset(token)


class ApiHandlerCalls(Api):
    """The HTTP API, with the AWS calls of each request attributed to the APIHandler."""

    def post(self, path: str, body: Any, *, timeout: float | None = None) -> tuple[int, Any]:
        with as_function("APIHandler"):
            return super().post(path, body)

    def get(self, path: str, *, timeout: float | None = None) -> tuple[int, Any]:
        with as_function("APIHandler"):
            return super().get(path)

    def post_once(self, path: str, body: Any, key: str) -> int:
        """A POST with an ``Idempotency-Key`` (a repeat reads the key's record)."""
        with as_function("APIHandler"):
            return int(
                self.client.http.post(
                    path,
                    headers={"Content-Type": "application/json", "Idempotency-Key": key},
                    body=json.dumps(body),
                ).status_code
            )


_POLLER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
SCHEDULED = (
    "QueryRebuild",
    "ModerationCatchUp",
    "CommentsCatchUp",
    "QueryCatchUp",
    "OutboxSweeper",
    "ArchiveSegmenter",
)
PLATFORM_GRANTS: dict[str, set[tuple[str, str]]] = {
    # Lambda's pollers read the queues (decrypting them) and the stream, and write the
    # on-failure destination, with the function's role; SNS encrypts with the topic's key
    # for the publisher's calls.
    **{
        f"{c}Consumer": {
            *((action, f"{c}Queue") for action in _POLLER),
            ("kms:Decrypt", "EventsKey"),
        }
        for c in ("Comments", "Moderation", "Query")
    },
    "OutboxPublisher": {
        *(
            (f"dynamodb:{a}", "OutboxTable.StreamArn")
            for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
        ),
        ("sqs:SendMessage", "PublisherFailureQueue"),
        ("kms:GenerateDataKey", "EventsKey"),
        ("kms:Decrypt", "EventsKey"),
    },
    # Lambda sends a scheduled run that failed its retries to the function's DeadLetterQueue.
    **{
        function: {
            ("sqs:SendMessage", "ScheduleFailureQueue"),
            ("kms:GenerateDataKey", "EventsKey"),
            ("kms:Decrypt", "EventsKey"),
        }
        for function in SCHEDULED
    },
}


def short_name(identifier: str) -> str:
    """A table, queue, topic or bucket name from its name, URL or ARN."""
    return identifier.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def test_no_function_calls_an_action_its_role_does_not_grant(
    template: dict[str, Any],
    recorded: list[tuple[str, str, str, dict[str, Any]]],
    deployed: Stack,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app

    # GIVEN the runner built after the recorder, so every handler call is attributed
    run = build_runner(app.app, aws.client, PREFIX, fast_retry=True)
    consumers = LocalConsumers(run)
    # WHEN every function is exercised: writes and reads, publishing, the consumers, a broker
    # outage and the sweeper, a query outage and its catch-up, and the archive segmenter
    # (HTTP requests are the APIHandler's; the operator's outage is nobody's function)
    http = ApiHandlerCalls(api.client)
    run_seed_scenario(http, run)
    assert [http.post_once("/posts", {"title": "retried"}, "key-1") for _ in "ab"] == [201, 201]
    with failing("sns", "PublishBatch", EndpointConnectionError(endpoint_url="sns")):
        http.post("/posts", {"title": "while SNS is down"})
        run.drain()
    for consumer in names.CONSUMERS:
        ops.outage_start(consumers, consumer, "unsubscribe")
    _, away = http.post("/posts", {"title": "while the consumers are away"})
    http.post(f"/posts/{away['id']}/comments", {"content": "decided by catch-up"})
    http.get("/posts")
    run.pause("outbox_publisher")  # a publisher that never saw a record: the sweeper archives it
    http.post("/posts", {"title": "while the publisher is down"})
    run.fire("outbox_sweeper")
    run.resume("outbox_publisher")
    # (the segmenter before the catch-ups, so they read missed positions from S3; moderation's
    # catch-up decides the comment, and the comments catch-up applies that decision)
    for schedule in (
        "outbox_sweeper",
        "archive_segmenter",
        "moderation_catch_up",
        "comments_catch_up",
        "query_catch_up",
    ):
        run.drain()
        run.fire(schedule)
    run.drain()
    # (the segmenter seals the current bucket partially, then again over its partial segment)
    monkeypatch.setenv("ARCHIVE_SEAL_AGE_SECONDS", "0")
    for title in ("sealed partially", "sealed again"):
        http.post("/posts", {"title": title})
        run.drain()
        run.fire("archive_segmenter")
    # (a rebuild, the operator's, retires the old view version: the query catch-up drops it)
    recovery.rebuild(settings.load())
    run.fire("query_catch_up")
    # (the view's chunked rebuild: started by the function, continued by its schedule)
    start = scheduled_event(start=True)
    runner.resolve_handler("functions.query.blueprint.rebuild")(start, None)
    run.fire("query_rebuild")
    run.fire("query_catch_up")
    by_name = {short_name(physical): logical for logical, physical in deployed.physical_ids.items()}

    def logical(identifier: str) -> str:
        return by_name[short_name(identifier)]

    # THEN every call is allowed by the calling function's own role
    used: dict[str, set[tuple[str, str]]] = {}
    for function, service, operation, params in recorded:
        used.setdefault(function, set()).update(required((service, operation, params), logical))
    assert set(used) == set(functions_of(template))  # every function was exercised
    for function, needed in used.items():
        missing = needed - grants(template, function)
        assert not missing, f"{function} calls what its role does not grant: {sorted(missing)}"
    # AND every grant is used by the code, or by Lambda on the function's behalf
    for function in used:
        unused = grants(template, function) - used[function] - PLATFORM_GRANTS.get(function, set())
        unused = {(a, r) for a, r in unused if not a.startswith("logs:")}
        assert not unused, f"{function}'s role grants what its code does not call: {sorted(unused)}"


def test_the_api_stage_is_throttled(template: dict[str, Any]) -> None:
    [api] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    [setting] = api["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert 0 < setting["ThrottlingRateLimit"] <= setting["ThrottlingBurstLimit"]


def test_concurrency_is_reserved_where_it_protects_the_tables(template: dict[str, Any]) -> None:
    """Each queue consumer is capped (reserved, and its mapping's maximum concurrency no higher,
    so the poller is never throttled into the DLQ); each schedule runs one at a time; any
    function without a reservation says why (checkov's CKV_AWS_115 skip)."""
    resources = template["Resources"]
    for name, function in functions_of(template).items():
        reserved = function.get("ReservedConcurrentExecutions")
        queues = [
            e["Properties"] for e in function.get("Events", {}).values() if e["Type"] == "SQS"
        ]
        schedules = [e for e in function.get("Events", {}).values() if e["Type"] == "Schedule"]
        skips = {
            s["id"] for s in resources[name].get("Metadata", {}).get("checkov", {}).get("skip", [])
        }
        if queues:
            [queue] = queues
            assert reserved is not None, name
            assert reserved >= 2, name
            assert queue["ScalingConfig"]["MaximumConcurrency"] <= reserved, name
        if schedules:
            assert reserved == 1, name
        assert (reserved is None) == ("CKV_AWS_115" in skips), name


ALERTS = {"Fn::If": ["AlertsToTopic", {"Ref": "AlertsTopicArn"}, {"Ref": "AlertsTopic"}]}


def alarms_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_every_alarm_wakes_the_alerts_target(template: dict[str, Any]) -> None:
    """Each alarm publishes to the ``AlertsTopicArn`` topic or, without one, to the stack's own
    alerts topic, which the ``AlertsEmail`` address is subscribed to; a rule refuses a stack
    with neither."""
    alarms = alarms_of(template)
    assert alarms
    for name, alarm in alarms.items():
        assert alarm.get("AlarmActions") == [ALERTS], name
        assert alarm.get("OKActions") == [ALERTS], name
    resources = template["Resources"]
    assert resources["AlertsTopic"]["Condition"] == "CreateAlertsTopic"
    subscription = resources["AlertsSubscription"]
    assert subscription["Condition"] == "CreateAlertsTopic"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlertsEmail"}
    assert {k: v for k, v in template["Conditions"].items() if k != "RateLimited"} == {
        "AlertsToTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertsTopicArn"}, ""]}]},
        "CreateAlertsTopic": {"Fn::Equals": [{"Ref": "AlertsTopicArn"}, ""]},
    }
    [assertion] = template["Rules"]["AlarmsWakeSomeone"]["Assertions"]
    given = [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": p}, ""]}]} for p in ("AlertsEmail", "AlertsTopicArn")
    ]
    assert assertion["Assert"] == {"Fn::Or": given}


def watched(alarm: dict[str, Any]) -> tuple[str, str, str]:
    """(namespace, metric, what): ``what`` is the logical id or name its dimensions point at."""
    values = []
    for dimension in alarm["Dimensions"]:
        value = dimension["Value"]
        if isinstance(value, dict):
            value = value.get("Ref") or value.get("Fn::GetAtt", [None])[0] or value.get("Fn::Sub")
        values.append(str(value))
    return alarm["Namespace"], alarm["MetricName"], "/".join(values)


def failure_signals(template: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Every failure signal of the packaged template, read from its resources."""
    resources = template["Resources"]
    stage = "Prefix"
    signals = {
        (names.METRIC_NAMESPACE, names.OLDEST_UNSENT_METRIC, stage),
        (names.METRIC_NAMESPACE, "RearchivedEvents", stage),
        *(
            (names.METRIC_NAMESPACE, metric, f"{stage}/{consumer}")
            for consumer in names.CONSUMERS
            for metric in (names.CONSUMER_LAG_METRIC, names.PARKED_EVENTS_METRIC)
        ),
        ("AWS/ApiGateway", "5XXError", "${Prefix}-api/api"),
    }
    queues_for_failures = set()
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            signals |= {("AWS/Lambda", metric, name) for metric in ("Errors", "Throttles")}
            for event in properties.get("Events", {}).values():
                if event["Type"] == "DynamoDB":
                    signals.add(("AWS/Lambda", "IteratorAge", name))
                    failure = event["Properties"]["DestinationConfig"]["OnFailure"]
                    queues_for_failures.add(failure["Destination"]["Fn::GetAtt"][0])
            if "DeadLetterQueue" in properties:
                queues_for_failures.add(properties["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0])
        if "RedrivePolicy" in properties:  # a queue's, or a subscription's
            queues_for_failures.add(
                properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            )
        if resource["Type"] == "AWS::SNS::Subscription" and properties["Protocol"] == "sqs":
            signals.add(("AWS/SNS", "NumberOfNotificationsFailed", properties["TopicArn"]["Ref"]))
        if resource["Type"] == "AWS::DynamoDB::Table":
            for kind in ("ReadThrottleEvents", "WriteThrottleEvents"):
                signals.add(("AWS/DynamoDB", kind, name))
                for index in properties.get("GlobalSecondaryIndexes", []):
                    signals.add(("AWS/DynamoDB", kind, f"{name}/{index['IndexName']}"))
    signals |= {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue) for queue in queues_for_failures
    }
    return signals


def test_every_failure_signal_has_an_alarm(template: dict[str, Any]) -> None:
    signals = failure_signals(template)
    # (the signals the issue names are all among them, read from the template)
    kinds = {(namespace, metric) for namespace, metric, _ in signals}
    assert {metric for _, metric in kinds} >= {
        "IteratorAge",
        "Errors",
        "Throttles",
        "5XXError",
        "ApproximateNumberOfMessagesVisible",
        "NumberOfNotificationsFailed",
        "RearchivedEvents",
        names.CONSUMER_LAG_METRIC,
        names.PARKED_EVENTS_METRIC,
        "WriteThrottleEvents",
    }
    assert ("AWS/DynamoDB", "WriteThrottleEvents", "OutboxTable/unsent-index") in signals
    assert len({q for n, m, q in signals if m == "ApproximateNumberOfMessagesVisible"}) == 6
    alarmed = {watched(alarm) for alarm in alarms_of(template).values()}
    assert not signals - alarmed, f"failure signals without an alarm: {sorted(signals - alarmed)}"
    assert not alarmed - signals, f"alarms on no known signal: {sorted(alarmed - signals)}"


def test_the_api_is_named_as_its_5xx_alarm_says(template: dict[str, Any]) -> None:
    [api] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    assert api["Properties"]["Name"] == {"Fn::Sub": "${Prefix}-api"}
    assert api["Properties"]["StageName"] == "api"


def test_the_sweeper_and_catch_up_emit_the_alarmed_metrics(
    runner: EventSourceRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.fire("outbox_sweeper")
    for consumer in names.CONSUMERS:
        runner.fire(f"{consumer}_catch_up")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    emitted = {
        (metric["Name"], line[names.METRIC_DIMENSION], line.get(names.CONSUMER_DIMENSION))
        for line in lines
        for directive in line["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] == names.METRIC_NAMESPACE
        for metric in directive["Metrics"]
    }
    assert emitted == {
        (names.OLDEST_UNSENT_METRIC, PREFIX, None),
        *((names.CONSUMER_LAG_METRIC, PREFIX, consumer) for consumer in names.CONSUMERS),
        *((names.PARKED_EVENTS_METRIC, PREFIX, consumer) for consumer in names.CONSUMERS),
    }


CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def test_checkov_finds_no_failed_check_and_every_skip_is_justified(
    packaged: Path, template: dict[str, Any]
) -> None:
    if not CHECKOV.exists():
        assert os.environ.get("CI") != "true", "make test installs checkov into .venv-checkov"
        pytest.skip("checkov is not installed: `make test` installs it into .venv-checkov")
    result = subprocess.run(  # noqa: S603
        [
            str(CHECKOV),
            "--quiet",
            "--skip-download",
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "-f",
            str(packaged),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, [
        (f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]
    ]
    assert report["summary"]["passed"] > 100
    for resource in template["Resources"].values():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, skip
