"""Query routes and queue consumer."""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, SQSEvent

from functions import names, settings
from functions.consumer import Handlers, PartialItemFailureResponse, consume
from functions.events import CommentCreated, CommentUpdated, Event, PostCreated
from functions.http import HttpError, json_errors
from functions.query import service

bp = Blueprint(__name__)
logger = Logger(service="query")


@bp.route("/posts", methods=["GET"], cors=True)
def list_posts() -> Any:
    return service.all_posts(settings.load())


@bp.route("/posts/{post_id}", methods=["GET"], cors=True)
@json_errors
def get_post(post_id: str) -> Any:
    post = service.one_post(settings.load(), post_id)
    if post is None:
        raise HttpError(404, "unknown_post", f"post {post_id!r} does not exist")
    return post


def _project(event: Event) -> None:
    service.project(settings.load(), event)


HANDLERS: Handlers = {PostCreated: _project, CommentCreated: _project, CommentUpdated: _project}


@bp.on_sqs_message(
    queue=names.queue(settings.import_time_prefix(), "query"),
    batch_size=10,
    name="query_consumer",
)
def on_event(event: SQSEvent) -> PartialItemFailureResponse:
    return consume(event, HANDLERS, logger)
