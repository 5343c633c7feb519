"""The local event-source runner: what Lambda's event source mappings and schedules do on AWS.

``chalice local`` serves only HTTP routes and moto runs no Lambda code without Docker, so this
runner reads the event sources registered on the Chalice app and drives the real handlers:

- a DynamoDB stream source reads the (moto) stream shard one batch at a time, in order, and,
  like Lambda, retries from the first record a handler reports in ``batchItemFailures`` (or the
  whole batch if the handler raised), halving the batch if the template sets
  ``BisectBatchOnFunctionError``, and after ``MaximumRetryAttempts`` (``max_stream_retries``
  where the template sets none), or once the batch's oldest record is older than
  ``MaximumRecordAgeInSeconds``, sends the batch's description to an on-failure callback and
  moves on; it skips records older than the stream's 24 hours (trimmed); it delivers only the
  records its filter patterns match (Lambda's ``FilterCriteria``, exact values only) and skips
  a batch none of them match;
- an SQS source receives up to ``batch_size`` messages, deletes only the ones that succeeded
  and leaves the rest to come back after the visibility timeout (``fast_retry`` makes them
  visible at once, standing in for the wait) until the redrive policy moves them to the DLQ;
  started, it long-polls and runs up to ``concurrency`` batches at once, as Lambda's SQS
  pollers do;
- a schedule source fires at its ``rate(...)``; ``on_resume`` ties a schedule to a source,
  to run when the source resumes (the query consumer's catch-up).

Each invocation runs under its function's ``Timeout`` from the template, on the clock of
``emulator/aws_time.py`` (which states each of these AWS rules and its documentation page).

Handlers are imported by their Lambda handler string (``module.function``), as Lambda does, so
``app.py`` is not in the call path. Any source can be paused and resumed, as disabling an event
source mapping does. ``drain()`` polls every source in turn on the caller's thread until nothing
is left (deterministic, for tests); ``start()`` polls each source on its own thread(s), like
Lambda's pollers (local development): one per stream shard, one long-polling receiver per queue
feeding up to ``concurrency`` delivery threads, and one for the schedules.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice, DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

from emulator import aws_time

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"
SQS_MAX_BATCH = 10
DEFAULT_SQS_CONCURRENCY = 5
"""Concurrent batches per SQS source without ``maximum_concurrency``: Lambda's SQS scaling
starts with five concurrent batches (and grows with the backlog; locally it stays at five)."""
LONG_POLL_SECONDS = 1
"""A started SQS source's receive wait. Lambda's pollers wait 20 s; one second here, so that
``stop()`` (Ctrl+C) returns within about a second."""
Handler = Callable[[dict[str, Any], Any], Any]
ClientFactory = Callable[[str], Any]


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 128
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"

    deadline: float = math.inf
    """When the invocation times out (``aws_time.invocation``); none on the real clock."""

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline == math.inf:
            return 60_000
        return max(0, int((self.deadline - time.time()) * 1000))


def resolve_handler(handler_string: str) -> Handler:
    """Import ``package.module.function`` the way the Lambda runtime does."""
    module_name, _, attribute = handler_string.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def failed_ids(response: Any, all_ids: list[str]) -> list[str] | None:
    """The ids a handler reported as failed; ``None`` for a malformed response (all failed)."""
    if response is None:
        return []
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures", [])
    if not isinstance(failures, list):
        return None
    ids = [f.get("itemIdentifier") for f in failures if isinstance(f, dict)]
    if len(ids) != len(failures) or any(i not in all_ids for i in ids):
        return None
    return [str(i) for i in ids]


@dataclass
class Stats:
    """What a source has done since the runner started."""

    invocations: int = 0
    records: int = 0
    failures: int = 0


class Source:
    kind = "source"

    def __init__(self, name: str, handler: Handler, region: str) -> None:
        self.name, self._handler, self._region = name, handler, region
        self.paused = False
        self.stats = Stats()
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()  # an SQS source's batches count from several threads

    def poll(self) -> int:
        """Deliver at most one batch, without waiting; the number of records taken.

        One ``poll`` of a source at a time (``drain`` and ``fire``; a stream shard's thread
        too, so a shard never has two batches in flight); different sources run side by side.
        """
        with self._lock:
            return self._poll()

    def _poll(self) -> int:
        raise NotImplementedError

    def _count(self, invocations: int = 0, records: int = 0, failures: int = 0) -> None:
        with self._stats_lock:
            self.stats.invocations += invocations
            self.stats.records += records
            self.stats.failures += failures

    def _invoke(self, event: dict[str, Any], records: int) -> tuple[bool, Any]:
        self._count(invocations=1, records=records)
        try:
            with aws_time.invocation(aws_time.function_name(self.name)) as deadline:
                context = LambdaContext(self.name, self._region, deadline=deadline)
                return True, self._handler(event, context)
        except (Exception, aws_time.LambdaTimedOut):
            logger.exception("%s: handler raised; the whole batch failed", self.name)
            return False, None


class SqsSource(Source):
    kind = "sqs"

    def __init__(
        self,
        config: SQSEventConfig,
        handler: Handler,
        region: str,
        sqs: Any,
        fast_retry: bool,
        concurrency: int,
    ) -> None:
        super().__init__(config.name, handler, region)
        if concurrency < 1:
            raise ValueError(f"{config.name}: concurrency must be at least 1, not {concurrency}")
        queue = config.queue or str(config.queue_arn).rsplit(":", 1)[-1]
        self.queue_url: str = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        self.queue_arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}"
        self._sqs, self._batch, self._fast_retry = sqs, config.batch_size, fast_retry
        self.concurrency = concurrency

    def _poll(self) -> int:
        messages = self.receive(wait_seconds=0)
        if messages:
            self.deliver(messages)
        return len(messages)

    def receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        """One batch from the queue, waiting up to ``wait_seconds`` for one (long polling)."""
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self._batch, SQS_MAX_BATCH),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        ).get("Messages", [])
        return messages

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        """Invoke the handler with one received batch; delete the successes."""
        ok, response = self._invoke({"Records": [self._record(m) for m in messages]}, len(messages))
        ids = [m["MessageId"] for m in messages]
        failed = failed_ids(response, ids) if ok else None
        failed_set = set(ids if failed is None else failed)
        done = [m for m in messages if m["MessageId"] not in failed_set]
        retry = [m for m in messages if m["MessageId"] in failed_set]
        self._count(failures=len(retry))
        self._settle(done, retry)

    def give_back(self, messages: list[dict[str, Any]]) -> None:
        """Make received messages visible again undelivered (received as the source paused)."""
        self._make_visible(messages)

    def _settle(self, done: list[dict[str, Any]], retry: list[dict[str, Any]]) -> None:
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        if retry and self._fast_retry:
            self._make_visible(retry)

    def _make_visible(self, messages: list[dict[str, Any]]) -> None:
        if messages:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages)
                ],
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self._region,
        }


class StreamSource(Source):
    kind = "dynamodb-stream"

    def __init__(
        self,
        config: DynamoDBEventConfig,
        handler: Handler,
        region: str,
        dynamodb: Any,
        streams: Any,
        max_retries: int,
        on_failure: Callable[[dict[str, Any]], None] | None,
        patterns: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(config.name, handler, region)
        self._filters = [compile_filter(pattern) for pattern in patterns or []]
        table = table_of_stream(config.stream_arn)
        self.stream_arn: str = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._streams, self._batch = streams, config.batch_size
        self._max_retries, self._on_failure = max_retries, on_failure
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self._shard = shards[0]["ShardId"]
        self._iterator: str | None = self._new_iterator(config.starting_position)
        self._attempt = 0
        self._mapping = aws_time.stream_mapping(aws_time.function_name(config.name))
        if self._mapping.maximum_retry_attempts >= 0:  # the template's, where it sets one
            self._max_retries = self._mapping.maximum_retry_attempts
        self._limit = self._batch  # halved on each failure with BisectBatchOnFunctionError

    def _new_iterator(self, iterator_type: str, sequence_number: str | None = None) -> str:
        arguments = {
            "StreamArn": self.stream_arn,
            "ShardId": self._shard,
            "ShardIteratorType": iterator_type,
        }
        if sequence_number is not None:
            arguments["SequenceNumber"] = sequence_number
        iterator: str = self._streams.get_shard_iterator(**arguments)["ShardIterator"]
        return iterator

    def _poll(self) -> int:
        response = self._streams.get_records(ShardIterator=self._iterator, Limit=self._limit)
        records = response["Records"]
        if not records:
            self._iterator = response.get("NextShardIterator", self._iterator)
            return 0
        retained = [r for r in records if aws_time.stream_retained(r)]  # the rest are trimmed
        wanted = [e for e in map(self._record, retained) if self._wanted(e)]
        if not wanted:  # Lambda does not invoke for a batch its filters drop whole
            self._iterator = response["NextShardIterator"]
            return len(records)
        ok, result = self._invoke({"Records": wanted}, len(wanted))
        numbers = [e["dynamodb"]["SequenceNumber"] for e in wanted]
        failed = failed_ids(result, numbers) if ok else None
        if failed == []:
            self._attempt, self._limit = 0, self._batch
            self._iterator = response["NextShardIterator"]
            return len(records)
        self._count(failures=1)
        first_failed = numbers[0] if failed is None else min(failed, key=int)
        self._attempt += 1
        if self._mapping.bisect_on_error:
            self._limit = max(1, len(wanted) // 2)
        if self._attempt <= self._max_retries and not self._too_old(wanted):
            self._iterator = self._new_iterator("AT_SEQUENCE_NUMBER", first_failed)
        else:
            self._give_up(first_failed, numbers[-1], len(wanted))
            self._iterator = response["NextShardIterator"]
        return len(records)

    def _too_old(self, batch: list[dict[str, Any]]) -> bool:
        """Whether the batch's oldest record is past the mapping's ``MaximumRecordAgeInSeconds``."""
        limit = self._mapping.maximum_record_age_seconds
        now = time.time()
        oldest = min(float(e["dynamodb"].get("ApproximateCreationDateTime", now)) for e in batch)
        return limit >= 0 and now - oldest > limit

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self._filters or any(matches(record) for matches in self._filters)

    def _give_up(self, first: str, last: str, size: int) -> None:
        """Like Lambda after ``MaximumRetryAttempts`` (or ``MaximumRecordAgeInSeconds``): report
        the batch and skip it."""
        self._attempt, self._limit = 0, self._batch
        logger.error("%s: records %s..%s failed every retry; skipped", self.name, first, last)
        if self._on_failure is not None:
            self._on_failure(
                {
                    "requestContext": {
                        "functionArn": LambdaContext(self.name, self._region).invoked_function_arn
                    },
                    "DDBStreamBatchInfo": {
                        "shardId": self._shard,
                        "startSequenceNumber": first,
                        "endSequenceNumber": last,
                        "batchSize": size,
                        "streamArn": self.stream_arn,
                    },
                }
            )

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }


def compile_filter(pattern: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A Lambda event filter pattern as a predicate on a record.

    Only the forms this project uses: a key's rule is a list of exact values, or a nested
    pattern. Any other rule (prefix, numeric, exists...) is refused here, not misapplied.
    """
    nested = {key: compile_filter(rule) for key, rule in pattern.items() if isinstance(rule, dict)}
    exact: dict[str, tuple[Any, ...]] = {}
    for key, rule in pattern.items():
        if isinstance(rule, list) and rule and all(isinstance(v, str | int) for v in rule):
            exact[key] = tuple(rule)
        elif key not in nested:
            raise ValueError(f"filter rule {key}: {rule!r} is not emulated: use exact values")

    def matches(record: dict[str, Any]) -> bool:
        return all(record.get(key) in allowed for key, allowed in exact.items()) and all(
            isinstance(record.get(key), dict) and inner(record[key])
            for key, inner in nested.items()
        )

    return matches


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of a ``rate(N unit)`` schedule expression."""
    match = _RATE.match(expression)
    if match is None:
        raise ValueError(f"unsupported schedule expression {expression!r}: use rate(N unit)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class ScheduleSource(Source):
    kind = "schedule"

    def __init__(self, config: ScheduledEventConfig, handler: Handler, region: str) -> None:
        super().__init__(config.name, handler, region)
        expression = config.schedule_expression
        text = expression if isinstance(expression, str) else expression.to_string()
        self.every = rate_seconds(text)
        self._next = time.monotonic() + self.every

    def due(self, now: float) -> bool:
        return not self.paused and now >= self._next

    def due_now(self) -> None:
        """Run at the schedule thread's next look, not at the end of the current interval."""
        self._next = time.monotonic()

    def _poll(self) -> int:
        """Fire once, now."""
        self._next = time.monotonic() + self.every
        ok, _ = self._invoke(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self._region,
                "resources": [f"arn:aws:events:{self._region}:{ACCOUNT}:rule/{self.name}"],
                "detail": {},
            },
            1,
        )
        if not ok:
            self._count(failures=1)
        return 1


def table_of_stream(stream_arn: str) -> str:
    """The table name in a DynamoDB stream ARN (``...:table/<name>/stream/<label>``)."""
    match = re.search(r":table/([^/]+)/stream/", stream_arn)
    if match is None:
        raise ValueError(f"not a DynamoDB stream ARN: {stream_arn!r}")
    return match.group(1)


class EventSourceRunner:
    """Every event source of a Chalice app, polled like Lambda polls them."""

    def __init__(
        self,
        app: Chalice,
        client: ClientFactory,
        region: str,
        *,
        fast_retry: bool = True,
        max_stream_retries: int = 3,
        on_stream_failure: Callable[[dict[str, Any]], None] | None = None,
        on_resume: dict[str, str] | None = None,
        stream_filters: dict[str, list[dict[str, Any]]] | None = None,
        sqs_concurrency: dict[str, int] | None = None,
    ) -> None:
        """``sqs_concurrency`` overrides a queue source's ``maximum_concurrency`` (the
        template's ``ScalingConfig``); without either it runs ``DEFAULT_SQS_CONCURRENCY``."""
        self.sources: dict[str, Source] = {}
        self._on_resume = on_resume or {}
        stream_filters = stream_filters or {}
        sqs_concurrency = sqs_concurrency or {}
        for config in app.event_sources:
            handler = resolve_handler(config.handler_string)
            source: Source
            if isinstance(config, SQSEventConfig):
                concurrency = sqs_concurrency.get(
                    config.name, config.maximum_concurrency or DEFAULT_SQS_CONCURRENCY
                )
                source = SqsSource(config, handler, region, client("sqs"), fast_retry, concurrency)
            elif isinstance(config, DynamoDBEventConfig):
                source = StreamSource(
                    config,
                    handler,
                    region,
                    client("dynamodb"),
                    client("dynamodbstreams"),
                    max_stream_retries,
                    on_stream_failure,
                    stream_filters.get(config.name),
                )
            elif isinstance(config, ScheduledEventConfig):
                source = ScheduleSource(config, handler, region)
            else:
                raise TypeError(
                    f"{config.name}: the runner does not emulate {type(config).__name__}"
                )
            self.sources[config.name] = source
        streams = {n for n, s in self.sources.items() if isinstance(s, StreamSource)}
        if not set(stream_filters) <= streams:
            raise ValueError(f"filters for {sorted(set(stream_filters) - streams)}: not streams")
        queues = {n for n, s in self.sources.items() if isinstance(s, SqsSource)}
        if not set(sqs_concurrency) <= queues:
            raise ValueError(f"concurrency for {sorted(set(sqs_concurrency) - queues)}: not queues")
        self._stop = threading.Event()
        self._shard_wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        self._interval = 0.05
        self._long_poll = LONG_POLL_SECONDS

    def _pollable(self) -> Iterable[Source]:
        return [
            s for s in self.sources.values() if not s.paused and not isinstance(s, ScheduleSource)
        ]

    def pause(self, name: str) -> None:
        self.sources[name].paused = True

    def resume(self, name: str) -> None:
        """Resume a source, then run the schedule tied to its resumption (e.g. a catch-up).

        Started (``start()``), the schedule thread runs it next, so the caller (the control
        API, under load) does not wait for a catch-up; in drain mode it runs here and now.
        """
        self.sources[name].paused = False
        hook = self._on_resume.get(name)
        if hook is None:
            return
        schedule = self.sources[hook]
        if self._threads and isinstance(schedule, ScheduleSource):
            schedule.due_now()
        else:
            self.fire(hook)

    def poll_once(self) -> int:
        """One poll of every running stream and queue source; records delivered."""
        return sum(source.poll() for source in self._pollable())

    def drain(self, max_rounds: int = 1000) -> int:
        """Poll until a whole round delivers nothing; records delivered in all."""
        total = 0
        for _ in range(max_rounds):
            delivered = self.poll_once()
            if delivered == 0:
                return total
            total += delivered
        raise RuntimeError(f"event sources still busy after {max_rounds} rounds")

    def fire(self, name: str) -> None:
        """Run one schedule now (tests, and the 'run it now' button of the local stack)."""
        self.sources[name].poll()

    def fire_due_schedules(self) -> int:
        now = time.monotonic()
        due = [s for s in self.sources.values() if isinstance(s, ScheduleSource) and s.due(now)]
        return sum(s.poll() for s in due)

    def start(self, interval: float = 0.05, long_poll: int = LONG_POLL_SECONDS) -> None:
        """Poll every source on its own thread(s) until ``stop()``, as Lambda's pollers do.

        A stream shard: one thread, one batch at a time, in order; idle, it looks again after
        ``interval`` seconds, or as soon as a queue's batch has been handled (its handler may
        have written an outbox record, which need not wait for the next look). A queue: one
        receiver long-polling (``long_poll`` seconds) while fewer than the source's
        ``concurrency`` batches are in flight, each batch delivered on a thread of its own pool.
        The schedules: one thread, so a long scheduled run (a catch-up) holds up no delivery; on
        AWS they are separate functions too.
        """
        if self._threads:
            raise RuntimeError("the runner is already started")
        self._stop.clear()
        targets: list[tuple[str, Callable[[], None]]] = [("schedules", self._run_schedules)]
        for source in self.sources.values():
            if isinstance(source, StreamSource):
                targets.append((f"stream:{source.name}", self._shard_loop(source, interval)))
            elif isinstance(source, SqsSource):
                targets.append(
                    (f"sqs:{source.name}", self._queue_loop(source, interval, long_poll))
                )
        self._interval, self._long_poll = interval, long_poll
        self._threads = [
            threading.Thread(target=target, name=f"runner-{name}", daemon=True)
            for name, target in targets
        ]
        for thread in self._threads:
            thread.start()

    def _run_schedules(self) -> None:
        while not self._stop.is_set():
            try:
                self.fire_due_schedules()
            except Exception:
                logger.exception("event-source runner: a schedule failed")
            self._stop.wait(self._interval)

    def _shard_loop(self, source: StreamSource, interval: float) -> Callable[[], None]:
        wake = threading.Event()
        self._shard_wakes.append(wake)

        def loop() -> None:
            while True:
                wake.clear()  # a write from here on is read by the poll after this one
                if self._stop.is_set():  # after the clear: stop()'s own wake is not lost
                    return
                try:
                    busy = 0 if source.paused else source.poll()
                except Exception:
                    logger.exception("%s: polling the stream failed; retrying", source.name)
                    busy = 0
                if not busy:
                    wake.wait(interval)

        return loop

    def wake_streams(self) -> None:
        """Have every idle stream shard look for records now, not at the end of its wait."""
        for wake in self._shard_wakes:
            wake.set()

    def _queue_loop(self, source: SqsSource, interval: float, wait: int) -> Callable[[], None]:
        """A queue's receiver: up to ``source.concurrency`` batches in flight, never more."""
        slots = threading.BoundedSemaphore(source.concurrency)

        def deliver(messages: list[dict[str, Any]]) -> None:
            try:
                source.deliver(messages)
            except Exception:
                logger.exception("%s: settling a batch failed", source.name)
            finally:
                self.wake_streams()
                slots.release()

        def receive() -> list[dict[str, Any]]:
            try:
                messages = source.receive(wait)
            except Exception:
                logger.exception("%s: receiving failed; retrying", source.name)
                self._stop.wait(interval)
                return []
            if messages and (source.paused or self._stop.is_set()):
                source.give_back(messages)  # a pause takes effect before the next invocation
                return []
            return messages

        def loop() -> None:
            with ThreadPoolExecutor(source.concurrency, f"runner-{source.name}") as pool:
                while not self._stop.is_set():
                    if source.paused:
                        self._stop.wait(interval)
                    elif slots.acquire(timeout=interval):
                        messages = receive()
                        if messages:
                            pool.submit(deliver, messages)
                        else:
                            slots.release()

        return loop

    def stop(self) -> None:
        """Stop every poller; batches in flight finish first (a receive ends its long poll)."""
        self._stop.set()
        self.wake_streams()
        for thread in self._threads:
            thread.join(timeout=self._long_poll + 30)
            if thread.is_alive():
                logger.error("event-source runner: %s did not stop", thread.name)
        self._threads, self._shard_wakes = [], []
