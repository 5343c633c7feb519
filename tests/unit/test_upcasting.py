"""Upcasters: version-1 comment events read as version 2, by pure functions."""

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from functions import upcasting
from functions.events import (
    CURRENT_VERSIONS,
    CommentCreated,
    CommentData,
    CommentModerated,
    CommentUpdated,
    ModerationData,
    PostCreated,
    PostData,
    parse_event,
)
from functions.query import projection

COMMENT_TYPES = ("CommentCreated", "CommentModerated", "CommentUpdated")


def version_1(event_type: str, status: str = "pending", comment_version: int = 1) -> dict[str, Any]:
    """A comment event as the version-1 code wrote it: no author, version 1."""
    return {
        "event_id": f"e-{event_type}",
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-01T10:00:00Z",
        "aggregate_id": "c1",
        "data": {
            "id": "c1",
            "postId": "p1",
            "content": "lovely weather",
            "status": status,
            "commentVersion": comment_version,
        },
    }


def test_every_comment_event_is_at_version_2_and_posts_stay_at_1() -> None:
    assert dict(CURRENT_VERSIONS) == {
        "PostCreated": 1,
        "CommentCreated": 2,
        "CommentModerated": 2,
        "CommentUpdated": 2,
    }


@pytest.mark.parametrize("event_type", COMMENT_TYPES)
def test_a_version_1_comment_event_upcasts_to_version_2_without_an_author(event_type: str) -> None:
    old = version_1(event_type)
    kept = copy.deepcopy(old)
    new = upcasting.upcast(old)
    assert old == kept, "the upcaster changed its input"
    assert new["version"] == 2
    assert new["data"] == {**old["data"], "author": None}
    assert {k: v for k, v in new.items() if k not in ("version", "data")} == {
        k: v for k, v in old.items() if k not in ("version", "data")
    }


def test_parsing_a_version_1_event_gives_the_current_model() -> None:
    for event_type, status in (
        ("CommentCreated", "pending"),
        ("CommentModerated", "approved"),
        ("CommentUpdated", "approved"),
    ):
        event = parse_event(json.dumps(version_1(event_type, status)))
        assert (event.type, event.version) == (event_type, 2)
        assert isinstance(event, CommentCreated | CommentModerated | CommentUpdated)
        assert event.data.author is None
        assert event.data.content == "lovely weather"


def test_the_current_version_and_what_has_no_upcaster_pass_through_unchanged() -> None:
    current = {**version_1("CommentCreated"), "version": 2}
    assert upcasting.upcast(current) is current
    post = {"type": "PostCreated", "version": 1, "data": {}}
    assert upcasting.upcast(post) is post
    for odd in ({"type": 3, "version": 1}, {"type": "CommentCreated", "version": "1"}, {}):
        assert upcasting.upcast(odd) is odd


def test_an_invalid_version_1_event_is_still_refused_after_upcasting() -> None:
    broken = {**version_1("CommentCreated"), "data": "not a comment"}
    assert upcasting.upcast(broken)["version"] == 2
    with pytest.raises(ValidationError, match="data"):
        parse_event(json.dumps(broken))
    empty = {**version_1("CommentCreated"), "data": {**version_1("CommentCreated")["data"]}}
    del empty["data"]["content"]
    with pytest.raises(ValidationError, match="content"):
        parse_event(json.dumps(empty))


def test_an_author_is_bounded_in_events_and_carried_to_the_view() -> None:
    signed = CommentData(
        id="c1", postId="p1", content="hi", status="approved", commentVersion=1, author="Ada"
    )
    created = CommentCreated.of(signed)
    assert parse_event(created.to_json()) == created
    with pytest.raises(ValidationError, match="author"):
        CommentData(
            id="c", postId="p", content="x", status="pending", commentVersion=1, author="a" * 81
        )
    unsigned = CommentCreated.of(signed.model_copy(update={"id": "c2", "author": None}))
    view = projection.fold([PostCreated.of(PostData(id="p1", title="t")), created, unsigned])
    assert projection.render_view(view)["p1"]["comments"] == [
        {"id": "c1", "content": "hi", "status": "approved", "author": "Ada"},
        {"id": "c2", "content": "hi", "status": "approved"},
    ]
    # AND, as the text, the author of a comment not approved is not served (docs/api.md)
    pending = CommentCreated.of(signed.model_copy(update={"id": "c3", "status": "pending"}))
    held = projection.fold([PostCreated.of(PostData(id="p1", title="t")), pending])
    assert projection.render_view(held)["p1"]["comments"] == [{"id": "c3", "status": "pending"}]


def test_a_mixed_history_folds_to_the_view_an_all_version_2_history_gives() -> None:
    """Old events upcast: folding v1 and v2 events gives the same view as all-v2 events."""
    v1 = [
        json.dumps(version_1("CommentCreated")),
        json.dumps(version_1("CommentUpdated", "approved", 2)),
    ]
    v2 = [
        CommentCreated.of(
            CommentData(
                id="c1", postId="p1", content="lovely weather", status="pending", commentVersion=1
            )
        ).to_json(),
        CommentUpdated.of(
            ModerationData(
                id="c1", postId="p1", content="lovely weather", status="approved", commentVersion=2
            )
        ).to_json(),
    ]
    assert projection.fold(map(parse_event, v1)) == projection.fold(map(parse_event, v2))
