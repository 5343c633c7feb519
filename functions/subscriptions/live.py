"""The live path: a consumer's SQS batch, applied record by record, with partial batch failures.

Each record is parsed, checked against what the subscription consumes, and applied to every
track the batch writes, through the subscription's handler (the same one catch-up uses). The
archive positions of the records that were applied are then recorded in the checkpoint with
one write a batch, so catch-up knows not to apply them again.

A record that fails (unparseable, an event type the consumer does not take, or its handler
raised) is reported in ``batchItemFailures`` and logged with its message id and the reason; the
rest of the batch is acknowledged. A failing record comes back after the visibility timeout
and, after the queue's ``maxReceiveCount``, is moved to the dead-letter queue.
"""

import functools
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
from functions.events import parse_event
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


def consume(
    event: SQSEvent, subscription: Subscription, logger: Logger
) -> PartialItemFailureResponse:
    """Apply an SQS batch, record the applied positions, return the partial-failure response."""
    config = settings.load()
    tracks = functools.cache(lambda: subscription.tracks(config))
    """Read once a batch, at its first event (for the query view: one pointer read a batch)."""
    applied: list[int] = []

    def process(record: SQSRecord) -> None:
        try:
            domain_event: Any = parse_event(record.body)
            if type(domain_event) not in subscription.handlers:
                raise PoisonMessage(f"unexpected event type {domain_event.type!r}")
            position = _position(record)
            for track in tracks():
                subscription.handle(config, domain_event, track)
        except ValidationError as error:
            reason = validation.reason(error)
            logger.error("poison message", message_id=record.message_id, reason=reason)
            raise PoisonMessage(reason) from error
        except PoisonMessage as error:
            logger.error("poison message", message_id=record.message_id, reason=str(error))
            raise
        except Exception as error:
            logger.error("message failed", message_id=record.message_id, reason=repr(error))
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
