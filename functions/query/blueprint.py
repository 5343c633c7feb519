"""Query routes, queue consumer and catch-up schedule."""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent
from pydantic import ValidationError

from functions import names, settings
from functions.http import ANY_CONTENT_TYPE, HttpError, json_errors, json_with_etag, path_id
from functions.query import recovery, service
from functions.query.cursor import Cursor, InvalidCursor, PageQuery
from functions.subscriptions import follower, live

bp = Blueprint(__name__)
logger = Logger(service="query")


def _page_query(params: Mapping[str, str] | None) -> tuple[PageQuery, Cursor | None]:
    """The query string and its cursor; 400 ``invalid_query`` naming what is wrong."""
    try:
        query = PageQuery.model_validate(dict(params or {}))
        return query, query.cursor
    except ValidationError as error:
        details = [
            {"field": ".".join(str(part) for part in e["loc"]), "problem": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        raise HttpError(400, "invalid_query", summary, details) from error
    except InvalidCursor as error:
        details = [{"field": "after", "problem": str(error)}]
        raise HttpError(400, "invalid_query", f"after: {error}", details) from error


@bp.route("/posts", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@json_errors
def list_posts() -> Any:
    """One page of posts, newest first; ``Link: <...>; rel="next"`` names the next one. With
    an ``ETag``: ``If-None-Match`` with it answers 304 while the page is unchanged."""
    query, cursor = _page_query(bp.current_request.query_params)
    page = service.posts_page(settings.load(), cursor, query.limit)
    headers = {}
    if page.next is not None:
        # Relative to this URL, so it also holds under a stage path (/api/posts).
        headers["Link"] = f'<posts?limit={query.limit}&after={page.next.encode()}>; rel="next"'
    return json_with_etag(bp.current_request, page.posts, headers)


@bp.route("/posts/{post_id}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@json_errors
def get_post(post_id: str) -> Any:
    post = service.one_post(settings.load(), path_id(post_id, "unknown_post"))
    if post is None:
        raise HttpError(404, "unknown_post", f"post {post_id!r} does not exist")
    return json_with_etag(bp.current_request, post)


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "query"),
    batch_size=10,
    name="query_consumer",
)
def on_event(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, service.SUBSCRIPTION, logger)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="query_catch_up")
def catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    """Apply from the archive what the view's live path missed; publish the view's lag; then
    drop the versions a rebuild switched away from (off the rebuild's critical path)."""
    report = follower.scheduled(service.SUBSCRIPTION)
    return {**report, "dropped": recovery.drop_retired(settings.load())}
