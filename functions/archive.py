"""The event archive (adapter): every published event with its global position.

Two tiers, one history:

- a DynamoDB table, partitioned by bucket (``position // segment_size``) and sorted by
  position, so a range of positions is one query per bucket: recent events and exact gaps;
- S3 segments, one JSON-lines object per complete bucket, for cheap bulk reads. Table records
  may expire (TTL) once their segment is written; the history is the union of the two.

Positions are allocated per publisher batch with one atomic ``ADD`` on a counter row, so no
row is written once per event. A publisher that dies between allocating and recording leaves
holes: positions that will never be filled, which readers skip once they are old enough. The
same row counts the events archived again at a new position (``rearchived``): the only way an
event can be in the archive twice (see ``functions.publisher``).
"""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from functions import aws, names
from functions.dynamo import batch_write, from_item, to_item
from functions.settings import Settings

BUCKET, POSITION = names.ARCHIVE_KEY
_COUNTER = {BUCKET: -1, POSITION: 0}


class ArchivedEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    position: int
    event_id: str
    event_type: str
    payload: str
    archived_at: float


class Head(BaseModel):
    """The archive's counter row: the last position allocated, when, and what is in S3."""

    position: int = 0
    allocated_at: float = 0.0
    segmented_through: int = 0
    """Buckets below this one are in S3 segments."""
    rearchived: int = 0
    """Events archived again at a new position after their publisher's claim expired."""


def _table(settings: Settings) -> str:
    return settings.table(names.ARCHIVE_TABLE)


def bucket_of(settings: Settings, position: int) -> int:
    return position // settings.segment_size


def allocate(settings: Settings, count: int, rearchived: int = 0) -> range:
    """Reserve ``count`` consecutive positions with one atomic update; ``rearchived`` of them
    are for events that may be in the archive already (counted on the same row)."""
    values: dict[str, Any] = {":count": count, ":now": _now()}
    added = "head :count"
    if rearchived:
        values[":rearchived"] = rearchived
        added += ", rearchived :rearchived"
    response = aws.client("dynamodb").update_item(
        TableName=_table(settings),
        Key=to_item(_COUNTER),
        UpdateExpression=f"ADD {added} SET allocated_at = :now",
        ExpressionAttributeValues=to_item(values),
        ReturnValues="UPDATED_NEW",
    )
    last = int(from_item(response["Attributes"])["head"])
    return range(last - count + 1, last + 1)


def head(settings: Settings) -> Head:
    item = (
        aws.client("dynamodb")
        .get_item(TableName=_table(settings), Key=to_item(_COUNTER), ConsistentRead=True)
        .get("Item")
    )
    if not item:
        return Head()
    values = from_item(item)
    return Head(
        position=int(values.get("head", 0)),
        allocated_at=float(values.get("allocated_at", 0)),
        segmented_through=int(values.get("segmented_through", 0)),
        rearchived=int(values.get("rearchived", 0)),
    )


def record(settings: Settings, events: Sequence[ArchivedEvent]) -> None:
    """Store events at their positions (idempotent: a position always holds the same event)."""
    expires = _now() + settings.archive_retention_days * 86_400
    requests = [
        {
            "PutRequest": {
                "Item": to_item(
                    {
                        BUCKET: bucket_of(settings, event.position),
                        POSITION: event.position,
                        names.ARCHIVE_TTL_ATTRIBUTE: int(expires),
                        **event.model_dump(exclude={"position"}),
                    }
                )
            }
        }
        for event in events
    ]
    batch_write(_table(settings), requests)


def _to_event(item: dict[str, Any]) -> ArchivedEvent:
    values = from_item(item)
    return ArchivedEvent(
        position=int(values[POSITION]),
        event_id=values["event_id"],
        event_type=values["event_type"],
        payload=values["payload"],
        archived_at=float(values["archived_at"]),
    )


def _query_bucket(settings: Settings, bucket: int, first: int, last: int) -> list[ArchivedEvent]:
    pages = (
        aws.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=_table(settings),
            KeyConditionExpression="#bucket = :bucket AND #position BETWEEN :first AND :last",
            ExpressionAttributeNames={"#bucket": BUCKET, "#position": POSITION},
            ExpressionAttributeValues=to_item({":bucket": bucket, ":first": first, ":last": last}),
            ConsistentRead=True,
        )
    )
    return [_to_event(item) for page in pages for item in page["Items"]]


def read(settings: Settings, positions: Iterable[int]) -> dict[int, ArchivedEvent]:
    """The archived events at ``positions`` (absent ones are holes or not yet recorded).

    Each bucket is read once, from S3 if it is segmented, else one query over the span of the
    positions wanted in it.
    """
    wanted: dict[int, list[int]] = {}
    for position in positions:
        wanted.setdefault(bucket_of(settings, position), []).append(position)
    segmented = head(settings).segmented_through if wanted else 0
    found: dict[int, ArchivedEvent] = {}
    for bucket, in_bucket in sorted(wanted.items()):
        events = (
            read_segment(settings, bucket)
            if bucket < segmented
            else _query_bucket(settings, bucket, min(in_bucket), max(in_bucket))
        )
        keep = set(in_bucket)
        found.update({e.position: e for e in events if e.position in keep})
    return found


def history(
    settings: Settings,
    through: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ArchivedEvent]:
    """Every archived event up to position ``through``, in order: S3 segments, then the table.

    ``progress`` is called with the last position read after each bucket.
    """
    segmented = head(settings).segmented_through
    last_bucket = bucket_of(settings, through)
    for bucket in range(last_bucket + 1):
        if bucket < segmented:
            events = read_segment(settings, bucket)
        else:
            first = bucket * settings.segment_size
            events = _query_bucket(settings, bucket, first, first + settings.segment_size - 1)
        yield from (e for e in events if e.position <= through)
        if progress is not None:
            progress(min(through, (bucket + 1) * settings.segment_size - 1))


def _segment_key(bucket: int) -> str:
    return f"{names.ARCHIVE_SEGMENT_PREFIX}{bucket:012d}.jsonl"


def read_segment(settings: Settings, bucket: int) -> list[ArchivedEvent]:
    body = aws.client("s3").get_object(Bucket=settings.archive_bucket, Key=_segment_key(bucket))
    lines = body["Body"].read().decode().splitlines()
    return [ArchivedEvent.model_validate_json(line) for line in lines if line]


def write_segments(settings: Settings) -> list[int]:
    """Copy every complete bucket that is not in S3 yet into its segment; the buckets written.

    A bucket is complete when every position in it was allocated longer ago than the hole
    grace (longer than a publisher can run), so no late record can still arrive in it.
    """
    written: list[int] = []
    current = head(settings)
    bucket = current.segmented_through
    while True:
        last = (bucket + 1) * settings.segment_size - 1
        # False too for a last position not allocated yet: the bucket is not full.
        if not allocated_before(settings, last, _now() - settings.hole_grace_seconds, current):
            return written
        events = _query_bucket(settings, bucket, bucket * settings.segment_size, last)
        body = "".join(e.model_dump_json() + "\n" for e in events)
        aws.client("s3").put_object(
            Bucket=settings.archive_bucket, Key=_segment_key(bucket), Body=body.encode()
        )
        _mark_segmented(settings, bucket)
        written.append(bucket)
        bucket += 1


def allocated_before(settings: Settings, position: int, moment: float, current: Head) -> bool:
    """Whether ``position`` was allocated before ``moment``.

    A position in a segmented bucket was: segments are written only after the grace.
    Otherwise, positions are allocated in order, so the first event archived after
    ``position`` was allocated after it; with none yet, the counter's last allocation time
    bounds it.
    """
    if position > current.position:
        return False
    if bucket_of(settings, position) < current.segmented_through:
        return True
    later = _first_after(settings, position, bucket_of(settings, current.position))
    sealed = later.archived_at if later is not None else current.allocated_at
    return sealed < moment


def _first_after(settings: Settings, position: int, last_bucket: int) -> ArchivedEvent | None:
    """The first archived event after ``position``, searching forward up to ``last_bucket``."""
    client = aws.client("dynamodb")
    for bucket in range(bucket_of(settings, position), last_bucket + 1):
        items = client.query(
            TableName=_table(settings),
            KeyConditionExpression="#bucket = :bucket AND #position > :position",
            ExpressionAttributeNames={"#bucket": BUCKET, "#position": POSITION},
            ExpressionAttributeValues=to_item({":bucket": bucket, ":position": position}),
            ConsistentRead=True,
            Limit=1,
        )["Items"]
        if items:
            return _to_event(items[0])
    return None


def _mark_segmented(settings: Settings, bucket: int) -> None:
    aws.client("dynamodb").update_item(
        TableName=_table(settings),
        Key=to_item(_COUNTER),
        UpdateExpression="SET segmented_through = :next",
        ExpressionAttributeValues=to_item({":next": bucket + 1}),
    )


def _now() -> float:
    return time.time()


class Census(BaseModel):
    """How many records the archive holds for how many distinct events (1.00: each once)."""

    records: int
    distinct_events: int
    rearchived: int
    """Of the records, archived again after an expired claim: at most this many are extra."""

    @property
    def ratio(self) -> float:
        return self.records / self.distinct_events if self.distinct_events else 1.0


def census(settings: Settings) -> Census:
    """Count the whole history (S3 segments and table): for tools and benchmarks, not hot paths."""
    current = head(settings)
    ids = [event.event_id for event in history(settings, current.position)]
    return Census(records=len(ids), distinct_events=len(set(ids)), rearchived=current.rearchived)
