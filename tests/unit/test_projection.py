"""The projection is idempotent and order-tolerant: any order, any repeats, the same view."""

import itertools

from functions.events import (
    CommentCreated,
    CommentData,
    CommentModerated,
    CommentUpdated,
    Event,
    PostCreated,
    PostData,
)
from functions.query.projection import View, apply, render_view


def comment(status: str, version: int) -> CommentData:
    return CommentData.model_validate(
        {"id": "c1", "postId": "p1", "content": "hi", "status": status, "commentVersion": version}
    )


POST = PostCreated.of(PostData(id="p1", title="Hello"))
CREATED = CommentCreated.of(comment("pending", 1))
MODERATED = CommentModerated.model_validate(
    {"aggregate_id": "c1", "data": comment("approved", 1).model_dump(by_alias=True)}
)
UPDATED = CommentUpdated.of(comment("approved", 2))
EXPECTED = {
    "p1": {
        "id": "p1",
        "title": "Hello",
        "comments": [{"id": "c1", "content": "hi", "status": "approved"}],
    }
}


def fold(events: list[Event]) -> View:
    view: View = {}
    for event in events:
        view = apply(view, event)
    return view


def test_the_story_in_order() -> None:
    assert render_view(fold([POST, CREATED, MODERATED, UPDATED])) == EXPECTED


def test_every_order_with_repeats_gives_the_same_view() -> None:
    events: list[Event] = [POST, CREATED, MODERATED, UPDATED, CREATED, UPDATED]
    for order in itertools.permutations(events):
        assert render_view(fold(list(order))) == EXPECTED


def test_a_comment_before_its_post_waits_unseen() -> None:
    view = fold([UPDATED])
    assert render_view(view) == {}
    assert render_view(apply(view, POST)) == EXPECTED


def test_apply_does_not_change_its_input() -> None:
    view = fold([POST])
    apply(view, CREATED)
    assert render_view(view)["p1"]["comments"] == []
