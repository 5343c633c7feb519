"""Upcasters: an archived event of an older schema version, as the current version. Pure.

Events in the archive are never rewritten, so every version ever written stays readable: an
old document goes through one upcaster per version step, oldest first, before it is validated
against the current model. Each upcaster is a pure function from a JSON document of version
``n`` to one of version ``n + 1``; it never changes its input and invents no facts (a field an
old event did not carry becomes the new schema's "not given", never a guess).

The steps so far:

- comment events (``CommentCreated``, ``CommentModerated``, ``CommentUpdated``) 1 -> 2: a comment
  may have an author's name. A version-1 comment had none: ``author`` is null.
"""

from collections.abc import Callable, Mapping
from typing import Any

Document = dict[str, Any]
Upcaster = Callable[[Document], Document]


def comment_without_author(event: Document) -> Document:
    """A version-1 comment event as version 2: the comment has no author."""
    data = event.get("data")
    if not isinstance(data, dict):
        return {**event, "version": 2}  # invalid either way: validation names what is missing
    return {**event, "version": 2, "data": {**data, "author": None}}


UPCASTERS: Mapping[tuple[str, int], Upcaster] = {
    ("CommentCreated", 1): comment_without_author,
    ("CommentModerated", 1): comment_without_author,
    ("CommentUpdated", 1): comment_without_author,
}
"""(event type, version it reads) -> the upcaster to the next version."""


def upcast(event: Document) -> Document:
    """``event`` raised step by step to the newest version there is an upcaster chain to.

    A document whose type or version has no upcaster is returned as it is (current, newer,
    or invalid: the caller's validation decides).
    """
    while True:
        event_type, version = event.get("type"), event.get("version")
        if not isinstance(event_type, str) or type(version) is not int:
            return event
        step = UPCASTERS.get((event_type, version))
        if step is None:
            return event
        event = step(event)
