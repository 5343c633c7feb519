"""Event contracts: every event has an id, a type, a schema version and a time; bad input fails."""

import json

import pytest
from pydantic import ValidationError

from functions.commands import MAX_CONTENT, MAX_TITLE
from functions.events import (
    CommentCreated,
    CommentData,
    PostCreated,
    PostData,
    UnknownVersion,
    derived_event_id,
    parse_event,
)
from functions.ids import MAX_ID


def comment(version: int = 1) -> CommentData:
    return CommentData(id="c", postId="p", content="x", status="pending", commentVersion=version)


def test_events_round_trip_through_json() -> None:
    for event in (PostCreated.of(PostData(id="p", title="t")), CommentCreated.of(comment())):
        assert parse_event(event.to_json()) == event


def test_every_event_carries_the_envelope() -> None:
    raw = CommentCreated.of(comment()).model_dump(by_alias=True)
    assert {"event_id", "type", "version", "occurred_at", "aggregate_id"} <= set(raw)
    assert raw["data"]["postId"] == "p"
    assert raw["data"]["commentVersion"] == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"type": "Unheard"}, "does not match any of the expected tags"),
        ({"version": 0}, "Input should be 1"),
        ({"version": "2"}, "Input should be 1"),
        ({"event_id": ""}, "at least 1 character"),
        ({"data": {"id": "p"}}, "title"),
        ({"data": {"id": "p", "title": "t" * (MAX_TITLE + 1)}}, "at most 200 characters"),
        ({"data": {"id": "p", "title": ""}}, "at least 1 character"),
        ({"aggregate_id": "p" * (MAX_ID + 1)}, "at most 64 characters"),
    ],
)
def test_parse_rejects_what_is_not_a_known_event(change: dict[str, object], problem: str) -> None:
    raw = PostCreated.of(PostData(id="p", title="t")).model_dump(mode="json")
    with pytest.raises(ValidationError, match=problem):
        parse_event(json.dumps({**raw, **change}))


def test_a_field_this_code_does_not_know_is_read_not_refused() -> None:
    """A tolerant reader: a newer producer's added fields (in the envelope or the data) are
    dropped; what this code knows is still validated strictly."""
    event = PostCreated.of(PostData(id="p", title="t"))
    raw = event.model_dump(mode="json")
    newer = {**raw, "trace": "abc", "data": {**raw["data"], "subtitle": "added later"}}
    assert parse_event(json.dumps(newer)) == event
    with pytest.raises(ValidationError, match="at least 1 character"):
        parse_event(json.dumps({**newer, "data": {**newer["data"], "title": ""}}))


def test_a_newer_version_of_a_known_type_is_unknown_not_poison() -> None:
    """What a newer producer writes: readable after an upgrade, so told apart from poison."""
    raw = PostCreated.of(PostData(id="p", title="t")).model_dump(mode="json")
    with pytest.raises(UnknownVersion, match="PostCreated version 7 is newer") as raised:
        parse_event(json.dumps({**raw, "version": 7, "data": {"anything": True}}))
    assert (raised.value.event_type, raised.value.version) == ("PostCreated", 7)
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_event(json.dumps({**raw, "type": "PostDeleted", "version": 7}))


def test_an_event_holds_exactly_what_a_command_can_hold() -> None:
    """The bounds are the commands': the longest accepted title and comment make valid events."""
    assert PostData(id="p" * MAX_ID, title="t" * MAX_TITLE).title
    longest = comment().model_copy(update={"content": "x" * MAX_CONTENT})
    event = CommentCreated.of(longest)
    assert parse_event(event.to_json()) == event
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        CommentData(
            id="c", postId="p", content="x" * (MAX_CONTENT + 1), status="pending", commentVersion=1
        )


def test_comment_version_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        comment(version=0)


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_event_id("a", "b") == derived_event_id("a", "b")
    assert derived_event_id("a", "b") != derived_event_id("a", "c")
