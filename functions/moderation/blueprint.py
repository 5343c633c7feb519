"""Moderation's queue consumer."""

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, SQSEvent

from functions import names, settings
from functions.consumer import Handlers, PartialItemFailureResponse, consume
from functions.events import CommentCreated
from functions.moderation import service

bp = Blueprint(__name__)
logger = Logger(service="moderation")


def _moderate(event: CommentCreated, _position: int | None) -> None:
    service.moderate_comment(settings.load(), event)


HANDLERS: Handlers = {CommentCreated: _moderate}


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "moderation"),
    batch_size=10,
    name="moderation_consumer",
)
def on_comment_created(event: SQSEvent) -> PartialItemFailureResponse:
    return consume(event, HANDLERS, logger)
