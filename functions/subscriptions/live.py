"""The live path: a consumer's SQS batch, applied record by record, with partial batch failures.

Each record is parsed, checked against what the subscription consumes, and applied to every
track the batch writes, through the subscription's handler (the same one catch-up uses). The
archive positions of the records that were applied are then recorded in the checkpoint with
one write a batch, so catch-up knows not to apply them again.

A record that fails (unparseable, an event type the consumer does not take, or its handler
raised) is reported in ``batchItemFailures`` and logged with its message id and the reason; the
rest of the batch is acknowledged. A failing record comes back after the visibility timeout
and, after the queue's ``maxReceiveCount``, is moved to the dead-letter queue.

An archived event (one with its archive position) is never given up on that way. One of a
schema version newer than this code reads is held in the checkpoint and acknowledged at once;
one whose handler raises is held too, each try counted, and acknowledged once it has failed
``names.PARK_AFTER_TRIES`` times or been received that many times (the template's
``maxReceiveCount`` is no lower, so it is parked before SQS would dead-letter it).
Catch-up retries held events on every run, from the archive. So the dead-letter queue holds
what no code will ever read (poison), and the parked events what the consumer owes.
"""

import functools
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice.app import SQSEvent
from pydantic import ValidationError

from functions import names, settings, validation
from functions.events import UnknownVersion, parse_event
from functions.subscriptions import checkpoint
from functions.subscriptions.subscription import Subscription

__all__ = ["PartialItemFailureResponse", "PoisonMessage", "consume"]


class PoisonMessage(Exception):
    """A message that no retry can fix: it is not an event this consumer understands."""


def _position(record: SQSRecord) -> int | None:
    """The event's archive position, from its message attribute (None if it has none)."""
    attribute = record.raw_event.get("messageAttributes", {}).get(names.POSITION_ATTRIBUTE)
    if attribute is None:
        return None
    value = str(attribute.get("stringValue"))
    if not value.isdigit():
        raise PoisonMessage(f"{names.POSITION_ATTRIBUTE} is not a position: {value!r}")
    return int(value)


def _received(record: SQSRecord) -> int:
    """How many times SQS has handed this message out (a receive whose Lambda died counts too,
    though no try was recorded): parked by then, it never reaches the dead-letter queue."""
    count = record.raw_event.get("attributes", {}).get("ApproximateReceiveCount", "1")
    return int(count) if str(count).isdigit() else 1


def consume(
    event: SQSEvent, subscription: Subscription, logger: Logger
) -> PartialItemFailureResponse:
    """Apply an SQS batch, record the applied positions, return the partial-failure response."""
    config = settings.load()
    tracks = functools.cache(lambda: subscription.tracks(config))
    """Read once a batch, at its first event (for the query view: one pointer read a batch)."""
    applied: list[int] = []

    def hold(
        position: int,
        event_id: str,
        event_type: str,
        reason: str,
        unreadable: bool,
        given_up: bool = False,
    ) -> bool:
        """Hold the event at ``position`` on every track; whether it is now parked."""
        failures = [
            checkpoint.hold(
                config,
                subscription,
                track,
                position=position,
                event_id=event_id,
                event_type=event_type,
                reason=reason,
                unreadable=unreadable,
                given_up=given_up,
            )
            for track in tracks()
        ]
        return any(failure.parked for failure in failures)

    def process(record: SQSRecord) -> None:
        position: int | None = None
        event_id, event_type = record.message_id, "unknown"
        try:
            position = _position(record)
            domain_event: Any = parse_event(record.body)
            event_id, event_type = domain_event.event_id, domain_event.type
            if type(domain_event) not in subscription.handlers:
                raise PoisonMessage(f"unexpected event type {domain_event.type!r}")
            for track in tracks():
                subscription.handle(config, domain_event, track)
        except UnknownVersion as error:
            if position is None or error.event_type not in subscription.event_types:
                logger.error("poison message", message_id=record.message_id, reason=str(error))
                raise PoisonMessage(str(error)) from error
            body = json.loads(record.body)
            hold(position, str(body.get("event_id")), error.event_type, str(error), True)
            logger.error(
                "parked", message_id=record.message_id, position=position, reason=str(error)
            )
            return  # acknowledged: catch-up applies it once the consumer reads it
        except ValidationError as error:
            reason = validation.reason(error)
            logger.error("poison message", message_id=record.message_id, reason=reason)
            raise PoisonMessage(reason) from error
        except PoisonMessage as error:
            logger.error("poison message", message_id=record.message_id, reason=str(error))
            raise
        except Exception as error:
            logger.error("message failed", message_id=record.message_id, reason=repr(error))
            if position is None:
                raise
            last = _received(record) >= names.PARK_AFTER_TRIES
            if hold(position, event_id, event_type, repr(error), False, given_up=last):
                logger.error("parked", message_id=record.message_id, position=position)
                return  # acknowledged: catch-up retries it from the archive
            raise
        if position is not None:
            applied.append(position)

    with subscription.batch():
        response = process_partial_response(
            event=event.to_dict(),
            record_handler=process,
            processor=BatchProcessor(event_type=EventType.SQS),
        )
    if applied:
        for track in tracks():
            checkpoint.mark(config, subscription, track, applied)
    return response
