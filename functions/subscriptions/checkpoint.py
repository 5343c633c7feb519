"""A consumer's checkpoint in its own table (adapter): its watermark and its seen marks.

- The watermark: every archive position up to it is applied (or a hole). One item a track.
- Seen marks: positions the live path applied above the watermark, as number sets, one item
  per ``names.SEEN_BUCKET_SIZE`` positions. The live path adds a whole batch's positions with
  one ``ADD`` (one write a batch, not one an event); catch-up folds them into the watermark and
  removes them with ``DELETE``. Both are atomic set operations, so they never lose each other's
  marks.

Checkpoint items live under keys that start with ``names.CHECKPOINT_PREFIX``: for a table with
a hash key only, ``~checkpoint#<consumer>#<track>#<part>``; with a range key too, the hash key
is ``~checkpoint#<consumer>#<track>`` and the range key is the part.
"""

import contextlib
from collections.abc import Iterable

from functions import aws, names
from functions.dynamo import Item, batch_get, batch_write, from_item, to_item
from functions.settings import Settings
from functions.subscriptions.subscription import Subscription

WATERMARK = "watermark"
SEEN = "seen"


def _table(settings: Settings, subscription: Subscription) -> str:
    return settings.table(subscription.table)


def is_checkpoint_key(value: object) -> bool:
    """Whether a table's hash key value belongs to a checkpoint (for readers of the table)."""
    return isinstance(value, str) and value.startswith(names.CHECKPOINT_PREFIX)


def key(subscription: Subscription, track: str, part: str) -> Item:
    base = f"{names.CHECKPOINT_PREFIX}{subscription.name}#{track}"
    if len(subscription.key) == 1:
        return to_item({subscription.key[0]: f"{base}#{part}"})
    hash_key, range_key = subscription.key
    return to_item({hash_key: base, range_key: part})


def _bucket(position: int) -> int:
    return position // names.SEEN_BUCKET_SIZE


def _seen_part(bucket: int) -> str:
    return f"{SEEN}#{bucket:012d}"


def watermark(settings: Settings, subscription: Subscription, track: str) -> int:
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=_table(settings, subscription),
            Key=key(subscription, track, WATERMARK),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(from_item(item)[WATERMARK]) if item else 0


def save_watermark(settings: Settings, subscription: Subscription, track: str, at: int) -> None:
    """Move the watermark forward only: a slower concurrent catch-up cannot move it back."""
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=_table(settings, subscription),
            Key=key(subscription, track, WATERMARK),
            UpdateExpression="SET #watermark = :position",
            ConditionExpression="attribute_not_exists(#watermark) OR #watermark < :position",
            ExpressionAttributeNames={"#watermark": WATERMARK},
            ExpressionAttributeValues=to_item({":position": at}),
        )


def _by_bucket(positions: Iterable[int]) -> dict[int, set[int]]:
    buckets: dict[int, set[int]] = {}
    for position in positions:
        buckets.setdefault(_bucket(position), set()).add(position)
    return buckets


def _change_marks(
    settings: Settings,
    subscription: Subscription,
    track: str,
    action: str,
    positions: Iterable[int],
) -> None:
    for bucket, marks in sorted(_by_bucket(positions).items()):
        aws.client("dynamodb").update_item(
            TableName=_table(settings, subscription),
            Key=key(subscription, track, _seen_part(bucket)),
            UpdateExpression=f"{action} #seen :marks",
            ExpressionAttributeNames={"#seen": SEEN},
            ExpressionAttributeValues={":marks": {"NS": [str(p) for p in sorted(marks)]}},
        )


def mark(
    settings: Settings, subscription: Subscription, track: str, positions: Iterable[int]
) -> None:
    """Record ``positions`` as applied: one write per bucket they fall in (one, usually)."""
    _change_marks(settings, subscription, track, "ADD", positions)


def forget(
    settings: Settings, subscription: Subscription, track: str, positions: Iterable[int]
) -> None:
    """Remove marks that the watermark now covers."""
    _change_marks(settings, subscription, track, "DELETE", positions)


def seen(
    settings: Settings, subscription: Subscription, track: str, first: int, last: int
) -> set[int]:
    """Every mark in the buckets that hold positions ``first`` to ``last``: one batched read."""
    keys = [
        key(subscription, track, _seen_part(bucket))
        for bucket in range(_bucket(first), _bucket(max(first, last)) + 1)
    ]
    items = batch_get(_table(settings, subscription), keys)
    return {int(p) for item in items for p in from_item(item).get(SEEN, ())}


def drop(settings: Settings, subscription: Subscription, track: str, through: int) -> None:
    """Delete a track's watermark and its seen marks up to position ``through``."""
    parts = [WATERMARK] + [_seen_part(b) for b in range(_bucket(through) + 1)]
    batch_write(
        _table(settings, subscription),
        [{"DeleteRequest": {"Key": key(subscription, track, part)}} for part in parts],
    )
