"""The local engine keeps AWS's time (emulator/aws_time.py): each rule, on moto, on one clock.

The stack is the template's, deployed into moto; the clock moves the whole process's wall
clock, so these run in no more real time than any other test.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.aws_time import CLOCK, Clock, LambdaTimedOut, expire_items, stream_mapping
from emulator.runner import EventSourceRunner
from functions import archive, aws, names, settings
from tests.conftest import Api
from tests.faults import failing
from tests.helpers import PREFIX, queue_url, scan

DAY = 86_400


@pytest.fixture
def clock(deployed: Any) -> Iterator[Clock]:
    CLOCK.start()
    try:
        yield CLOCK
    finally:
        CLOCK.stop()


def test_the_clock_moves_the_wall_clock_and_gives_it_back() -> None:
    import time

    before = time.time()
    CLOCK.start()
    try:
        CLOCK.jump(30 * DAY)
        assert time.time() - before >= 30 * DAY
    finally:
        CLOCK.stop()
    assert time.time() - before < DAY


# -- DynamoDB TTL ------------------------------------------------------------------------------


def put_archive_item(position: int, expires: Any) -> None:
    item = {"bucket": {"N": "0"}, "position": {"N": str(position)}}
    if expires is not None:
        item[names.ARCHIVE_TTL_ATTRIBUTE] = expires
    aws.client("dynamodb").put_item(
        TableName=names.resource(PREFIX, names.ARCHIVE_TABLE), Item=item
    )


def archive_positions() -> list[int]:
    return sorted(int(i["position"]) for i in scan(names.ARCHIVE_TABLE))


def test_ttl_deletes_every_item_once_its_time_is_past_and_nothing_else(clock: Clock) -> None:
    # GIVEN items expiring in an hour and in two days, one without a TTL, one with a string
    now = clock.now()
    put_archive_item(1, {"N": str(int(now + 3600))})
    put_archive_item(2, {"N": str(int(now + 2 * DAY))})
    put_archive_item(3, None)
    put_archive_item(4, {"S": str(int(now - DAY))})
    # THEN before its time an item stays (and is read), after it, it is gone at once
    assert clock.advance(3000) == 0
    assert archive_positions() == [1, 2, 3, 4]
    assert clock.advance(601) == 1
    assert archive_positions() == [2, 3, 4]
    # AND an item with no TTL, or a TTL that is not a number, never expires
    assert clock.advance(30 * DAY) == 1
    assert archive_positions() == [3, 4]
    assert expire_items() == 0


# -- SQS ---------------------------------------------------------------------------------------


def queue(consumer: str = "query") -> str:
    return queue_url(names.queue(PREFIX, consumer))


def attributes(url: str) -> dict[str, Any]:
    return dict(
        aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    )


def receive(url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        aws.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
        .get("Messages", [])
    )
    return messages


def test_a_message_older_than_its_queues_retention_is_gone(clock: Clock) -> None:
    url = queue()
    retention = int(attributes(url)["MessageRetentionPeriod"])
    assert retention == 7 * DAY  # the template's (its DLQ keeps 14 days)
    aws.client("sqs").send_message(QueueUrl=url, MessageBody="old")
    clock.advance(retention - 60)
    assert (
        aws.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "1"
    )
    clock.advance(120)
    assert attributes(url)["ApproximateNumberOfMessages"] == "0"
    assert receive(url) == []


def test_a_received_message_is_hidden_for_the_visibility_timeout_then_dead_lettered(
    clock: Clock,
) -> None:
    url = queue()
    visibility = int(attributes(url)["VisibilityTimeout"])
    max_receives = int(json.loads(attributes(url)["RedrivePolicy"])["maxReceiveCount"])
    assert (visibility, max_receives) == (180, 5)  # the template's
    aws.client("sqs").send_message(QueueUrl=url, MessageBody="failing")
    for receipt in range(1, max_receives + 1):
        [message] = receive(url)
        assert message["Attributes"]["ApproximateReceiveCount"] == str(receipt)
        clock.advance(visibility - 5)
        assert receive(url) == [], "visible again before its visibility timeout"
        clock.advance(10)
    # after maxReceiveCount receives, the next receive moves it to the DLQ
    assert receive(url) == []
    dead = receive(queue_url(names.dead_letter_queue(PREFIX, "query")))
    assert [m["Body"] for m in dead] == ["failing"]


# -- DynamoDB Streams and its mapping ------------------------------------------------------------


def test_a_stream_record_older_than_24_hours_is_trimmed_and_the_sweeper_publishes_it(
    api: Api, runner: EventSourceRunner, clock: Clock
) -> None:
    # GIVEN a post whose outbox record the stream publisher does not read for a day
    runner.pause("outbox_publisher")
    _, post = api.post("/posts", {"title": "left a day"})
    clock.advance(DAY + 60)
    # WHEN the publisher reads its shard again
    runner.resume("outbox_publisher")
    runner.drain()
    # THEN the record was trimmed: never delivered to the publisher, still unsent
    assert runner.sources["outbox_publisher"].stats.invocations == 0
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [False]
    # AND the sweeper publishes it from the outbox
    runner.fire("outbox_sweeper")
    runner.drain()
    assert api.get(f"/posts/{post['id']}")[1]["title"] == "left a day"


def failure_queue_depth() -> int:
    url = queue_url(names.resource(PREFIX, names.PUBLISHER_FAILURES_QUEUE))
    return int(attributes(url)["ApproximateNumberOfMessages"])


def unavailable() -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError"}}, "UpdateItem")


def test_the_stream_mapping_retries_a_young_batch_and_gives_up_an_old_one_at_once(
    api: Api, runner: EventSourceRunner, clock: Clock
) -> None:
    mapping = stream_mapping("OutboxPublisher")
    assert (mapping.maximum_retry_attempts, mapping.maximum_record_age_seconds) == (3, 3600)
    publisher = runner.sources["outbox_publisher"]
    # GIVEN a young record whose claim fails every time: retried, then given up
    api.post("/posts", {"title": "young"})
    with failing("dynamodb", "TransactWriteItems", unavailable()):  # the claim
        runner.drain()
    assert publisher.stats.failures == 1 + mapping.maximum_retry_attempts
    assert failure_queue_depth() == 1
    # GIVEN a record older than MaximumRecordAgeInSeconds (younger than the stream's 24 h)
    runner.pause("outbox_publisher")
    api.post("/posts", {"title": "old"})
    clock.advance(mapping.maximum_record_age_seconds + 60)
    runner.resume("outbox_publisher")
    with failing("dynamodb", "TransactWriteItems", unavailable()):  # the claim
        runner.drain()
    # THEN it is given up after its first failure, not retried
    assert publisher.stats.failures == 1 + mapping.maximum_retry_attempts + 1
    assert failure_queue_depth() == 2


def test_a_failed_batch_is_bisected(api: Api, runner: EventSourceRunner, clock: Clock) -> None:
    assert stream_mapping("OutboxPublisher").bisect_on_error
    runner.pause("outbox_publisher")
    for index in range(4):
        api.post("/posts", {"title": f"batch {index}"})
    runner.resume("outbox_publisher")
    publisher = runner.sources["outbox_publisher"]
    with failing("dynamodb", "TransactWriteItems", unavailable(), times=1):  # the claim
        publisher.poll()  # 4 records, fails
        publisher.poll()  # the first half
    assert (publisher.stats.invocations, publisher.stats.records) == (2, 4 + 2)
    runner.drain()
    assert {p["title"] for p in api.get("/posts")[1].values()} == {f"batch {i}" for i in range(4)}


# -- Lambda timeout ------------------------------------------------------------------------------


def test_a_handler_past_its_timeout_is_stopped_and_its_writes_stay(
    api: Api, runner: EventSourceRunner, clock: Clock
) -> None:
    # GIVEN a publisher whose SNS call comes after its 60 s timeout (a slow archive write)
    def slow(params: dict[str, Any]) -> bool:
        clock.jump(61)
        return False

    api.post("/posts", {"title": "slow"})
    with failing("dynamodb", "BatchWriteItem", unavailable(), when=slow):
        runner.sources["outbox_publisher"].poll()
    # THEN it was stopped at its next call: allocated and archived, not published
    publisher = runner.sources["outbox_publisher"]
    assert publisher.stats.failures == 1
    assert archive.head(settings.load()).position == 1
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [False]
    # AND the sweeper rescues it (archived again: the one double the design allows, counted)
    runner.drain()
    runner.fire("outbox_sweeper")
    runner.drain()
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [True]
    assert archive.head(settings.load()).rearchived == 1
    assert [p["title"] for p in api.get("/posts")[1].values()] == ["slow"]


def test_a_timed_out_invocation_cannot_carry_on_by_catching_exceptions(clock: Clock) -> None:
    from emulator.aws_time import invocation

    caught: list[Exception] = []

    def handler() -> None:
        clock.jump(31)
        try:
            aws.client("sqs").list_queues()
        except Exception as error:  # what a careless handler might do
            caught.append(error)

    with pytest.raises(LambdaTimedOut), invocation("QueryConsumer"):
        handler()
    assert caught == []


def test_the_12_hour_visibility_limit_counts_from_the_receive(clock: Clock) -> None:
    # GIVEN a message that waited 13 hours in its queue before it was received
    url = queue()
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="waited")
    clock.advance(13 * 3600)
    [message] = receive(url)
    # THEN its visibility can still be changed (SQS counts the 12 hours from the receive)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=3600
    )
    # AND not beyond 12 hours from that receive
    clock.advance(2 * 3600)
    with pytest.raises(ClientError, match="beyond the limit"):
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=11 * 3600
        )
