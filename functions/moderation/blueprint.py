"""Moderation's queue consumer and catch-up schedule."""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent

from functions import names, settings
from functions.moderation import service
from functions.subscriptions import follower, live

bp = Blueprint(__name__)
logger = Logger(service="moderation")


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "moderation"),
    batch_size=10,
    name="moderation_consumer",
)
def on_comment_created(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, service.SUBSCRIPTION, logger)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="moderation_catch_up")
def catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    """Decide from the archive the comments whose CommentCreated the queue never delivered."""
    return follower.scheduled(service.SUBSCRIPTION)
