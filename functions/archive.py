"""The event archive (adapter): every published event with its global position.

Two tiers, one history:

- a DynamoDB table, partitioned by bucket (``position // segment_size``) and sorted by
  position, so a range of positions is one query per bucket: recent events and exact gaps;
- S3 segments, one JSON-lines object per bucket, for cheap bulk reads: a complete bucket's
  segment, or a partial one for the positions of the current bucket sealed so far.

A table record is written with no TTL. It gets its ``expires_at`` only after the segment that
holds it is in S3 and the counter row says so (``sealed_through``): DynamoDB may delete an
expired item at any moment after its time, so nothing may carry a TTL before it is safe to
lose from the table. The history is the union of the two tiers.

Positions are allocated per publisher batch with one atomic ``ADD`` on a counter row, so no
row is written once per event. A publisher that dies between allocating and recording leaves
holes: positions that will never be filled, which readers skip once they are old enough. The
same row counts the events archived again at a new position (``rearchived``): the only way an
event can be in the archive twice (see ``functions.publisher``).
"""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError
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
    """Buckets below this one are complete in their S3 segments."""
    sealed_through: int = 0
    """Every position up to this one is in S3 (the last bucket's in a partial segment)."""
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
    segmented = int(values.get("segmented_through", 0))
    return Head(
        position=int(values.get("head", 0)),
        allocated_at=float(values.get("allocated_at", 0)),
        segmented_through=segmented,
        sealed_through=max(
            int(values.get("sealed_through", 0)), segmented * settings.segment_size - 1, 0
        ),
        rearchived=int(values.get("rearchived", 0)),
    )


def record(settings: Settings, events: Sequence[ArchivedEvent]) -> None:
    """Store events at their positions (idempotent: a position always holds the same event).

    With no TTL: a record may expire only once it is sealed in S3 (``write_segments``).
    """
    batch_write(_table(settings), [_put(settings, event) for event in events])


def _put(settings: Settings, event: ArchivedEvent, expires: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        BUCKET: bucket_of(settings, event.position),
        POSITION: event.position,
        **event.model_dump(exclude={"position"}),
    }
    if expires is not None:
        item[names.ARCHIVE_TTL_ATTRIBUTE] = int(expires)
    return {"PutRequest": {"Item": to_item(item)}}


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
    return [event for event, _ in _query_items(settings, bucket, first, last)]


def read(settings: Settings, positions: Iterable[int]) -> dict[int, ArchivedEvent]:
    """The archived events at ``positions`` (absent ones are holes or not yet recorded).

    Each bucket is read once, from S3 if it is segmented, else one query over the span of the
    positions wanted in it.
    """
    wanted: dict[int, list[int]] = {}
    for position in positions:
        wanted.setdefault(bucket_of(settings, position), []).append(position)
    if not wanted:
        return {}
    current = head(settings)
    found: dict[int, ArchivedEvent] = {}
    for bucket, in_bucket in sorted(wanted.items()):
        events = _read_bucket(settings, current, bucket, min(in_bucket), max(in_bucket))
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
    current = head(settings)
    last_bucket = bucket_of(settings, through)
    for bucket in range(last_bucket + 1):
        first = bucket * settings.segment_size
        events = _read_bucket(settings, current, bucket, first, first + settings.segment_size - 1)
        yield from (e for e in events if e.position <= through)
        if progress is not None:
            progress(min(through, (bucket + 1) * settings.segment_size - 1))


def _read_bucket(
    settings: Settings, current: Head, bucket: int, first: int, last: int
) -> list[ArchivedEvent]:
    """The events of ``bucket`` between ``first`` and ``last``, in order: its complete segment,
    or the table together with its partial segment (whose table records may have expired)."""
    if bucket < current.segmented_through:
        return read_segment(settings, bucket)
    return _with_partial(
        settings, current, bucket, _query_bucket(settings, bucket, first, last), first, last
    )


def _with_partial(
    settings: Settings,
    current: Head,
    bucket: int,
    recorded: Iterable[ArchivedEvent],
    first: int,
    last: int,
) -> list[ArchivedEvent]:
    """``bucket``'s ``recorded`` table records with its partial segment's between ``first`` and
    ``last`` (the segment's table records may have expired), in order."""
    events = {e.position: e for e in recorded}
    if _partial_bucket(settings, current) == bucket:
        for event in read_segment(settings, bucket, current.sealed_through):
            if first <= event.position <= last:
                events.setdefault(event.position, event)
    return [events[position] for position in sorted(events)]


def _partial_bucket(settings: Settings, current: Head) -> int | None:
    """The bucket with a partial segment (through ``current.sealed_through``), if any."""
    if current.sealed_through < 1:
        return None
    bucket = bucket_of(settings, current.sealed_through)
    return bucket if bucket >= current.segmented_through else None


def _segment_key(bucket: int, through: int | None = None) -> str:
    """A complete bucket's key; a partial segment's names its last sealed position, so that a
    segment, once named by the counter row, never changes under a reader."""
    partial = "" if through is None else f".through-{through:012d}"
    return f"{names.ARCHIVE_SEGMENT_PREFIX}{bucket:012d}{partial}.jsonl"


def read_segment(
    settings: Settings, bucket: int, through: int | None = None
) -> list[ArchivedEvent]:
    """A complete bucket's segment, or (``through``) the partial one sealed up to a position."""
    body = aws.client("s3").get_object(
        Bucket=settings.archive_bucket, Key=_segment_key(bucket, through)
    )
    lines = body["Body"].read().decode().splitlines()
    return [ArchivedEvent.model_validate_json(line) for line in lines if line]


def write_segments(settings: Settings) -> list[int]:
    """Seal into S3 what can no longer change, then let it expire; the buckets written.

    A position can no longer change once it and every position before it were allocated
    longer ago than the hole grace (longer than any function that allocates can run): its
    record is there, or it is a hole for good. A complete bucket is sealed at once, the
    current bucket (partially, rewriting its partial segment) once its oldest unsealed record
    is older than the seal age. Each segment holds the table's records and the previous partial
    segment's (whose table records may have expired already). Only once the segment is in S3
    and the counter row names it do the table records it holds get their ``expires_at``.
    """
    written: list[int] = []
    now = _now()
    current = head(settings)
    unsealed = _unsealed(settings, current)
    through = _sealable_through(current, unsealed, now - settings.hole_grace_seconds)
    while through > current.sealed_through:
        bucket = bucket_of(settings, current.sealed_through + 1)
        last = min(through, (bucket + 1) * settings.segment_size - 1)
        complete = last == (bucket + 1) * settings.segment_size - 1
        oldest = next((e for e in unsealed if e.position > current.sealed_through), None)
        if not complete and (
            oldest is None or oldest.archived_at >= now - settings.seal_age_seconds
        ):
            break
        sealed = _seal(settings, current, bucket, last, complete, now)
        if sealed is None:
            break  # another run sealed first: the next run starts from its counter row
        current = sealed
        written.append(bucket)
    return written


def _unsealed(settings: Settings, current: Head) -> list[ArchivedEvent]:
    """The table's records after ``current.sealed_through``, in order."""
    first = current.sealed_through + 1
    events: list[ArchivedEvent] = []
    for bucket in range(bucket_of(settings, first), bucket_of(settings, current.position) + 1):
        last = (bucket + 1) * settings.segment_size - 1
        events += _query_bucket(settings, bucket, max(first, bucket * settings.segment_size), last)
    return events


def _sealable_through(current: Head, unsealed: list[ArchivedEvent], moment: float) -> int:
    """The last position that, with every position before it, was allocated before ``moment``.

    Positions are allocated in order and a record's ``archived_at`` is taken after its
    allocation, so a record archived before ``moment`` vouches for itself and all before it;
    the counter's last allocation time vouches for every position allocated.
    """
    if current.allocated_at < moment:
        return current.position
    vouched = [e.position for e in unsealed if e.archived_at < moment]
    return max([current.sealed_through, *vouched])


def _seal(
    settings: Settings, current: Head, bucket: int, last: int, complete: bool, now: float
) -> Head | None:
    """Write ``bucket``'s segment through ``last``, name it on the counter row, then give its
    table records their TTL; the new head, or None when another run moved the row first."""
    first = bucket * settings.segment_size
    table_items = _query_items(settings, bucket, first, last)
    events = _with_partial(settings, current, bucket, (e for e, _ in table_items), first, last)
    body = "".join(event.model_dump_json() + "\n" for event in events)
    aws.client("s3").put_object(
        Bucket=settings.archive_bucket,
        Key=_segment_key(bucket, None if complete else last),
        Body=body.encode(),
    )
    segmented = bucket + 1 if complete else current.segmented_through
    try:
        aws.client("dynamodb").update_item(
            TableName=_table(settings),
            Key=to_item(_COUNTER),
            UpdateExpression="SET sealed_through = :last, segmented_through = :segmented",
            ConditionExpression="attribute_not_exists(sealed_through) OR sealed_through = :was",
            ExpressionAttributeValues=to_item(
                {":last": last, ":segmented": segmented, ":was": current.sealed_through}
            ),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    expires = now + settings.archive_retention_days * 86_400
    batch_write(
        _table(settings),
        [_put(settings, event, expires) for event, has_ttl in table_items if not has_ttl],
    )
    return current.model_copy(update={"sealed_through": last, "segmented_through": segmented})


def _query_items(
    settings: Settings, bucket: int, first: int, last: int
) -> list[tuple[ArchivedEvent, bool]]:
    """The table's records in a range of one bucket, each with whether it carries a TTL."""
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
    return [
        (_to_event(item), names.ARCHIVE_TTL_ATTRIBUTE in item)
        for page in pages
        for item in page["Items"]
    ]


def allocated_before(settings: Settings, position: int, moment: float, current: Head) -> bool:
    """Whether ``position`` was allocated before ``moment``.

    A sealed position was: positions are sealed only after the grace. Otherwise, positions
    are allocated in order, so the first event archived after ``position`` was allocated after
    it; with none yet, the counter's last allocation time bounds it.
    """
    if position > current.position:
        return False
    if position <= current.sealed_through:
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
