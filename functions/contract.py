"""The public API's wire format, as pydantic models: what the answers hold (pure).

``functions/openapi.py`` generates the OpenAPI document from these models and the commands;
the routes build their answers with the helpers here, so what is served and what is documented
come from one place. docs/api.md describes the contract in prose.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema

from functions.commands import MAX_AUTHOR, MAX_CONTENT, MAX_TITLE
from functions.events import CommentStatus
from functions.ids import MAX_ID

MAX_ANSWER_COMMENTS = 200
"""The most comments a comment ``POST`` answers with: the post's newest, the created one among
them. Any more are read from ``GET /posts/{post_id}``."""

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Comment(_Wire):
    """A comment as served. ``content`` is there only when the comment is approved, or in the
    answer to the request that created it (its author's own text, as sent): the text of a
    pending or rejected comment never leaves the server otherwise."""

    id: Id
    status: CommentStatus
    content: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_CONTENT}),
    ] = None
    """Absent (never null) when the text is not served."""
    author: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_AUTHOR}),
    ] = None
    """The author's name, if one was given: served with the text, never without it."""


class Post(_Wire):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
    comments: list[Comment]
    """In the order they were written."""


class CreatedPost(_Wire):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]


class PostsPage(RootModel[dict[str, Post]]):
    """Posts by id, newest first: one page of ``GET /posts``."""


class CommentsAnswer(RootModel[list[Comment]]):
    """A comment ``POST``'s answer: at most ``MAX_ANSWER_COMMENTS`` of the post's newest
    comments, oldest first, with the one created (``status`` pending, with its ``content``)."""

    root: Annotated[list[Comment], Field(max_length=MAX_ANSWER_COMMENTS)]


class ErrorDetail(_Wire):
    field: str
    problem: str


class ErrorBody(_Wire):
    code: str = Field(min_length=1)
    message: str = Field(min_length=1)
    details: list[ErrorDetail] | None = None


class Error(_Wire):
    """Every refusal: a 4xx status with this body."""

    error: ErrorBody


def comment(
    comment_id: str,
    content: str,
    status: CommentStatus,
    own: bool = False,
    author: str | None = None,
) -> Comment:
    """A comment as served: its text and author's name only when approved, or to its author
    (``own``)."""
    if own or status == "approved":
        return Comment(id=comment_id, status=status, content=content, author=author)
    return Comment(id=comment_id, status=status)


def dump(comment_: Comment) -> dict[str, object]:
    """The comment's JSON: no ``content`` key at all when its text is not served."""
    return comment_.model_dump(exclude_none=True)
