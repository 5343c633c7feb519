"""The query projection, written once and used for live updates, catch-up and rebuilds.

An event becomes view rows (``rows_for``); a row replaces a stored row only if its version is
higher (``supersedes``). That rule makes the projection idempotent and order-tolerant: applying
the same events twice, or in another order, gives the same view. ``apply`` runs the rule on an
in-memory view; the DynamoDB store runs the same rule as a conditional write. Pure.
"""

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from functions import contract
from functions.events import (
    CommentCreated,
    CommentStatus,
    CommentUpdated,
    Event,
    PostCreated,
)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)

    post_id: str
    version: int


class PostRow(_Row):
    kind: Literal["post"] = "post"
    title: str

    @property
    def key(self) -> str:
        return f"{self.post_id}#"


class CommentRow(_Row):
    kind: Literal["comment"] = "comment"
    comment_id: str
    content: str
    status: CommentStatus
    author: str | None = None

    @property
    def key(self) -> str:
        return f"{self.post_id}#{self.comment_id}"


PROJECTED_EVENTS = (PostCreated, CommentCreated, CommentUpdated)
"""The events the view is made of: what the query service subscribes to."""

Row = PostRow | CommentRow
View = dict[str, Row]
"""An in-memory view: rows by key."""


def rows_for(event: Event) -> list[Row]:
    """The rows an event writes; events the view does not show (CommentModerated) write none."""
    match event:
        case PostCreated(data=post):
            return [PostRow(post_id=post.id, title=post.title, version=1)]
        case CommentCreated(data=comment) | CommentUpdated(data=comment):
            return [
                CommentRow(
                    post_id=comment.post_id,
                    comment_id=comment.id,
                    content=comment.content,
                    status=comment.status,
                    author=comment.author,
                    version=comment.comment_version,
                )
            ]
        case _:
            return []


def supersedes(incoming: Row, stored: Row | None) -> bool:
    return stored is None or incoming.version > stored.version


def apply(view: View, event: Event) -> View:
    """The view after ``event``; the input view is not changed."""
    return fold([event], dict(view))


def fold(events: Iterable[Event], view: View | None = None) -> View:
    """The view after every one of ``events``, built in one dictionary (for rebuilds)."""
    result: View = {} if view is None else view
    for event in events:
        for row in rows_for(event):
            if supersedes(row, result.get(row.key)):
                result[row.key] = row
    return result


def render(rows: Iterable[Row]) -> dict[str, dict[str, object]]:
    """The wire format of ``GET /posts``: posts by id, each with its comments.

    A comment's text is served only once it is approved (``contract.comment``): the text of a
    pending or a rejected comment stays in the view, never in an answer. A comment whose post
    row has not arrived yet is kept in the store but not shown.
    """
    posts: dict[str, dict[str, object]] = {}
    comments: dict[str, list[CommentRow]] = {}
    for row in rows:
        if isinstance(row, PostRow):
            posts[row.post_id] = {"id": row.post_id, "title": row.title, "comments": []}
        else:
            comments.setdefault(row.post_id, []).append(row)
    for post_id, post in posts.items():
        post["comments"] = [
            contract.dump(contract.comment(c.comment_id, c.content, c.status, author=c.author))
            for c in comments.get(post_id, [])
        ]
    return posts


def render_view(view: Mapping[str, Row]) -> dict[str, dict[str, object]]:
    return render(view[key] for key in sorted(view))
