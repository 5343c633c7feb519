"""Query routes and queue consumer."""

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Blueprint, CloudWatchEvent, Rate, SQSEvent

from functions import metrics, names, settings
from functions.consumer import Handlers, PartialItemFailureResponse, consume
from functions.events import Event
from functions.http import ANY_CONTENT_TYPE, HttpError, json_errors, path_id
from functions.query import recovery, service, store
from functions.query.projection import PROJECTED_EVENTS

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


def batch_handlers() -> Handlers:
    """The handlers for one SQS batch: they read the view pointer once, at the first event.

    One pointer read a batch, not one an event (benchmarks/PROFILE.md). The batch's events were
    archived before they were published, so before this read; a rebuild that sets ``building``
    after it catches the new version up from a head that includes them.
    """

    @functools.cache
    def target() -> tuple[settings.Settings, list[str]]:
        config = settings.load()
        return config, store.pointer(config).written

    def project(event: Event, position: int | None) -> None:
        config, versions = target()
        service.project(config, event, position, versions)

    return dict.fromkeys(PROJECTED_EVENTS, project)


@bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(settings.import_time_prefix(), "query"),
    batch_size=10,
    name="query_consumer",
)
def on_event(event: SQSEvent) -> PartialItemFailureResponse:
    return consume(event, batch_handlers(), logger)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="query_catch_up")
def catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    """Find what the view missed by its watermark and apply it from the archive."""
    config = settings.load()
    report = recovery.catch_up(config)
    if report.behind:
        logger.info("query catch-up", **report.model_dump())
    lag = report.head - report.watermark_after
    metrics.publish(config, names.QUERY_LAG_METRIC, lag, MetricUnit.Count)
    return report.model_dump()
