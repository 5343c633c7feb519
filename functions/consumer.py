"""How every service consumes its SQS queue: one record at a time, with partial batch failures.

A record that fails (unparseable, unexpected type, or its handler raised) is reported in
``batchItemFailures`` and logged with its message id and the reason; the rest of the batch is
acknowledged. A failing record comes back after the visibility timeout and, after the queue's
``maxReceiveCount``, is moved to the dead-letter queue by the redrive policy.
"""

from collections.abc import Callable, Mapping
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

from functions import names
from functions.events import parse_event

__all__ = ["Handlers", "PartialItemFailureResponse", "PoisonMessage", "consume"]

Handlers = Mapping[type[Any], Callable[[Any, int | None], None]]
"""The consumer's handler for each event class it subscribes to, called with the event and its
archive position (``None`` for a message that did not come from the publisher)."""


class PoisonMessage(Exception):
    """A message that no retry can fix: it is not an event this consumer understands."""


def _position(record: SQSRecord) -> int | None:
    attribute = record.raw_event.get("messageAttributes", {}).get(names.POSITION_ATTRIBUTE)
    if attribute is None:
        return None
    value = str(attribute.get("stringValue"))
    if not value.isdigit():
        raise PoisonMessage(f"{names.POSITION_ATTRIBUTE} is not a position: {value!r}")
    return int(value)


def consume(
    event: SQSEvent,
    handlers: Handlers,
    logger: Logger,
) -> PartialItemFailureResponse:
    """Process an SQS batch record by record; return the Lambda partial-failure response."""

    def process(record: SQSRecord) -> None:
        try:
            domain_event = parse_event(record.body)
            handle = handlers.get(type(domain_event))
            if handle is None:
                raise PoisonMessage(f"unexpected event type {domain_event.type!r}")
            handle(domain_event, _position(record))
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            logger.error("poison message", message_id=record.message_id, reason=reason)
            raise PoisonMessage(reason) from error
        except PoisonMessage as error:
            logger.error("poison message", message_id=record.message_id, reason=str(error))
            raise
        except Exception as error:
            logger.error("message failed", message_id=record.message_id, reason=repr(error))
            raise

    return process_partial_response(
        event=event.to_dict(),
        record_handler=process,
        processor=BatchProcessor(event_type=EventType.SQS),
    )
