"""Query routes, queue consumer and catch-up schedule."""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent

from functions import names, settings
from functions.http import ANY_CONTENT_TYPE, HttpError, json_errors, path_id
from functions.query import service
from functions.subscriptions import follower, live

bp = Blueprint(__name__)
logger = Logger(service="query")


@bp.route("/posts", methods=["GET"], cors=True, content_types=ANY_CONTENT_TYPE)
def list_posts() -> Any:
    return service.all_posts(settings.load())


@bp.route("/posts/{post_id}", methods=["GET"], cors=True, content_types=ANY_CONTENT_TYPE)
@json_errors
def get_post(post_id: str) -> Any:
    post = service.one_post(settings.load(), path_id(post_id, "unknown_post"))
    if post is None:
        raise HttpError(404, "unknown_post", f"post {post_id!r} does not exist")
    return post


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "query"),
    batch_size=10,
    name="query_consumer",
)
def on_event(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, service.SUBSCRIPTION, logger)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="query_catch_up")
def catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    """Apply from the archive what the view's live path missed; publish the view's lag."""
    return follower.scheduled(service.SUBSCRIPTION)
