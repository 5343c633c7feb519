"""The started runner polls like Lambda: queues in parallel up to their concurrency, a stream
shard one batch at a time and in order. Real queues and a real stream on moto; the handlers are
probes that hold their batch until the test lets them go.
"""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from chalice.app import Blueprint, Chalice, DynamoDBEvent, SQSEvent

from emulator import wake
from emulator.local import free_port
from emulator.runner import DEFAULT_SQS_CONCURRENCY, EventSourceRunner
from emulator.stack import Stack
from emulator.wake import WakeListener
from functions import aws, names
from functions.dynamo import to_item
from tests.helpers import PREFIX, queue_url

WAIT = 30.0


@dataclass
class Probe:
    """In-flight batches of one source: the most at once, and what was delivered, in order."""

    in_flight: int = 0
    most: int = 0
    delivered: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, keys: list[str], pause: float = 0.0) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.release.wait(WAIT)
            time.sleep(pause)  # a handler that takes a moment: room for another batch to overlap
            with self.lock:
                self.delivered += keys
        finally:
            with self.lock:
                self.in_flight -= 1


queue = Probe()
shard = Probe()
bp = Blueprint(__name__)


@bp.on_sqs_message(
    queue=names.queue(PREFIX, "query"), batch_size=1, maximum_concurrency=3, name="slow_queue"
)
def on_message(event: SQSEvent) -> None:
    queue.hold([record.body for record in event])


@bp.on_sqs_message(queue=names.queue(PREFIX, "comments"), batch_size=1, name="default_queue")
def on_default(event: SQSEvent) -> None:
    """Only here for its concurrency: no message is sent to it."""


@bp.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:us-east-1:1:table/{PREFIX}-outbox/stream/x",
    batch_size=3,
    starting_position="TRIM_HORIZON",
    name="slow_shard",
)
def on_record(event: DynamoDBEvent) -> None:
    shard.hold([record.keys["event_id"]["S"] for record in event], pause=0.02)


@pytest.fixture
def probe(deployed: Stack) -> Iterator[EventSourceRunner]:
    global queue, shard
    queue, shard = Probe(), Probe()
    app = Chalice("concurrency-probe")
    app.register_blueprint(bp)
    runner = EventSourceRunner(app, aws.client, "us-east-1")
    yield runner
    queue.release.set()
    shard.release.set()
    runner.stop()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT:g} s: {what}"
        time.sleep(0.02)


def send(count: int) -> list[str]:
    bodies = [f"m{i:02d}" for i in range(count)]
    url = queue_url(names.queue(PREFIX, "query"))
    for body in bodies:
        aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    return bodies


def visible(name: str) -> int:
    """Messages waiting in a queue, not counting those received and in flight."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def runner_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("runner-")]


def test_concurrency_comes_from_the_decorator_or_the_default(probe: EventSourceRunner) -> None:
    assert probe.sources["slow_queue"].concurrency == 3  # type: ignore[attr-defined]
    default = probe.sources["default_queue"].concurrency  # type: ignore[attr-defined]
    assert default == DEFAULT_SQS_CONCURRENCY == 5


def test_a_queue_runs_up_to_its_concurrency_in_parallel_never_more(
    probe: EventSourceRunner,
) -> None:
    # GIVEN nine one-message batches waiting and a handler that holds every batch it gets
    probe.pause("slow_shard")
    bodies = send(9)
    probe.start()
    # WHEN the runner has taken as many batches as it may
    wait_until(lambda: queue.in_flight == 3, "three batches in flight")
    time.sleep(1.5)  # a whole long poll: the receiver would have taken a fourth by now
    # THEN it holds at three and the rest wait in the queue
    assert queue.in_flight == queue.most == 3
    assert visible(names.queue(PREFIX, "query")) == 6
    queue.release.set()
    wait_until(lambda: len(queue.delivered) == 9, "every message delivered")
    assert sorted(queue.delivered) == bodies
    assert queue.most == 3


def test_a_shard_has_one_batch_in_flight_and_keeps_its_order(probe: EventSourceRunner) -> None:
    # GIVEN records on the stream and the queue busy beside it
    keys = [f"k{i:02d}" for i in range(20)]
    table = names.resource(PREFIX, names.OUTBOX_TABLE)
    for key in keys:
        aws.client("dynamodb").put_item(TableName=table, Item=to_item({"event_id": key}))
    send(6)
    shard.release.set()
    queue.release.set()
    # WHEN the runner delivers everything
    probe.start()
    wait_until(lambda: len(shard.delivered) == len(keys), "every record delivered")
    # THEN the shard never had two batches at once, and its records came in order
    assert shard.most == 1
    assert shard.delivered == keys
    wait_until(lambda: len(queue.delivered) == 6, "the queue drained beside it")


def test_a_paused_queue_takes_nothing_until_it_resumes(probe: EventSourceRunner) -> None:
    probe.pause("slow_queue")
    queue.release.set()
    probe.start()
    send(2)
    time.sleep(1.5)  # a whole long poll
    assert queue.delivered == []
    probe.resume("slow_queue")
    wait_until(lambda: len(queue.delivered) == 2, "delivered after the resume")


def test_stop_leaves_no_runner_thread_behind(probe: EventSourceRunner) -> None:
    queue.release.set()
    probe.start()
    send(3)
    wait_until(lambda: len(queue.delivered) == 3, "delivered")
    assert runner_threads()
    probe.stop()
    assert runner_threads() == []


# -- a write, by a queue's handler or a route, is read without waiting for the next look ----

read: list[str] = []
writes = Blueprint(__name__)


@writes.on_sqs_message(queue=names.queue(PREFIX, "moderation"), batch_size=1, name="writer")
def on_write(event: SQSEvent) -> None:
    table = names.resource(PREFIX, names.OUTBOX_TABLE)
    for record in event:
        aws.client("dynamodb").put_item(TableName=table, Item=to_item({"event_id": record.body}))


@writes.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:us-east-1:1:table/{PREFIX}-outbox/stream/x",
    starting_position="TRIM_HORIZON",
    name="reader",
)
def on_read(event: DynamoDBEvent) -> None:
    read.extend(record.keys["event_id"]["S"] for record in event)


@pytest.fixture
def reader(deployed: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventSourceRunner]:
    """A runner of ``writes`` whose idle shard looks again only every 60 s, started once its
    first look (on an empty stream) has finished: from then on only a wake makes it look."""
    read.clear()
    app = Chalice("wake-probe")
    app.register_blueprint(writes)
    runner = EventSourceRunner(app, aws.client, "us-east-1")
    source = runner.sources["reader"]
    looked, poll = threading.Event(), source.poll

    def counted() -> int:
        try:
            return poll()
        finally:
            looked.set()

    monkeypatch.setattr(source, "poll", counted)
    runner.start(interval=60)
    try:
        assert looked.wait(WAIT)
        yield runner
    finally:
        runner.stop()


def test_a_shard_looks_again_as_soon_as_a_queues_handler_has_written(
    reader: EventSourceRunner,
) -> None:
    # GIVEN a started runner whose idle shard waits 60 s between looks
    # WHEN a message arrives whose handler writes an outbox record
    url = queue_url(names.queue(PREFIX, "moderation"))
    aws.client("sqs").send_message(QueueUrl=url, MessageBody="written")
    # THEN the shard delivers it long before its next look
    wait_until(lambda: read == ["written"], "the record read within 30 s, not 60")
    reader.stop()
    assert runner_threads() == []


def test_a_shard_looks_again_as_soon_as_a_route_has_written(reader: EventSourceRunner) -> None:
    # GIVEN a started runner whose idle shard waits 60 s between looks, woken by a listener
    port = free_port()
    listener = WakeListener(port, reader.wake_streams)
    assert listener.start()
    try:
        # WHEN a write is made outside the runner (as chalice local does) and rings
        table = names.resource(PREFIX, names.OUTBOX_TABLE)
        aws.client("dynamodb").put_item(TableName=table, Item=to_item({"event_id": "routed"}))
        wake.ring(port)
        # THEN the shard delivers it long before its next look
        wait_until(lambda: read == ["routed"], "the record read within 30 s, not 60")
    finally:
        listener.stop()
