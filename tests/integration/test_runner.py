"""The event-source runner drives handlers the way Lambda's event source mappings do.

A throwaway app registers its own handlers on the stack's outbox stream and query queue, so
the runner's rules can be checked with handlers that fail on purpose.
"""

import json
import threading
import time
from typing import Any

import pytest
from chalice.app import Blueprint, Chalice, CloudWatchEvent, DynamoDBEvent, Rate, SQSEvent

from emulator.runner import EventSourceRunner, ScheduleSource
from emulator.stack import Stack
from functions import aws, names
from functions.dynamo import to_item
from tests.helpers import PREFIX, queue_depth, queue_url, receive_all

bp = Blueprint(__name__)
seen: list[str] = []
fail_on: dict[str, int] = {}  # record key -> failures left
failures_reported: list[dict[str, Any]] = []


@bp.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:us-east-1:1:table/{PREFIX}-outbox/stream/x",
    batch_size=10,
    starting_position="TRIM_HORIZON",
    name="stream_probe",
)
def on_record(event: DynamoDBEvent) -> dict[str, Any]:
    for record in event:
        key = record.keys["event_id"]["S"]
        seen.append(key)
        if fail_on.get(key, 0) > 0:
            fail_on[key] -= 1
            return {"batchItemFailures": [{"itemIdentifier": record.sequence_number}]}
    return {"batchItemFailures": []}


@bp.on_sqs_message(queue=names.queue(PREFIX, "query"), batch_size=10, name="queue_probe")
def on_message(event: SQSEvent) -> dict[str, Any]:
    failed = []
    for record in event:
        seen.append(record.body)
        if record.body.startswith("bad"):
            failed.append({"itemIdentifier": record.to_dict()["messageId"]})
    return {"batchItemFailures": failed}


@bp.on_sqs_message(queue=names.queue(PREFIX, "comments"), name="raising_probe")
def raising(event: SQSEvent) -> None:
    raise RuntimeError("boom")


def probe_runner(**options: Any) -> EventSourceRunner:
    seen.clear()
    fail_on.clear()
    failures_reported.clear()
    app = Chalice("probe")
    app.register_blueprint(bp)
    return EventSourceRunner(
        app,
        aws.client,
        "us-east-1",
        max_stream_retries=2,
        on_stream_failure=failures_reported.append,
        **options,
    )


schedule_running = threading.Event()
release_schedule = threading.Event()
schedule_finished = threading.Event()


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="slow_schedule_probe")
def slow_schedule(event: CloudWatchEvent) -> None:
    """A scheduled run that takes as long as the test says (a long catch-up)."""
    schedule_running.set()
    release_schedule.wait(timeout=30)
    schedule_finished.set()


@pytest.fixture
def probe(deployed: Stack) -> EventSourceRunner:
    return probe_runner()


def put(key: str) -> None:
    aws.client("dynamodb").put_item(
        TableName=names.resource(PREFIX, names.OUTBOX_TABLE), Item=to_item({"event_id": key})
    )


def test_stream_retries_from_the_first_failed_record(probe: EventSourceRunner) -> None:
    probe.pause("queue_probe")
    probe.pause("raising_probe")
    for key in "abcd":
        put(key)
    fail_on["c"] = 1
    probe.drain()
    # a and b are not delivered again; c is retried once, then the batch goes on
    assert seen == ["a", "b", "c", "c", "d"]
    assert failures_reported == []


def test_stream_gives_up_after_the_retries_and_reports_the_batch(probe: EventSourceRunner) -> None:
    probe.pause("queue_probe")
    probe.pause("raising_probe")
    for key in "ab":
        put(key)
    fail_on["a"] = 99
    probe.drain()
    assert seen == ["a", "a", "a"]  # the first try and two retries; then skipped with b
    [report] = failures_reported
    assert report["DDBStreamBatchInfo"]["batchSize"] == 2
    put("c")
    probe.drain()
    assert seen[-1] == "c"


def test_sqs_deletes_only_the_successes(probe: EventSourceRunner) -> None:
    probe.pause("stream_probe")
    probe.pause("raising_probe")
    sqs, url = aws.client("sqs"), queue_url(names.queue(PREFIX, "query"))
    for body in ("good-1", "bad", "good-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    probe.drain()
    assert seen.count("good-1") == seen.count("good-2") == 1
    redrive = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    max_receives = json.loads(redrive["Attributes"]["RedrivePolicy"])["maxReceiveCount"]
    assert seen.count("bad") == int(max_receives) == 5  # then the redrive policy takes it
    assert [m["Body"] for m in receive_all(names.dead_letter_queue(PREFIX, "query"))] == ["bad"]


def test_a_raising_handler_fails_the_whole_batch(probe: EventSourceRunner) -> None:
    probe.pause("stream_probe")
    probe.pause("queue_probe")
    sqs, url = aws.client("sqs"), queue_url(names.queue(PREFIX, "comments"))
    sqs.send_message(QueueUrl=url, MessageBody="x")
    probe.drain()
    assert probe.sources["raising_probe"].stats.failures == 5  # maxReceiveCount
    assert queue_depth(names.dead_letter_queue(PREFIX, "comments")) == 1


def test_a_paused_source_is_not_polled(probe: EventSourceRunner) -> None:
    probe.pause("stream_probe")
    probe.pause("raising_probe")
    probe.pause("queue_probe")
    put("a")
    assert probe.drain() == 0
    probe.resume("stream_probe")
    probe.drain()
    assert seen == ["a"]


def test_a_stream_filter_delivers_only_matching_records(deployed: Stack) -> None:
    # GIVEN the stream probe filtered to inserts, as the outbox publisher is on AWS
    probe = probe_runner(stream_filters={"stream_probe": [{"eventName": ["INSERT"]}]})
    probe.pause("queue_probe")
    probe.pause("raising_probe")
    put("a")
    probe.drain()
    # WHEN the record is modified twice, and one more is inserted
    for change in (1, 2):
        aws.client("dynamodb").put_item(
            TableName=names.resource(PREFIX, names.OUTBOX_TABLE),
            Item=to_item({"event_id": "a", "change": change}),
        )
    probe.drain()
    assert probe.sources["stream_probe"].stats.invocations == 1, "a batch of changes only: no call"
    put("b")
    probe.drain()
    # THEN only the inserts were delivered, one invocation each
    assert seen == ["a", "b"]
    assert probe.sources["stream_probe"].stats.invocations == 2


def test_a_filter_for_a_source_that_is_not_a_stream_is_refused(deployed: Stack) -> None:
    with pytest.raises(ValueError, match=r"filters for \['queue_probe'\]: not streams"):
        probe_runner(stream_filters={"queue_probe": [{"eventName": ["INSERT"]}]})


def test_a_long_scheduled_run_does_not_hold_up_delivery(probe: EventSourceRunner) -> None:
    # GIVEN the runner in the background, its schedule in the middle of a long run
    probe.pause("stream_probe")
    probe.pause("raising_probe")
    schedule_running.clear()
    release_schedule.clear()
    schedule = probe.sources["slow_schedule_probe"]
    assert isinstance(schedule, ScheduleSource)
    schedule.due_now()  # not in a minute
    probe.start(interval=0.05)
    try:
        assert schedule_running.wait(timeout=10)
        # WHEN a message arrives on a queue meanwhile
        sqs = aws.client("sqs")
        sqs.send_message(QueueUrl=queue_url(names.queue(PREFIX, "query")), MessageBody="now")
        # THEN it is delivered while the scheduled run still goes on
        deadline = time.monotonic() + 20
        while "now" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "now" in seen
        assert not release_schedule.is_set()
    finally:
        release_schedule.set()
        probe.stop()


def test_started_a_resume_hook_runs_on_the_schedule_thread(deployed: Stack) -> None:
    """The control API's resume answers at once; the catch-up it triggers runs beside."""
    probe = probe_runner(on_resume={"queue_probe": "slow_schedule_probe"})
    for event in (schedule_running, release_schedule, schedule_finished):
        event.clear()
    probe.start(interval=0.05)
    try:
        probe.pause("queue_probe")
        probe.resume("queue_probe")
        assert not schedule_finished.is_set(), "resume waited for its hook"
        assert schedule_running.wait(timeout=10), "the schedule thread ran the hook"
    finally:
        release_schedule.set()
        probe.stop()
    assert schedule_finished.is_set()
