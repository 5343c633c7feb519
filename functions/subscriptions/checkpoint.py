"""A consumer's checkpoint in its own table (adapter): its watermark and its seen marks.

- The watermark: every archive position up to it is applied (or a hole). One item a track.
- Seen marks: positions the live path applied above the watermark, as number sets, one item
  per ``names.SEEN_BUCKET_SIZE`` positions. The live path adds a whole batch's positions with
  one ``ADD`` (one write a batch, not one an event); catch-up folds them into the watermark and
  removes them with ``DELETE``. Both are atomic set operations, so they never lose each other's
  marks.

Held events: an archived event the consumer could not apply (a schema version newer than this
code reads, an event it cannot parse, or a handler that raised) is held. Its position is in the
``held`` set of the watermark's item, so whoever reads the watermark reads what holds it back,
and its failure record (reason, tries) is under the part ``parked#<position>``. It is *parked*
(reported, counted, alarmed) once unreadable or after ``names.PARK_AFTER_TRIES`` tries.
Catch-up retries every held position on every run, and releases it once applied.

Checkpoint items live under keys that start with ``names.CHECKPOINT_PREFIX``: for a table with
a hash key only, ``~checkpoint#<consumer>#<track>#<part>``; with a range key too, the hash key
is ``~checkpoint#<consumer>#<track>`` and the range key is the part.
"""

import contextlib
import time
from collections.abc import Iterable

from pydantic import BaseModel

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


class State(BaseModel):
    """The watermark and the positions held below it, read together."""

    watermark: int = 0
    held: set[int] = set()


def state(settings: Settings, subscription: Subscription, track: str) -> State:
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=_table(settings, subscription),
            Key=key(subscription, track, WATERMARK),
            ConsistentRead=True,
        )
        .get("Item")
    )
    values = from_item(item) if item else {}
    return State(
        watermark=int(values.get(WATERMARK, 0)),
        held={int(p) for p in values.get(names.HELD_ATTRIBUTE, ())},
    )


def watermark(settings: Settings, subscription: Subscription, track: str) -> int:
    return state(settings, subscription, track).watermark


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


class Failure(BaseModel):
    """An event a track could not apply: why, and how many times it was tried."""

    consumer: str
    track: str
    position: int
    event_id: str
    event_type: str
    reason: str
    tries: int
    unreadable: bool
    """This code cannot read it (a newer schema version, or not a valid event at all)."""
    first_failed_at: float
    last_failed_at: float
    given_up: bool = False
    """The live path acknowledged its message (received as often as tries allow)."""

    @property
    def parked(self) -> bool:
        """Reported and given up on by the queue: retried by catch-up only."""
        return self.unreadable or self.given_up or self.tries >= names.PARK_AFTER_TRIES


def _parked_part(position: int) -> str:
    return f"{names.PARKED_PART}#{position:012d}"


def _failure(subscription: Subscription, track: str, item: Item) -> Failure:
    values = from_item(item)
    return Failure(
        consumer=subscription.name,
        track=track,
        position=int(values["position"]),
        event_id=values["event_id"],
        event_type=values["event_type"],
        reason=values["reason"],
        tries=int(values["tries"]),
        unreadable=bool(values["unreadable"]),
        first_failed_at=float(values["first_failed_at"]),
        last_failed_at=float(values["last_failed_at"]),
        given_up=bool(values.get("given_up", False)),
    )


def hold(
    settings: Settings,
    subscription: Subscription,
    track: str,
    *,
    position: int,
    event_id: str,
    event_type: str,
    reason: str,
    unreadable: bool,
    given_up: bool = False,
) -> Failure:
    """Record one failed try at ``position`` and hold it: two writes, on failures only.
    ``given_up``: the live path acknowledges its message now, whatever the tries."""
    client = aws.client("dynamodb")
    now = time.time()
    give_up = ", #given_up = :given_up" if given_up else ""
    response = client.update_item(
        TableName=_table(settings, subscription),
        Key=key(subscription, track, _parked_part(position)),
        UpdateExpression=(
            "SET #position = :position, #event_id = :event_id, #event_type = :event_type, "
            "#reason = :reason, #unreadable = :unreadable, #last = :now, "
            f"#first = if_not_exists(#first, :now){give_up} ADD #tries :one"
        ),
        ExpressionAttributeNames={
            "#position": "position",
            "#event_id": "event_id",
            "#event_type": "event_type",
            "#reason": "reason",
            "#unreadable": "unreadable",
            "#last": "last_failed_at",
            "#first": "first_failed_at",
            "#tries": "tries",
            **({"#given_up": "given_up"} if given_up else {}),
        },
        ExpressionAttributeValues=to_item(
            {
                ":position": position,
                ":event_id": event_id,
                ":event_type": event_type,
                ":reason": reason[:1000],
                ":unreadable": unreadable,
                ":now": now,
                ":one": 1,
                **({":given_up": True} if given_up else {}),
            }
        ),
        ReturnValues="ALL_NEW",
    )
    client.update_item(
        TableName=_table(settings, subscription),
        Key=key(subscription, track, WATERMARK),
        UpdateExpression="ADD #held :position",
        ExpressionAttributeNames={"#held": names.HELD_ATTRIBUTE},
        ExpressionAttributeValues={":position": {"NS": [str(position)]}},
    )
    return _failure(subscription, track, response["Attributes"])


def failures(
    settings: Settings, subscription: Subscription, track: str, positions: Iterable[int]
) -> list[Failure]:
    """The failure records of held ``positions``, in position order: one batched read."""
    keys = [key(subscription, track, _parked_part(p)) for p in sorted(set(positions))]
    items = batch_get(_table(settings, subscription), keys) if keys else []
    return sorted((_failure(subscription, track, item) for item in items), key=lambda f: f.position)


def release(
    settings: Settings, subscription: Subscription, track: str, positions: Iterable[int]
) -> None:
    """Held positions now applied: out of the held set, their failure records deleted."""
    released = sorted(set(positions))
    if not released:
        return
    aws.client("dynamodb").update_item(
        TableName=_table(settings, subscription),
        Key=key(subscription, track, WATERMARK),
        UpdateExpression="DELETE #held :positions",
        ExpressionAttributeNames={"#held": names.HELD_ATTRIBUTE},
        ExpressionAttributeValues={":positions": {"NS": [str(p) for p in released]}},
    )
    batch_write(
        _table(settings, subscription),
        [{"DeleteRequest": {"Key": key(subscription, track, _parked_part(p))}} for p in released],
    )


def drop(settings: Settings, subscription: Subscription, track: str, through: int) -> None:
    """Delete a track's watermark, its held events and its seen marks up to ``through``."""
    held = state(settings, subscription, track).held
    parts = [WATERMARK] + [_seen_part(b) for b in range(_bucket(through) + 1)]
    parts += [_parked_part(p) for p in sorted(held)]
    batch_write(
        _table(settings, subscription),
        [{"DeleteRequest": {"Key": key(subscription, track, part)}} for part in parts],
    )
