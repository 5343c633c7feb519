"""The transactional outbox: an event is stored in the same transaction as the change it reports.

``write`` commits the service's own operations plus one outbox record per event with
``sent = false``, atomically. The publisher (``functions.publisher``) sees the record on the
outbox table's stream, claims it (``claim``: a claim time stored on the record, on the condition
that no live publisher claimed it before), archives and publishes it, and flips ``sent``.
Nothing else publishes. An unsent record also carries ``unsent``, the key of a sparse index, so
the sweeper finds the records that stayed unsent without a scan; flipping ``sent`` removes it.
The index is spread over ``names.OUTBOX_UNSENT_SHARDS`` partition keys (``unsent#<shard>``, from
the event id's hash) and holds keys only: an event costs it one small write when stored and one
when sent (a claim changes no projected attribute), and the sweeper queries every shard, then
reads the records it found from the table itself, strongly consistent.
"""

import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from functions import aws, names
from functions.dynamo import (
    Item,
    batch_get,
    cancellation_codes,
    from_item,
    is_cancelled,
    to_item,
)
from functions.events import Event

UNSENT = "unsent"
_FAILED = "ConditionalCheckFailed"
MAX_TRANSACTION = 100
ATTEMPTS = 3
_UNSENT_PARTITION, _CREATED_AT = names.OUTBOX_UNSENT_KEY


def unsent_shard(event_id: str) -> str:
    """The unsent index's partition key of a record: stable, and spread evenly by the hash."""
    digest = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16)
    return f"{UNSENT}#{digest % names.OUTBOX_UNSENT_SHARDS:02d}"


def unsent_shards() -> list[str]:
    return [f"{UNSENT}#{shard:02d}" for shard in range(names.OUTBOX_UNSENT_SHARDS)]


class OutboxRecord(BaseModel):
    """An outbox row as stored and as seen on the stream."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    payload: str
    sent: bool
    created_at: str
    unsent: str | None = None
    position: int | None = None
    """The archive position, kept once a publish attempt archived the event but SNS failed."""
    claimed_at: float | None = None
    """When a publisher claimed it: a claim younger than the sweep grace is a live one's."""

    @classmethod
    def new(cls, event: Event) -> "OutboxRecord":
        return cls(
            event_id=event.event_id,
            event_type=event.type,
            payload=event.to_json(),
            sent=False,
            created_at=datetime.now(UTC).isoformat(),
            unsent=unsent_shard(event.event_id),
        )


def put_operation(table: str, event: Event) -> dict[str, Any]:
    """The transaction operation that stores ``event`` unsent, once per event id."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(OutboxRecord.new(event).model_dump(exclude_none=True)),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": names.OUTBOX_KEY},
        }
    }


class ConditionFailed(Exception):
    """The transaction was cancelled because conditions failed; nothing was written."""

    def __init__(self, failed: list[int]) -> None:
        super().__init__(f"conditions failed for operations {failed}")
        self.failed = failed
        """Indexes of the operations whose condition failed (``operations`` first, then events)."""


def write(table: str, operations: Sequence[dict[str, Any]], events: Sequence[Event]) -> None:
    """Commit ``operations`` and the outbox records of ``events`` in one transaction.

    Raises ``ConditionFailed`` when a condition stopped it (the caller decides what that
    means: an unknown post, a repeat, a concurrent change); other errors pass through.
    """
    items = [*operations, *(put_operation(table, event) for event in events)]
    try:
        aws.client("dynamodb").transact_write_items(TransactItems=items)
    except ClientError as error:
        failed = [i for i, code in enumerate(cancellation_codes(error)) if code == _FAILED]
        if is_cancelled(error) and failed:
            raise ConditionFailed(failed) from error
        raise


def _mark_sent_operation(table: str, event_id: str) -> dict[str, Any]:
    """Flip ``sent`` of a record that exists and is unsent (a repeat changes nothing)."""
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({names.OUTBOX_KEY: event_id}),
            "UpdateExpression": "SET sent = :true REMOVE #unsent",
            "ConditionExpression": "attribute_exists(#id) AND sent = :false",
            "ExpressionAttributeNames": {"#id": names.OUTBOX_KEY, "#unsent": _UNSENT_PARTITION},
            "ExpressionAttributeValues": {":true": {"BOOL": True}, ":false": {"BOOL": False}},
        }
    }


def mark_sent(table: str, event_ids: Iterable[str]) -> None:
    """Flip ``sent`` of published records: one transaction per 100 instead of a write each.

    A record already sent (or gone) is left out and the rest retried. One that conflicting
    transactions kept from the flip after ``ATTEMPTS`` gets a write of its own, so a published
    record is never left unsent (which would make the sweeper archive it again).
    """
    operations = {event_id: _mark_sent_operation(table, event_id) for event_id in event_ids}
    _, contended = _transact_each(operations)
    client = aws.client("dynamodb")
    for event_id in contended:
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(**operations[event_id]["Update"])


def _transact_each(operations: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """Commit conditional operations, keyed by record, in transactions of ``MAX_TRANSACTION``.

    A transaction that a failed condition cancelled is retried without the records whose
    condition failed, up to ``ATTEMPTS`` times. Returns the keys committed, and those still
    pending when the attempts ran out (cancelled for another reason, such as a conflicting
    transaction). Any other error passes through.
    """
    done: set[str] = set()
    contended: set[str] = set()
    keys = list(operations)
    client = aws.client("dynamodb")
    for start in range(0, len(keys), MAX_TRANSACTION):
        chunk = keys[start : start + MAX_TRANSACTION]
        for _ in range(ATTEMPTS):
            if not chunk:
                break
            try:
                client.transact_write_items(TransactItems=[operations[k] for k in chunk])
            except ClientError as error:
                if not is_cancelled(error):
                    raise
                codes = cancellation_codes(error)
                if len(codes) != len(chunk):
                    raise
                chunk = [k for k, code in zip(chunk, codes, strict=True) if code != _FAILED]
                continue
            done |= set(chunk)
            chunk = []
        contended |= set(chunk)
    return done, contended


def _claim_operation(table: str, record: OutboxRecord, now: float) -> dict[str, Any]:
    """Claim ``record`` if it is as read: unsent, not archived, and claimed as it was then."""
    values: dict[str, Any] = {":now": now, ":false": False}
    condition = "attribute_exists(#id) AND sent = :false AND attribute_not_exists(#position) AND "
    if record.claimed_at is None:
        condition += "attribute_not_exists(claimed_at)"
    else:
        condition += "claimed_at = :previous"
        values[":previous"] = record.claimed_at
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({names.OUTBOX_KEY: record.event_id}),
            "UpdateExpression": "SET claimed_at = :now",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#id": names.OUTBOX_KEY, "#position": "position"},
            "ExpressionAttributeValues": to_item(values),
        }
    }


def claim(table: str, records: Iterable[OutboxRecord], now: float) -> set[str]:
    """Claim records for archiving; the event ids won. One transaction per 100 records.

    A record is won if it is still as this publisher read it: never claimed (or, for the
    sweeper's rescue of a dead publisher's record, claimed at the same time as read). A record
    another publisher claimed first, or that is sent, is lost to this one. What conflicting
    transactions kept from being claimed after ``ATTEMPTS`` stays unclaimed: the sweeper takes
    it later.
    """
    won, _ = _transact_each({r.event_id: _claim_operation(table, r, now) for r in records})
    return won


def record_from_image(image: Item) -> OutboxRecord:
    """An outbox record from a stream image (typed JSON); raises ``ValidationError``."""
    return OutboxRecord.model_validate(from_item(image))


def remember_position(table: str, event_id: str, position: int) -> None:
    """Keep an archived-but-unpublished record's position, so a republish reuses it."""
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=table,
            Key=to_item({names.OUTBOX_KEY: event_id}),
            UpdateExpression="SET #position = :position",
            ConditionExpression="attribute_exists(#id) AND sent = :false",
            ExpressionAttributeNames={"#id": names.OUTBOX_KEY, "#position": "position"},
            ExpressionAttributeValues=to_item({":position": position, ":false": False}),
        )


def _unsent_query(table: str, shard: str, older_than: datetime | None = None) -> dict[str, Any]:
    """The index query of one shard's unsent keys, oldest first (created before
    ``older_than``, if given)."""
    condition = "#unsent = :unsent"
    attribute_names = {"#unsent": _UNSENT_PARTITION}
    values: dict[str, Any] = {":unsent": shard}
    if older_than is not None:
        condition += " AND #created < :cutoff"
        attribute_names["#created"] = _CREATED_AT
        values[":cutoff"] = older_than.isoformat()
    return {
        "TableName": table,
        "IndexName": names.OUTBOX_UNSENT_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": attribute_names,
        "ExpressionAttributeValues": to_item(values),
    }


def unsent(table: str, older_than: datetime, limit: int = 500) -> list[OutboxRecord]:
    """Unsent records created before ``older_than``, oldest first (at most ``limit``).

    Each shard of the sparse index gives its oldest keys; the oldest ``limit`` of them all are
    read from the table (strongly consistent, so a record sent since the index saw it is left
    out).
    """
    paginator = aws.client("dynamodb").get_paginator("query")
    keys: list[dict[str, Any]] = []
    for shard in unsent_shards():
        pages = paginator.paginate(
            **_unsent_query(table, shard, older_than), PaginationConfig={"MaxItems": limit}
        )
        keys += [from_item(item) for page in pages for item in page["Items"]]
    oldest = sorted(keys, key=lambda k: (k[_CREATED_AT], k[names.OUTBOX_KEY]))[:limit]
    records = _read(table, [k[names.OUTBOX_KEY] for k in oldest])
    return sorted((r for r in records if not r.sent), key=lambda r: (r.created_at, r.event_id))


def _read(table: str, event_ids: list[str]) -> list[OutboxRecord]:
    """The records of ``event_ids`` that exist, read strongly consistent, in any order."""
    keys = [to_item({names.OUTBOX_KEY: event_id}) for event_id in event_ids]
    return [OutboxRecord.model_validate(from_item(item)) for item in batch_get(table, keys)]


def _oldest_created(table: str) -> datetime | None:
    """When the oldest unsent record was created (None with none): one query a shard."""
    client = aws.client("dynamodb")
    oldest: list[str] = []
    for shard in unsent_shards():
        items = client.query(**_unsent_query(table, shard), Limit=1)["Items"]
        oldest += [from_item(item)[_CREATED_AT] for item in items]
    return datetime.fromisoformat(min(oldest)) if oldest else None


def oldest_unsent_age(table: str) -> float:
    """Seconds since the oldest unsent record was created (0 with none): one query a shard."""
    created = _oldest_created(table)
    return 0.0 if created is None else (datetime.now(UTC) - created).total_seconds()


def oldest_unsent(table: str) -> tuple[int, datetime | None]:
    """How many records are unsent, and when the oldest was created.

    Counted with ``Select=COUNT``: no record is returned, so a backlog of thousands (a status
    sampled every second during a burst) costs no transfer of them.
    """
    paginator = aws.client("dynamodb").get_paginator("query")
    count = 0
    for shard in unsent_shards():
        pages = paginator.paginate(**_unsent_query(table, shard), Select="COUNT")
        count += sum(int(page["Count"]) for page in pages)
    return (count, _oldest_created(table)) if count else (0, None)
