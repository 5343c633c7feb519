"""The outbox publisher: the outbox table's stream in, the archive and the events topic out.

For each new outbox record it (1) allocates the batch's global positions, (2) records the
events in the archive, (3) publishes them to SNS (``PublishBatch``, ten at a time, with the
event type and position as message attributes), and (4) flips each published record's ``sent``
flag. Archiving comes first, so whatever a consumer misses is in the archive.

If SNS fails, the records stay unsent and the handler returns normally: the stream shard is
not blocked by retrying, and the scheduled sweeper republishes them once SNS is back.
Republishing is safe because every consumer is idempotent.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, CloudWatchEvent, DynamoDBEvent, Rate
from pydantic import BaseModel, ValidationError

from functions import archive, aws, metrics, names, outbox, settings
from functions.archive import ArchivedEvent
from functions.outbox import OutboxRecord
from functions.settings import Settings

bp = Blueprint(__name__)
logger = Logger(service="publisher")
SNS_BATCH = 10


class PublishReport(BaseModel):
    records: int = 0
    published: int = 0
    failed: int = 0


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


def archive_and_publish(config: Settings, records: list[OutboxRecord]) -> PublishReport:
    """Archive ``records``, publish them, and mark the published ones sent.

    A record archived by an earlier attempt whose publish failed keeps its position (stored
    on the outbox record), so republishing it during a long broker outage does not archive
    it again and again.
    """
    if not records:
        return PublishReport()
    fresh = [record for record in records if record.position is None]
    positions = archive.allocate(config, len(fresh)) if fresh else range(0)
    now = datetime.now(UTC).timestamp()  # after allocating: archived_at bounds allocation time
    new = [_archived(r, p, now) for p, r in zip(positions, fresh, strict=True)]
    archive.record(config, new)
    again = [_archived(r, r.position, now) for r in records if r.position is not None]
    published = publish(config.topic_arn, new + again)
    table = config.table(names.OUTBOX_TABLE)
    for event in published:
        outbox.mark_sent(table, event.event_id)
    done = {event.event_id for event in published}
    for event in new:
        if event.event_id not in done:
            outbox.remember_position(table, event.event_id, event.position)
    return PublishReport(
        records=len(records), published=len(published), failed=len(records) - len(published)
    )


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
                reason=str(error),
            )
            unreadable.append({"itemIdentifier": record.sequence_number})
    archive_and_publish(settings.load(), [r for r in fresh if not r.sent])
    return {"batchItemFailures": unreadable}


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="outbox_sweeper")
def sweep_unsent(event: CloudWatchEvent) -> dict[str, Any]:
    """Republish records that stayed unsent longer than the grace period (broker outage)."""
    config = settings.load()
    table = config.table(names.OUTBOX_TABLE)
    cutoff = datetime.now(UTC) - timedelta(seconds=config.sweep_grace_seconds)
    stale = outbox.unsent(table, cutoff)
    report = archive_and_publish(config, stale)
    if stale:
        logger.info("swept unsent outbox records", **report.model_dump())
    metrics.publish(
        config, names.OLDEST_UNSENT_METRIC, outbox.oldest_unsent_age(table), MetricUnit.Seconds
    )
    return report.model_dump()
