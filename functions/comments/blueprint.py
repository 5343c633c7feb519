"""Comments routes, queue consumer and catch-up schedule."""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent

from functions import names, settings
from functions.commands import CreateComment
from functions.comments import service
from functions.http import (
    ACCEPTED_CONTENT_TYPES,
    HttpError,
    created,
    json_errors,
    parse_body,
    path_id,
)
from functions.subscriptions import follower, live

bp = Blueprint(__name__)
logger = Logger(service="comments")


@bp.route(
    "/posts/{post_id}/comments",
    methods=["POST"],
    cors=True,
    content_types=ACCEPTED_CONTENT_TYPES,
)
@json_errors
def create_comment(post_id: str) -> Any:
    post_id = path_id(post_id, "unknown_post")
    command = parse_body(bp.current_request, CreateComment)
    try:
        comments = service.create_comment(settings.load(), post_id, command)
    except service.UnknownPost as error:
        raise HttpError(404, "unknown_post", str(error)) from error
    return created(
        [
            c.model_dump(include={"id", "content", "status", "author"}, exclude_none=True)
            for c in comments
        ]
    )


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "comments"),
    batch_size=10,
    name="comments_consumer",
)
def on_comment_moderated(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, service.SUBSCRIPTION, logger)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="comments_catch_up")
def catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    """Apply from the archive the moderation results the queue never delivered."""
    return follower.scheduled(service.SUBSCRIPTION)
