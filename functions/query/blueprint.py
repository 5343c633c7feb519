"""Query routes, queue consumer, catch-up schedule and the chunked rebuild."""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent
from pydantic import BaseModel, ConfigDict, ValidationError

from functions import names, settings, validation
from functions.http import (
    ANY_CONTENT_TYPE,
    HttpError,
    json_errors,
    json_with_etag,
    path_id,
)
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


class RebuildRequest(BaseModel):
    """The ``detail`` of the event ``query_rebuild`` runs on: ``{}`` from its schedule,
    ``{"start": true}`` from ``blog rebuild query``."""

    model_config = ConfigDict(extra="forbid")
    start: bool = False


REBUILD_RESERVE_MS = 20_000
"""Time left in an invocation below which no new rebuild step begins (a step of
``recovery.STEP`` positions takes seconds; the function's timeout is 900 s, infra/functions.yaml;
a step cut short by it resumes from its saved watermark at the next run)."""


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="query_rebuild")
def rebuild(event: CloudWatchEvent) -> dict[str, Any]:
    """Run a blue/green rebuild of the view in bounded steps: start one if asked, continue the
    one under way (every minute, so a run cut short resumes), switch reads when it is done."""
    try:
        request = RebuildRequest.model_validate(event.detail or {})
    except ValidationError as error:
        logger.error("refused rebuild request", reason=validation.reason(error))
        raise
    config = settings.load()
    progress = (
        recovery.start_rebuild(config) if request.start else recovery.rebuild_progress(config)
    )
    context = getattr(event, "context", None)
    stepped = False
    while not progress.finished:
        progress = recovery.rebuild_step(config, limit=recovery.STEP)
        stepped = True
        left = context.get_remaining_time_in_millis() if context is not None else 0
        if left < REBUILD_RESERVE_MS:
            break
    if stepped:
        logger.info("view rebuild", **progress.model_dump())
    return progress.model_dump()
