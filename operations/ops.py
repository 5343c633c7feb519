"""Operations on a running stack: outages, status, rebuild, replay and DLQ redrive.

The ``blog`` command and the tests call these functions. AWS calls go wherever boto3 points
(the emulator with ``AWS_ENDPOINT_URL``); pausing and resuming a consumer goes through a
``Consumers`` (the runner in-process, or its control API from another process), as disabling
and enabling an event source mapping would on AWS.

Outage modes, for a consumer:

- ``pause``: its event source stops polling; messages wait in its queue;
- ``unsubscribe``: its SNS subscription is removed; events never reach its queue;
- ``purge``: it is paused and its queued messages are deleted.

Ending an outage restores the subscription (from the template), runs the consumer's
catch-up from the archive (``functions.subscriptions``), then resumes the consumer. Every
consumer recovers this way; the scheduled catch-up would do the same within a minute.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from emulator import stack
from functions import archive, aws, names, outbox, settings, subscribers
from functions.query import recovery
from functions.subscribers import UnknownConsumer
from functions.subscriptions import checkpoint, follower

__all__ = ["MODES", "Mode", "UnknownConsumer"]


class Consumers(Protocol):
    """The consumers' on/off switches: the local runner's sources (its control API), or a
    deployed stack's event source mappings (``operations.deployed.StackConsumers``)."""

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def is_paused(self, name: str) -> bool: ...


Mode = Literal["pause", "unsubscribe", "purge"]
MODES: tuple[Mode, ...] = ("pause", "unsubscribe", "purge")
REBUILDABLE = "query"
"""The consumer whose state is a view that can be rebuilt blue/green from the archive."""


def source_of(consumer: str) -> str:
    """The runner's event source (Lambda function) that drains ``consumer``'s queue."""
    return f"{subscribers.by_name(consumer).name}_consumer"


def _queue_url(queue: str) -> str:
    url: str = aws.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
    return url


def _queue_arn(queue: str) -> str:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(queue), AttributeNames=["QueueArn"]
    )["Attributes"]
    return str(attributes["QueueArn"])


def subscription(consumer: str) -> str | None:
    """The ARN of ``consumer``'s subscription to the events topic, if it has one."""
    config = settings.load()
    endpoint = _queue_arn(names.queue(config.prefix, consumer))
    pages = aws.client("sns").get_paginator("list_subscriptions_by_topic")
    for page in pages.paginate(TopicArn=config.topic_arn):
        for entry in page["Subscriptions"]:
            if entry["Endpoint"] == endpoint:
                return str(entry["SubscriptionArn"])
    return None


class PurgeRefused(RuntimeError):
    """SQS allows one purge of a queue in 60 s; the outage was not started."""

    def __init__(self, consumer: str) -> None:
        super().__init__(
            f"{consumer}'s queue was purged less than 60 s ago, and SQS allows one purge a "
            "minute: nothing was changed. Try again in a minute, or use --mode pause."
        )


def outage_start(consumers: Consumers, consumer: str, mode: Mode) -> None:
    """Take ``consumer`` down; a refused purge leaves it as it was and raises PurgeRefused."""
    source = source_of(consumer)
    was_paused = consumers.is_paused(source)
    if mode in ("pause", "purge"):
        consumers.pause(source)
    if mode == "purge":
        sqs = aws.client("sqs")
        try:
            sqs.purge_queue(QueueUrl=_queue_url(names.queue(_prefix(), consumer)))
        except sqs.exceptions.PurgeQueueInProgress as error:
            if not was_paused:
                consumers.resume(source)
            raise PurgeRefused(consumer) from error
    if mode == "unsubscribe":
        arn = subscription(consumer)
        if arn is not None:
            aws.client("sns").unsubscribe(SubscriptionArn=arn)


def resubscribe(consumer: str) -> bool:
    """Recreate ``consumer``'s subscription from the template if it is missing; True if it was."""
    if subscription(consumer) is not None:
        return False
    deployed = stack.describe(aws.client, _prefix())
    stack.subscribe(aws.client, deployed, f"{consumer.title()}Subscription")
    return True


Resubscribe = Callable[[str], bool]
"""Recreates a consumer's subscription if it is missing (the local stack's, or a deployed one's)."""


def outage_end(
    consumers: Consumers,
    consumer: str,
    restore: Resubscribe = resubscribe,
    progress: follower.Progress | None = None,
) -> follower.CatchUpReport:
    """Restore the subscription, catch the consumer up from the archive, resume it."""
    source = source_of(consumer)
    restore(consumer)
    report = follower.catch_up(settings.load(), subscribers.by_name(consumer), progress=progress)
    if consumers.is_paused(source):
        consumers.resume(source)
    return report


class ConsumerStatus(BaseModel):
    consumer: str
    subscribed: bool
    paused: bool
    queue_depth: int
    dlq_depth: int
    watermark: int
    """Archive position up to which the consumer has applied every event."""
    archive_head: int
    lag: int
    """Positions up to the archive head it has not applied: neither below the watermark nor
    marked as applied by the live path. 0 for a healthy consumer."""
    parked: int = 0
    """Events it holds below its watermark and has given up retrying live: ``blog parked``."""


class Status(BaseModel):
    consumers: list[ConsumerStatus]
    archive_head: int
    unsent_outbox: int
    oldest_unsent_age_seconds: float | None


def queue_depth(queue: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def status(consumers: Consumers) -> Status:
    config = settings.load()
    head = archive.head(config).position
    unsent, oldest = outbox.oldest_unsent(config.table(names.OUTBOX_TABLE))
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
    rows = []
    for consumer in subscribers.ALL:
        track = consumer.main_track(config)
        state = checkpoint.state(config, consumer, track)
        rows.append(
            ConsumerStatus(
                consumer=consumer.name,
                subscribed=subscription(consumer.name) is not None,
                paused=consumers.is_paused(source_of(consumer.name)),
                queue_depth=queue_depth(names.queue(config.prefix, consumer.name)),
                dlq_depth=queue_depth(names.dead_letter_queue(config.prefix, consumer.name)),
                watermark=state.watermark,
                archive_head=head,
                lag=follower.lag(config, consumer, track, state.watermark, head),
                parked=sum(
                    f.parked for f in checkpoint.failures(config, consumer, track, state.held)
                ),
            )
        )
    return Status(
        consumers=rows, archive_head=head, unsent_outbox=unsent, oldest_unsent_age_seconds=age
    )


def parked(consumer: str | None = None) -> list[checkpoint.Failure]:
    """Every held event of ``consumer`` (default: every consumer), parked or still being tried,
    on its main track, in position order."""
    config = settings.load()
    chosen = [subscribers.by_name(consumer)] if consumer else list(subscribers.ALL)
    found = []
    for each in chosen:
        track = each.main_track(config)
        held = checkpoint.state(config, each, track).held
        found += checkpoint.failures(config, each, track, held)
    return found


def rebuild(progress: recovery.Progress | None = None) -> recovery.RebuildReport:
    return recovery.rebuild(settings.load(), progress)


def catch_up(consumer: str, progress: follower.Progress | None = None) -> follower.CatchUpReport:
    return follower.catch_up(settings.load(), subscribers.by_name(consumer), progress=progress)


def replay(consumer: str, from_position: int) -> follower.CatchUpReport:
    return follower.replay(settings.load(), subscribers.by_name(consumer), from_position)


def dlq_redrive(consumer: str) -> int:
    """Move every dead-lettered message of ``consumer`` back to its queue; how many moved.

    moto lacks ``StartMessageMoveTask``, so this receives, sends and deletes, ten at a time;
    a message is deleted from the DLQ only once its copy is in the queue.
    """
    source_of(consumer)
    prefix = _prefix()
    sqs = aws.client("sqs")
    dlq, target = (
        _queue_url(names.dead_letter_queue(prefix, consumer)),
        _queue_url(names.queue(prefix, consumer)),
    )
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not messages:
            return moved
        sent = sqs.send_message_batch(
            QueueUrl=target,
            Entries=[_resend_entry(i, m) for i, m in enumerate(messages)],
        ).get("Successful", [])
        done = [messages[int(entry["Id"])] for entry in sent]
        if done:
            sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        moved += len(done)
        if len(done) < len(messages):
            raise RuntimeError(f"{len(messages) - len(done)} messages could not be moved back")


def _resend_entry(index: int, message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _prefix() -> str:
    return settings.load().prefix


RebuildStep = Callable[[bool], recovery.RebuildProgress]
"""One step of the view's chunked rebuild (``True``: start one first); where it stands after."""


def local_rebuild_step(start: bool) -> recovery.RebuildProgress:
    """The chunked rebuild's step run here, against the stack's tables (the local stack)."""
    config = settings.load()
    if start:
        recovery.start_rebuild(config)
    return recovery.rebuild_step(config)


def rebuild_in_steps(
    step: RebuildStep, progress: recovery.Progress | None = None
) -> recovery.RebuildProgress:
    """Start the view's chunked rebuild (or join the one under way) and step it to the switch,
    reporting (positions done, positions in all) after each step."""
    state = step(True)
    while True:
        if progress is not None:
            progress(state.done, state.total)
        if state.finished:
            return state
        state = step(False)
