"""The outbox publisher: the outbox table's stream in, the events topic out.

For each new outbox record on the stream it publishes the event to SNS (``PublishBatch``, ten
at a time, with the event type as a message attribute for the subscriptions' filter policies)
and then flips the record's ``sent`` flag. It ignores the stream records that its own flips
cause (MODIFY) and the records of expired rows (REMOVE).
"""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, DynamoDBEvent
from pydantic import ValidationError

from functions import aws, names, outbox, settings
from functions.outbox import OutboxRecord

bp = Blueprint(__name__)
logger = Logger(service="publisher")
SNS_BATCH = 10


def stream_arn(prefix: str) -> str:
    """A stand-in for the outbox stream's ARN, which exists only once the table does.

    Chalice needs an ARN at import. The packaged template replaces it with
    ``!GetAtt OutboxTable.StreamArn``; the local event-source runner reads the table name from
    it and looks the real stream up.
    """
    table = names.resource(prefix, names.OUTBOX_TABLE)
    return f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/latest"


def publish(topic_arn: str, records: list[OutboxRecord]) -> list[OutboxRecord]:
    """Publish ``records``; return the ones SNS accepted."""
    published: list[OutboxRecord] = []
    client = aws.client("sns")
    for start in range(0, len(records), SNS_BATCH):
        chunk = records[start : start + SNS_BATCH]
        response = client.publish_batch(
            TopicArn=topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": str(index),
                    "Message": record.payload,
                    "MessageAttributes": {
                        names.EVENT_TYPE_ATTRIBUTE: {
                            "DataType": "String",
                            "StringValue": record.event_type,
                        }
                    },
                }
                for index, record in enumerate(chunk)
            ],
        )
        for failure in response.get("Failed", []):
            logger.warning(
                "publish failed", event_id=chunk[int(failure["Id"])].event_id, reason=failure
            )
        published += [chunk[int(entry["Id"])] for entry in response.get("Successful", [])]
    return published


@bp.on_dynamodb_record(
    stream_arn=stream_arn(settings.import_time_prefix()),
    batch_size=100,
    starting_position="TRIM_HORIZON",
    name="outbox_publisher",
)
def on_outbox_record(event: DynamoDBEvent) -> dict[str, Any]:
    """Publish new outbox records; report unreadable stream records as batch item failures."""
    config = settings.load()
    fresh: list[OutboxRecord] = []
    unreadable: list[dict[str, str]] = []
    for record in event:
        if record.event_name != "INSERT":
            continue
        try:
            fresh.append(outbox.record_from_image(record.new_image))
        except ValidationError as error:
            logger.error(
                "unreadable outbox record",
                sequence_number=record.sequence_number,
                reason=str(error),
            )
            unreadable.append({"itemIdentifier": record.sequence_number})
    table = config.table(names.OUTBOX_TABLE)
    for published in publish(config.topic_arn, [r for r in fresh if not r.sent]):
        outbox.mark_sent(table, published.event_id)
    return {"batchItemFailures": unreadable}
