"""Event contracts: what each service announces, as pydantic models.

Events are facts in the past tense. Every event has an id, a type, a schema version, the time
it occurred and the id of the aggregate it is about. Comment events also carry the comment's
version, which grows with every change, so a consumer can recognise a stale or repeated event.
Every text field has the bounds the commands have, so an event no command could have produced
(a 200 KB title) is refused by its consumer and ends in the DLQ.

Events are read tolerantly: a field this code does not know (added by a newer producer) is
ignored, not refused, so a producer deployed before its consumers breaks nothing; what this
code does know is validated strictly. Commands from HTTP are the other edge and stay strict.
This module is pure: no AWS, no Chalice.
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from functions.commands import MAX_AUTHOR, MAX_CONTENT, MAX_TITLE
from functions.ids import MAX_ID
from functions.upcasting import upcast

SCHEMA_VERSION: Literal[1] = 1
CommentStatus = Literal["pending", "approved", "rejected"]
ModerationVerdict = Literal["approved", "rejected"]

_NAMESPACE = uuid.UUID("5f1a3c8e-2b7d-4c55-9a0e-7f6b1d2c3e4f")

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]


def derived_event_id(*parts: str) -> str:
    """A deterministic event id, so that handling the same cause twice emits the same event."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


class _Model(BaseModel):
    # A tolerant reader: unknown fields are dropped, known ones are validated.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class PostData(_Model):
    id: Id
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]


class CommentData(_Model):
    id: Id
    post_id: Id = Field(alias="postId")
    content: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTENT)]
    status: CommentStatus
    comment_version: int = Field(alias="commentVersion", ge=1)
    author: Annotated[str, StringConstraints(min_length=1, max_length=MAX_AUTHOR)] | None = None
    """The author's name, if one was given (from version 2 of the comment events)."""


class ModerationData(CommentData):
    status: ModerationVerdict


class _Event(_Model):
    event_id: Id = Field(default_factory=lambda: str(uuid.uuid4()))
    version: Literal[1] = SCHEMA_VERSION
    """The schema version of the event's type (``CURRENT_VERSIONS``)."""
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    aggregate_id: Id

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class PostCreated(_Event):
    type: Literal["PostCreated"] = "PostCreated"
    data: PostData

    @classmethod
    def of(cls, post: PostData) -> Self:
        return cls(aggregate_id=post.id, data=post)


class _CommentEvent(_Event):
    """Version 2: the comment may carry its author's name. Every comment event carries the whole
    comment, and the view replaces a comment's row with the newest one, so all three move to
    version 2 together: a ``CommentUpdated`` without the author would erase it from the view.
    Version 1 is upcast (``functions.upcasting``)."""

    version: Literal[2] = 2  # type: ignore[assignment]
    data: CommentData

    @classmethod
    def of(cls, comment: CommentData, event_id: str | None = None) -> Self:
        if event_id is None:
            return cls(aggregate_id=comment.id, data=comment)
        return cls(event_id=event_id, aggregate_id=comment.id, data=comment)


class CommentCreated(_CommentEvent):
    type: Literal["CommentCreated"] = "CommentCreated"


class CommentUpdated(_CommentEvent):
    type: Literal["CommentUpdated"] = "CommentUpdated"


class CommentModerated(_CommentEvent):
    type: Literal["CommentModerated"] = "CommentModerated"
    data: ModerationData


Event = Annotated[
    PostCreated | CommentCreated | CommentModerated | CommentUpdated,
    Field(discriminator="type"),
]
EVENT_TYPES = ("PostCreated", "CommentCreated", "CommentModerated", "CommentUpdated")
_EVENT = TypeAdapter[Event](Event)
_DOCUMENT = TypeAdapter[dict[str, Any]](dict[str, Any])

CURRENT_VERSIONS: Mapping[str, int] = {
    cls.model_fields["type"].default: cls.model_fields["version"].default
    for cls in (PostCreated, CommentCreated, CommentModerated, CommentUpdated)
}
"""The schema version this code writes, by event type."""
READABLE_VERSIONS: dict[str, int] = dict(CURRENT_VERSIONS)
"""The newest version this code reads, by event type: the current one. (Tests lower it to run
consumers as the code before an upgrade: deploy skew.)"""


class UnknownVersion(ValueError):
    """An event of a known type, in a schema version newer than this code reads: written by a
    newer producer. Not poison: the upgraded consumer reads it, so it is parked, not dropped."""

    def __init__(self, event_type: str, version: int, readable: int) -> None:
        super().__init__(
            f"{event_type} version {version} is newer than this code reads (up to {readable})"
        )
        self.event_type, self.version = event_type, version


def parse_event(raw: str | bytes) -> Event:
    """Parse one event from JSON.

    An older version is upcast to the current one first (``functions.upcasting``).
    Raises ``UnknownVersion`` for a known type in a newer schema version, and
    ``pydantic.ValidationError`` naming what is wrong for anything else no producer writes.
    """
    document = _DOCUMENT.validate_json(raw)
    event_type, version = document.get("type"), document.get("version")
    readable = READABLE_VERSIONS.get(event_type) if isinstance(event_type, str) else None
    if readable is not None and type(version) is int and version > readable:
        raise UnknownVersion(str(event_type), version, readable)
    return _EVENT.validate_python(upcast(document))
