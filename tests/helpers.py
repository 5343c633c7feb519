"""Reading the emulated AWS state in tests."""

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from functions import archive, aws, names, settings
from functions.dynamo import from_item, to_item
from functions.events import Event, PostCreated, PostData
from functions.posts import store
from functions.subscriptions import checkpoint
from operations import ops

PREFIX = settings.load().prefix


def scan(table_suffix: str, *, checkpoints: bool = False) -> list[dict[str, Any]]:
    """Every item of a table; a consumer's checkpoint items only if ``checkpoints``."""
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=names.resource(PREFIX, table_suffix), ConsistentRead=True)
    )
    items = [from_item(item) for page in pages for item in page["Items"]]
    return [
        item
        for item in items
        if checkpoints or not any(checkpoint.is_checkpoint_key(v) for v in item.values())
    ]


def queue_url(name: str) -> str:
    url: str = aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return url


queue_depth = ops.queue_depth


def receive_all(name: str) -> list[dict[str, Any]]:
    """Every message in a queue (received, not deleted)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = (
            aws.client("sqs")
            .receive_message(
                QueueUrl=queue_url(name),
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=60,
            )
            .get("Messages", [])
        )
        if not batch:
            return messages
        messages += batch


def peek_bodies(name: str) -> list[str]:
    """The bodies of every message in a queue, left in it (made visible again at once)."""
    sqs, url = aws.client("sqs"), queue_url(name)
    seen = receive_all(name)
    for start in range(0, len(seen), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(seen[start : start + 10])
            ],
        )
    return [m["Body"] for m in seen]


def writes_table(params: dict[str, Any], table: str) -> bool:
    """Whether a PutItem or TransactWriteItems call's parameters write ``table``."""
    items = [next(iter(item.values())) for item in params.get("TransactItems", [])]
    return table in {params.get("TableName"), *(item.get("TableName") for item in items)}


def archive_events(
    config: settings.Settings, events: Sequence[Event | None]
) -> list[archive.ArchivedEvent]:
    """Archive ``events`` at new consecutive positions, as the publisher does (allocate, then
    record); None leaves a hole at its position. The archived events."""
    positions = archive.allocate(config, len(events))
    now = time.time()
    recorded = [
        archive.ArchivedEvent(
            position=position,
            event_id=event.event_id,
            event_type=event.type,
            payload=event.to_json(),
            archived_at=now,
        )
        for position, event in zip(positions, events, strict=True)
        if event is not None
    ]
    for start in range(0, len(recorded), 1000):
        archive.record(config, recorded[start : start + 1000])
    return recorded


def stored_posts(n: int, prefix: str = "p") -> list[str]:
    """Write ``n`` posts (ids ``<prefix><i>``) through the posts store (item and outbox record
    in one transaction); the outbox records' event ids, oldest first. Nothing publishes them
    unless a test does."""
    ids = []
    for i in range(n):
        post = PostData(id=f"{prefix}{i}", title="t")
        event = PostCreated.of(post)
        store.insert(settings.load(), post, event)
        ids.append(event.event_id)
    return ids


def backdate_outbox(seconds: float) -> None:
    """Make every outbox record look ``seconds`` old: the stream publisher is that late."""
    table = names.resource(settings.load().prefix, names.OUTBOX_TABLE)
    then = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    for record in scan(names.OUTBOX_TABLE):
        aws.client("dynamodb").update_item(
            TableName=table,
            Key=to_item({names.OUTBOX_KEY: record[names.OUTBOX_KEY]}),
            UpdateExpression="SET created_at = :then",
            ExpressionAttributeValues=to_item({":then": then}),
        )


def scheduled_event(**detail: Any) -> dict[str, Any]:
    """An EventBridge schedule's event, as Lambda hands it to a scheduled function."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
