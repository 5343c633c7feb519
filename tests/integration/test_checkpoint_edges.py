"""A consumer's checkpoint at its edges (mutants that survived `make mutants`).

The checkpoint adapter on moto's DynamoDB, in a consumer table with a hash key only
(moderation) and one with a hash and a range key (comments). Seen marks are kept per
``names.SEEN_BUCKET_SIZE`` positions, so marks either side of a bucket boundary are two items.
"""

import pytest

from functions import names, settings
from functions.dynamo import from_item
from functions.subscriptions import checkpoint
from functions.subscriptions.subscription import Subscription
from tests.helpers import scan

SIZE = names.SEEN_BUCKET_SIZE
HASH_ONLY = Subscription(
    name="tap", table=names.MODERATION_TABLE, key=(names.MODERATION_KEY,), handlers={}
)
HASH_AND_RANGE = Subscription(
    name="tap", table=names.COMMENTS_TABLE, key=names.COMMENTS_KEY, handlers={}
)
BOTH = pytest.mark.parametrize("subscription", [HASH_ONLY, HASH_AND_RANGE], ids=["hash", "range"])


def checkpoint_items(subscription: Subscription) -> list[dict[str, object]]:
    return [
        item
        for item in scan(subscription.table, checkpoints=True)
        if any(checkpoint.is_checkpoint_key(value) for value in item.values())
    ]


def test_keys_name_the_consumer_the_track_and_the_part() -> None:
    assert from_item(checkpoint.key(HASH_ONLY, "main", "watermark")) == {
        "comment_id": "~checkpoint#tap#main#watermark"
    }
    assert from_item(checkpoint.key(HASH_AND_RANGE, "v2", "seen#000000000001")) == {
        "post_id": "~checkpoint#tap#v2",
        "comment_id": "seen#000000000001",
    }


def test_only_strings_with_the_prefix_are_checkpoint_keys() -> None:
    assert checkpoint.is_checkpoint_key("~checkpoint#tap#main#watermark")
    assert not checkpoint.is_checkpoint_key("post~checkpoint#")
    assert not checkpoint.is_checkpoint_key(7)


@pytest.mark.usefixtures("deployed")
@BOTH
def test_the_watermark_starts_at_zero_and_only_moves_forward(subscription: Subscription) -> None:
    config = settings.load()
    assert checkpoint.watermark(config, subscription, "main") == 0
    checkpoint.save_watermark(config, subscription, "main", 5)
    checkpoint.save_watermark(config, subscription, "main", 3)  # a slower catch-up: refused
    assert checkpoint.watermark(config, subscription, "main") == 5
    checkpoint.save_watermark(config, subscription, "main", 5)  # no move: refused quietly
    assert checkpoint.watermark(config, subscription, "main") == 5
    # another track has a watermark of its own
    assert checkpoint.watermark(config, subscription, "other") == 0


@pytest.mark.usefixtures("deployed")
@BOTH
def test_marks_either_side_of_a_bucket_boundary_are_one_item_a_bucket(
    subscription: Subscription,
) -> None:
    # GIVEN marks in two seen buckets, on one track, and a mark on another track
    config = settings.load()
    checkpoint.mark(config, subscription, "main", [SIZE - 1, SIZE + 1, SIZE, 3])
    checkpoint.mark(config, subscription, "other", [4])
    # THEN one item a bucket holds them
    parts = sorted(str(item.get("comment_id")) for item in checkpoint_items(subscription))
    assert len(parts) == 3
    # AND a read spanning both buckets returns every mark of the track, none of the other's
    every = {3, SIZE - 1, SIZE, SIZE + 1}
    assert checkpoint.seen(config, subscription, "main", 1, SIZE + 5) == every
    # AND a read within the first bucket returns that bucket's marks only
    assert checkpoint.seen(config, subscription, "main", 1, 2) == {3, SIZE - 1}
    # AND a read that starts in the second bucket returns only its marks
    assert checkpoint.seen(config, subscription, "main", SIZE + 1, SIZE + 1) == {SIZE, SIZE + 1}
    # AND a read whose last position is below its first reads the first's bucket
    assert checkpoint.seen(config, subscription, "main", SIZE, 0) == {SIZE, SIZE + 1}


@pytest.mark.usefixtures("deployed")
@BOTH
def test_forget_removes_only_the_marks_named(subscription: Subscription) -> None:
    config = settings.load()
    checkpoint.mark(config, subscription, "main", [1, 2, SIZE + 2])
    checkpoint.forget(config, subscription, "main", [1, SIZE + 2])
    assert checkpoint.seen(config, subscription, "main", 0, SIZE + 9) == {2}


@pytest.mark.usefixtures("deployed")
@BOTH
def test_drop_deletes_a_tracks_watermark_and_marks_through_a_position(
    subscription: Subscription,
) -> None:
    # GIVEN two tracks with a watermark and marks in two buckets each
    config = settings.load()
    for track in ("old", "kept"):
        checkpoint.save_watermark(config, subscription, track, 7)
        checkpoint.mark(config, subscription, track, [9, SIZE + 9])
    # AND a mark of the old track in a third bucket, above the position it is dropped through
    checkpoint.mark(config, subscription, "old", [2 * SIZE + 1])
    # WHEN the old track is dropped through a position in the second bucket
    checkpoint.drop(config, subscription, "old", SIZE + 9)
    # THEN the old track has nothing left up to that position, and the other track is whole
    assert checkpoint.watermark(config, subscription, "old") == 0
    assert checkpoint.seen(config, subscription, "old", 0, 3 * SIZE) == {2 * SIZE + 1}
    assert checkpoint.watermark(config, subscription, "kept") == 7
    assert checkpoint.seen(config, subscription, "kept", 0, SIZE + 9) == {9, SIZE + 9}
    assert len(checkpoint_items(subscription)) == 4
