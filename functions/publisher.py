"""The outbox publisher: the outbox table's stream in, the archive and the events topic out.

For each new outbox record it (1) claims the batch's records (a claim time stored on each, on
the condition that no publisher claimed it first: one transaction per batch), (2) allocates
global positions for the records won, (3) records their events in the archive, (4) publishes
them to SNS (``PublishBatch``, ten at a time, with the event type and position as message
attributes), and (5) flips the published records' ``sent`` flags, one transaction per 100.
Archiving comes before publishing, so whatever a consumer misses is in the archive; claiming
comes before archiving, so the sweeper and a late stream publisher never both archive a record.

If SNS fails, the records stay unsent and the handler returns normally: the stream shard is
not blocked by retrying, and the scheduled sweeper republishes them once SNS is back, at the
position they were archived at. Republishing is safe because every consumer is idempotent.
"""

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, CloudWatchEvent, DynamoDBEvent, Rate
from pydantic import BaseModel, ValidationError

from functions import archive, aws, metrics, names, outbox, settings, validation
from functions.archive import ArchivedEvent
from functions.outbox import OutboxRecord
from functions.settings import Settings

bp = Blueprint(__name__)
logger = Logger(service="publisher")
SNS_BATCH = 10
REARCHIVED_METRIC = "RearchivedEvents"
"""Events the sweeper archived again after their publisher died holding the claim."""


class PublishReport(BaseModel):
    records: int = 0
    """Records archived (or found archived) and sent to SNS."""
    published: int = 0
    failed: int = 0
    """SNS refused them: they stay unsent, and the sweeper publishes them again."""
    claimed_elsewhere: int = 0
    """Another publisher claimed them first (or they were sent meanwhile): left to it."""
    left_to_live_publishers: int = 0
    """Sweeper: claimed less than the sweep grace ago by a publisher that may still finish."""
    republished: int = 0
    """Sweeper: published again from the position they were archived at, not archived again."""
    rearchived: int = 0
    """Sweeper: archived after their publisher died holding the claim: perhaps a second copy."""


def stream_arn(prefix: str) -> str:
    """A stand-in for the outbox stream's ARN, which exists only once the table does.

    Chalice needs an ARN at import. The packaged template replaces it with
    ``!GetAtt OutboxTable.StreamArn``; the local event-source runner reads the table name from
    it and looks the real stream up.
    """
    table = names.resource(prefix, names.OUTBOX_TABLE)
    return f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/latest"


def _entry(index: int, event: ArchivedEvent) -> dict[str, Any]:
    return {
        "Id": str(index),
        "Message": event.payload,
        "MessageAttributes": {
            names.EVENT_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": event.event_type},
            names.POSITION_ATTRIBUTE: {"DataType": "Number", "StringValue": str(event.position)},
        },
    }


def publish(topic_arn: str, events: list[ArchivedEvent]) -> list[ArchivedEvent]:
    """Publish ``events``; return the ones SNS accepted (none if SNS is unreachable)."""
    published: list[ArchivedEvent] = []
    for start in range(0, len(events), SNS_BATCH):
        chunk = events[start : start + SNS_BATCH]
        try:
            response = aws.client("sns").publish_batch(
                TopicArn=topic_arn,
                PublishBatchRequestEntries=[_entry(i, e) for i, e in enumerate(chunk)],
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("SNS unavailable; records stay unsent", reason=repr(error))
            return published
        for failure in response.get("Failed", []):
            failed = chunk[int(failure["Id"])]
            logger.warning("publish failed", event_id=failed.event_id, reason=failure)
        published += [chunk[int(entry["Id"])] for entry in response.get("Successful", [])]
    return published


def _archived(record: OutboxRecord, position: int, now: float) -> ArchivedEvent:
    return ArchivedEvent(
        position=position,
        event_id=record.event_id,
        event_type=record.event_type,
        payload=record.payload,
        archived_at=now,
    )


def _claim_and_archive(
    config: Settings, records: list[OutboxRecord], report: PublishReport, *, rescue: bool
) -> list[ArchivedEvent]:
    """Claim the records, allocate positions for the ones won, archive them.

    Claiming first, a record another publisher holds costs no position (no hole). ``rescue``:
    the records hold a dead publisher's expired claim, which may have archived them already;
    they are counted on the archive's counter as ``rearchived``.
    """
    if not records:
        return []
    won = outbox.claim(config.table(names.OUTBOX_TABLE), records, datetime.now(UTC).timestamp())
    claimed = [record for record in records if record.event_id in won]
    report.claimed_elsewhere += len(records) - len(claimed)
    if not claimed:
        return []
    positions = archive.allocate(config, len(claimed), rearchived=len(claimed) if rescue else 0)
    now = datetime.now(UTC).timestamp()  # after allocating: archived_at bounds allocation time
    events = [_archived(r, p, now) for p, r in zip(positions, claimed, strict=True)]
    archive.record(config, events)
    if rescue:
        report.rearchived += len(events)
    return events


def _publish_and_mark(
    config: Settings, events: list[ArchivedEvent], report: PublishReport, *, known: set[str]
) -> None:
    """Publish archived events, flip ``sent`` of the published ones, and keep the position of
    the others (unless ``known`` has it already), so that a republish does not archive again."""
    published = publish(config.topic_arn, events)
    table = config.table(names.OUTBOX_TABLE)
    outbox.mark_sent(table, [event.event_id for event in published])
    done = {event.event_id for event in published}
    for event in events:
        if event.event_id not in done and event.event_id not in known:
            outbox.remember_position(table, event.event_id, event.position)
    report.records += len(events)
    report.published += len(published)
    report.failed += len(events) - len(published)


def publish_new(config: Settings, records: list[OutboxRecord]) -> PublishReport:
    """Claim, archive, publish and mark sent records nobody claimed yet (the stream's)."""
    report = PublishReport()
    events = _claim_and_archive(config, records, report, rescue=False)
    _publish_and_mark(config, events, report, known=set())
    return report


def sweep(config: Settings, stale: list[OutboxRecord], now: float) -> PublishReport:
    """Publish the unsent records the stream publisher did not finish, archiving each once.

    - archived (a position kept after SNS failed): published again from that position;
    - never claimed (the stream publisher is late): claimed and published as the stream
      publisher does; when the stream publisher gets there, its claim loses;
    - claimed less than the sweep grace ago: a live publisher's; left to it;
    - claimed longer ago and not archived-and-kept: the claimant died between claiming and
      marking sent, perhaps after archiving. Claimed again (if still claimed as read) and
      archived at a new position: the one case where an event may be archived twice, counted
      in the archive's ``rearchived``, logged, and published as a metric.
    """
    report = PublishReport()
    kept = [_archived(r, r.position, now) for r in stale if r.position is not None]
    unclaimed = [r for r in stale if r.position is None and r.claimed_at is None]
    expired: list[OutboxRecord] = []
    for record in stale:
        if record.position is None and record.claimed_at is not None:
            if now - record.claimed_at < config.sweep_grace_seconds:
                report.left_to_live_publishers += 1
            else:
                expired.append(record)
    report.republished = len(kept)
    events = (
        kept
        + _claim_and_archive(config, unclaimed, report, rescue=False)
        + _claim_and_archive(config, expired, report, rescue=True)
    )
    _publish_and_mark(config, events, report, known={e.event_id for e in kept})
    if report.rearchived:
        logger.warning(
            "rescued records whose publisher died after claiming them: archived again",
            rearchived=report.rearchived,
        )
        metrics.publish(config, REARCHIVED_METRIC, report.rearchived, MetricUnit.Count)
    return report


@bp.on_dynamodb_record(
    stream_arn=stream_arn(settings.import_time_prefix()),
    batch_size=100,
    starting_position="TRIM_HORIZON",
    name="outbox_publisher",
)
def on_outbox_record(event: DynamoDBEvent) -> dict[str, Any]:
    """Publish new outbox records; report unreadable stream records as batch item failures."""
    fresh: list[OutboxRecord] = []
    unreadable: list[dict[str, str]] = []
    for record in event:
        if record.event_name != "INSERT":
            continue  # MODIFY (our own `sent` flips), REMOVE: the mapping's filter drops these
            # on AWS and locally; this keeps the handler right without the filter
        try:
            fresh.append(outbox.record_from_image(record.new_image))
        except ValidationError as error:
            logger.error(
                "unreadable outbox record",
                sequence_number=record.sequence_number,
                reason=validation.reason(error),
            )
            unreadable.append({"itemIdentifier": record.sequence_number})
    report = publish_new(settings.load(), [r for r in fresh if not r.sent])
    if report.claimed_elsewhere:
        logger.info("records already claimed: left to their publisher", **report.model_dump())
    return {"batchItemFailures": unreadable}


SWEEP_PAGE = 500
"""Unsent records read, and swept, at a time."""


def _remaining_ms(event: CloudWatchEvent) -> float:
    """The invocation's time left, from Lambda's context (none: unbounded)."""
    context: Any = event.context
    return math.inf if context is None else float(context.get_remaining_time_in_millis())


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="outbox_sweeper")
def sweep_unsent(event: CloudWatchEvent) -> dict[str, Any]:
    """Republish records that stayed unsent longer than the grace period (broker outage).

    Page after page, oldest first, while a page comes back full and published something, and
    the time left is more than twice the longest page took: after a long outage one run drains
    far more than the design's peak event rate (docs/time.md), and stops well before its timeout.
    """
    config = settings.load()
    table = config.table(names.OUTBOX_TABLE)
    total = PublishReport()
    longest_ms = 0.0
    pages = 0
    while True:
        started = time.monotonic()
        now = datetime.now(UTC)
        stale = outbox.unsent(
            table, now - timedelta(seconds=config.sweep_grace_seconds), SWEEP_PAGE
        )
        report = sweep(config, stale, now.timestamp())
        pages += 1
        total = PublishReport(**{k: v + getattr(report, k) for k, v in total.model_dump().items()})
        longest_ms = max(longest_ms, (time.monotonic() - started) * 1000)
        if len(stale) < SWEEP_PAGE or not report.published:
            break
        if _remaining_ms(event) < 2 * longest_ms:
            break
    if total.records or total.left_to_live_publishers:
        logger.info("swept unsent outbox records", pages=pages, **total.model_dump())
    metrics.publish(
        config, names.OLDEST_UNSENT_METRIC, outbox.oldest_unsent_age(table), MetricUnit.Seconds
    )
    return {**total.model_dump(), "pages": pages}
