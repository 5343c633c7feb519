"""Acceptance 2: the item and its outbox record are written together or not at all."""

import pytest

from emulator.stack import Stack
from functions import names, outbox, settings
from functions.events import PostCreated, PostData
from functions.posts import store
from tests.helpers import scan


def test_item_and_outbox_record_commit_together(deployed: Stack) -> None:
    post = PostData(id="p1", title="t")
    store.insert(settings.load(), post, PostCreated.of(post))
    assert [p["id"] for p in scan(names.POSTS_TABLE)] == ["p1"]
    [record] = scan(names.OUTBOX_TABLE)
    assert (record["event_type"], record["sent"]) == ("PostCreated", False)


def test_failed_outbox_write_stores_no_item(deployed: Stack) -> None:
    # GIVEN an outbox record that already holds the event id
    first = PostData(id="p1", title="first")
    event = PostCreated.of(first)
    store.insert(settings.load(), first, event)
    # WHEN another post is stored with an event whose outbox write must fail
    second = PostData(id="p2", title="second")
    clash = event.model_copy(update={"data": second, "aggregate_id": "p2"})
    with pytest.raises(outbox.ConditionFailed) as cancelled:
        store.insert(settings.load(), second, clash)
    assert cancelled.value.failed == [1]  # the outbox put, not the post's
    # THEN the second post was not stored either
    assert [p["id"] for p in scan(names.POSTS_TABLE)] == ["p1"]
    assert len(scan(names.OUTBOX_TABLE)) == 1


def test_failed_item_write_stores_no_outbox_record(deployed: Stack) -> None:
    # GIVEN a stored post
    post = PostData(id="p1", title="first")
    store.insert(settings.load(), post, PostCreated.of(post))
    # WHEN the same post id is written again (its put's condition fails)
    again = PostData(id="p1", title="again")
    with pytest.raises(outbox.ConditionFailed) as cancelled:
        store.insert(settings.load(), again, PostCreated.of(again))
    assert cancelled.value.failed == [0]  # the post's put, not the outbox's
    # THEN no second outbox record exists and the post is unchanged
    assert [(p["id"], p["title"]) for p in scan(names.POSTS_TABLE)] == [("p1", "first")]
    assert len(scan(names.OUTBOX_TABLE)) == 1
