"""AWS's rules that depend on time, for the local engine: moto enforces few of them.

One clock: ``CLOCK``. ``make dev`` leaves it alone (the real clock); tests and the chaos
machine ``start`` it and ``advance`` it by minutes or weeks. It moves the whole process's wall
clock (``time.time``, ``datetime.now``: the handlers', moto's and the runner's), so moto's own
time rules follow it, and ``advance`` then applies the rules moto lacks. Each rule follows the
AWS documentation page it names, not what the blog's design expects of it, and reads its
settings from the template (``infra/``), as deployed.

- **DynamoDB TTL** (DynamoDB developer guide, "Using time to live (TTL) in DynamoDB" and
  "Working with expired items and time to live"): an item expires once the epoch time in its
  TTL attribute is earlier than now, and DynamoDB deletes it in the background at any moment
  after that (typically within 48 hours); until then it is still read. ``expire_items``
  deletes every expired item at once, the harshest moment AWS allows; ``advance`` calls it.
- **SQS** (SQS developer guide, "Amazon SQS message retention" / ``SetQueueAttributes``
  ``MessageRetentionPeriod``, "Amazon SQS visibility timeout", "Using dead-letter queues";
  Lambda guide, "Configuring an Amazon SQS queue to use with Lambda"): a message older than its
  queue's retention is deleted, delivered or not; a received message is hidden for the
  visibility timeout; after ``maxReceiveCount`` receives it moves to the DLQ, keeping its first
  enqueue time. moto enforces these on receive, on its (this) clock, with the queue's own
  attributes from the template, but keeps an expired message in the queue's depth:
  ``expire_messages`` deletes it, and ``advance`` calls it. ``tests/integration/test_aws_time.py``
  holds moto to each rule. moto measures the 12-hour limit of ``ChangeMessageVisibility`` from
  the send; SQS's API reference measures it from the receive: the clock corrects it while it
  is moved.
- **DynamoDB stream retention** (DynamoDB developer guide, "Change data capture for DynamoDB
  Streams"): a stream record is kept for 24 hours, then trimmed, read or not.
  ``stream_retained`` is the runner's test for each record it reads.
- **Lambda timeout** (Lambda developer guide, "Configure Lambda function timeout"): an
  invocation that reaches its function's ``Timeout`` is stopped and fails; what it wrote before
  stays. ``invocation`` runs a handler under its function's ``Timeout`` from
  ``infra/functions.yaml``: once the clock passes it, the handler's next AWS call raises
  ``LambdaTimedOut`` (it is stopped there), and a handler that returns late fails too.
- **DynamoDB stream mapping** (Lambda developer guide, "Lambda parameters for Amazon DynamoDB
  event source mappings"): a failed batch is retried up to ``MaximumRetryAttempts`` times,
  split in two on each failure with ``BisectBatchOnFunctionError``, and given up (to the
  on-failure destination) once its oldest record is older than ``MaximumRecordAgeInSeconds``.
  ``stream_mapping`` reads the three from the template for the runner.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from emulator.template import FUNCTIONS, load
from functions import aws

STREAM_RETENTION_SECONDS = 24 * 3600
"""DynamoDB Streams keeps a record for 24 hours."""
CHALICE_DEFAULT_TIMEOUT = 60
"""What a function gets when neither the template nor Chalice's config sets one."""
SERVICES = ("dynamodb", "dynamodbstreams", "s3", "sns", "sqs", "cloudwatch")
"""The services the handlers call: a timed-out invocation is stopped at its next call."""


class Clock:
    """The process's wall clock: real until ``start``, then moved by ``advance``."""

    def __init__(self) -> None:
        self._travel: Any = None
        self._traveller: Any = None

    @property
    def started(self) -> bool:
        return self._traveller is not None

    def start(self) -> None:
        """Take over the wall clock (it keeps ticking from now)."""
        if self._traveller is None:
            import time_machine  # here: a test dependency; `make dev` runs on the real clock

            self._travel = time_machine.travel(time.time(), tick=True)
            self._traveller = self._travel.start()
            _visibility_from_the_receive(True)

    def stop(self) -> None:
        """Give the wall clock back (real time again)."""
        if self._travel is not None:
            _visibility_from_the_receive(False)
            self._travel.stop()
            self._travel = self._traveller = None

    def now(self) -> float:
        return time.time()

    def jump(self, seconds: float) -> None:
        """Move the clock forward, and nothing else (a handler's step that takes this long)."""
        if self._traveller is None:
            raise RuntimeError("the clock was not started: it is the real one")
        self._traveller.shift(seconds)

    def advance(self, seconds: float) -> int:
        """Move the clock forward and apply what AWS does meanwhile; the items TTL deleted."""
        self.jump(seconds)
        expire_messages(self.now())
        return expire_items(self.now())


CLOCK = Clock()


# -- DynamoDB TTL ------------------------------------------------------------------------------


def ttl_attributes() -> dict[str, str]:
    """Table name -> its TTL attribute, for every table whose TTL is enabled."""
    client = aws.client("dynamodb")
    found: dict[str, str] = {}
    for page in client.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            described = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if described.get("TimeToLiveStatus") == "ENABLED":
                found[table] = described["AttributeName"]
    return found


def expire_items(now: float = math.inf) -> int:
    """Delete every item whose TTL has passed at ``now`` (default: every item with a TTL, as
    DynamoDB will, sooner or later); the number deleted."""
    client = aws.client("dynamodb")
    deleted = 0
    for table, attribute in ttl_attributes().items():
        schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
        keys = [k["AttributeName"] for k in schema]
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                if _expired(item.get(attribute), now):
                    client.delete_item(TableName=table, Key={k: item[k] for k in keys})
                    deleted += 1
    return deleted


def _expired(value: dict[str, Any] | None, now: float) -> bool:
    """DynamoDB's rule: a Number attribute holding an epoch time in seconds earlier than now.
    An item without it, or with another type, never expires."""
    if value is None or "N" not in value:
        return False
    return float(value["N"]) < now


# -- SQS -------------------------------------------------------------------------------------------


VISIBILITY_LIMIT_SECONDS = 12 * 3600
"""SQS API reference, ``ChangeMessageVisibility``: a received message's visibility can be
extended to at most 12 hours in total, from the time it was received."""
_MOTO: dict[str, Any] = {}


def _visibility_from_the_receive(apply: bool) -> None:
    """moto measures the 12-hour limit from the message's send, so a message received after
    12 hours in a queue could never have its visibility changed; SQS measures it from the
    receive. Applied while the clock is moved (only then can a message be that old)."""
    from moto.sqs.exceptions import InvalidParameterValue
    from moto.sqs.models import Message, SQSBackend

    if not apply:
        if _MOTO:
            Message.mark_received = _MOTO.pop("mark_received")  # type: ignore[method-assign]
            SQSBackend.change_message_visibility = _MOTO.pop("change")  # type: ignore[method-assign]
        return
    if _MOTO:
        return
    _MOTO["mark_received"], _MOTO["change"] = (
        Message.mark_received,
        SQSBackend.change_message_visibility,
    )

    def mark_received(message: Any, visibility_timeout: int | None = None) -> None:
        message.last_received_at = time.time()
        _MOTO["mark_received"](message, visibility_timeout)

    def change_message_visibility(
        backend: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = backend.get_queue(queue_name)
        for message in queue._messages:
            if message.had_receipt_handle(receipt_handle):
                received = getattr(message, "last_received_at", message.sent_timestamp / 1000)
                if time.time() + int(visibility_timeout) - received > VISIBILITY_LIMIT_SECONDS:
                    raise InvalidParameterValue(
                        f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                        "Reason: Total VisibilityTimeout for the message is beyond the limit "
                        f"[{VISIBILITY_LIMIT_SECONDS} seconds]"
                    )
                message.change_visibility(visibility_timeout)
                if message.visible and message in queue.pending_messages:
                    queue.pending_messages.remove(message)
                return
        _MOTO["change"](backend, queue_name, receipt_handle, visibility_timeout)

    Message.mark_received = mark_received  # type: ignore[method-assign,assignment]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign,assignment]


def expire_messages(now: float) -> int:
    """Delete every message older than its queue's retention, as SQS does; the number deleted.

    moto already never delivers one, but keeps it and counts it in the queue's depth until a
    receive passes over it. This reaches into moto's in-process backend (the tests' moto; the
    clock is never moved under ``make dev``'s moto server).
    """
    from moto.sqs.models import sqs_backends

    deleted = 0
    for regions in sqs_backends.values():
        for backend in regions.values():
            for queue in backend.queues.values():
                kept = [
                    m
                    for m in queue._messages
                    if m.sent_timestamp is None
                    or m.sent_timestamp / 1000 + queue.message_retention_period > now
                ]
                deleted += len(queue._messages) - len(kept)
                queue._messages = kept
    return deleted


# -- DynamoDB Streams ----------------------------------------------------------------------------


def stream_retained(record: dict[str, Any], now: float | None = None) -> bool:
    """Whether a stream record (as ``GetRecords`` returns it) is still in the stream."""
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if created is None:
        return True
    seconds = created.timestamp() if isinstance(created, datetime) else float(created)
    return seconds >= (time.time() if now is None else now) - STREAM_RETENTION_SECONDS


@dataclass(frozen=True)
class StreamMapping:
    maximum_retry_attempts: int = -1
    """-1: until the record expires (AWS's default)."""
    maximum_record_age_seconds: int = -1
    """-1: no limit but the stream's retention (AWS's default)."""
    bisect_on_error: bool = False


def stream_mapping(function: str) -> StreamMapping:
    """The stream mapping's settings of ``function`` (its template name), AWS's defaults for
    what it does not set."""
    properties = _functions().get(function, {})
    for event in properties.get("Events", {}).values():
        mapping = event.get("Properties", {})
        if "Stream" in mapping:
            return StreamMapping(
                maximum_retry_attempts=int(mapping.get("MaximumRetryAttempts", -1)),
                maximum_record_age_seconds=int(mapping.get("MaximumRecordAgeInSeconds", -1)),
                bisect_on_error=bool(mapping.get("BisectBatchOnFunctionError", False)),
            )
    return StreamMapping()


# -- Lambda timeouts -----------------------------------------------------------------------------


class LambdaTimedOut(BaseException):
    """The invocation reached its function's timeout: Lambda stops it there.

    A ``BaseException``, so that no handler's ``except Exception`` can carry on past it."""


@cache
def _functions() -> dict[str, dict[str, Any]]:
    """The template's functions (``infra/functions.yaml``), by name, with their properties."""
    resources: dict[str, dict[str, Any]] = load(FUNCTIONS)["Resources"]
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if "Role" in resource.get("Properties", {})
    }


def function_name(source: str) -> str:
    """The template's name of the function behind a Chalice event source (as Chalice names it)."""
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[-_]", source) if word)


def timeout_of(function: str) -> float:
    """``function``'s ``Timeout`` (its template name), Chalice's default if it sets none."""
    return float(_functions().get(function, {}).get("Timeout", CHALICE_DEFAULT_TIMEOUT))


_DEADLINE = threading.local()


def _stop_if_late(**_: Any) -> None:
    deadline: float | None = getattr(_DEADLINE, "at", None)
    if deadline is not None and time.time() > deadline:
        raise LambdaTimedOut(f"Task timed out after {getattr(_DEADLINE, 'timeout', 0):.2f} seconds")


def _hook_clients() -> None:
    for service in SERVICES:
        aws.client(service).meta.events.register(
            "before-call", _stop_if_late, unique_id="aws-time-lambda-timeout"
        )


def deadline() -> float | None:
    """The running invocation's deadline on this thread (None: not in an invocation)."""
    found: float | None = getattr(_DEADLINE, "at", None)
    return found


@contextlib.contextmanager
def invocation(function: str) -> Iterator[float]:
    """Run one invocation of ``function`` under its timeout; yields the deadline.

    Raises ``LambdaTimedOut`` at the first AWS call past the deadline, or at the end if the
    handler returned after it. Only on a started clock: ``make dev`` runs handlers as they are.
    """
    if not CLOCK.started:
        yield math.inf
        return
    _hook_clients()
    timeout = timeout_of(function)
    outer = getattr(_DEADLINE, "at", None), getattr(_DEADLINE, "timeout", None)
    _DEADLINE.at, _DEADLINE.timeout = time.time() + timeout, timeout
    try:
        yield _DEADLINE.at
        _stop_if_late()
    finally:
        _DEADLINE.at, _DEADLINE.timeout = outer
