"""A history written straight into the archive, as the publisher would have written it.

``seed_archive()`` uses the project's own archive functions (positions, records, S3 segments):
fast, and the same data the pipeline would have produced.
"""

from __future__ import annotations

import time
from typing import Any


def seed_archive(settings: Any, count: int, *, segment: bool = True) -> list[Any]:
    """Write ``count`` history events into the archive as the publisher would: positions from
    the counter (one ``ADD``), records by batch writes, then (``segment``) every complete
    bucket copied to its S3 segment by the archiver's own function. The archived events."""
    from functions import archive

    events = history_events(count)
    positions = archive.allocate(settings, count)
    now = time.time()
    archived = [
        archive.ArchivedEvent(
            position=position,
            event_id=event.event_id,
            event_type=event.type,
            payload=event.to_json(),
            archived_at=now,
        )
        for position, event in zip(positions, events, strict=True)
    ]
    for start in range(0, len(archived), 1000):
        archive.record(settings, archived[start : start + 1000])
    if segment:
        archive.write_segments(settings)
    return archived


def history_events(count: int, tag: str = "seeded") -> list[Any]:
    """``count`` events of a realistic blog: posts, each with two comments created, moderated
    (one approved, one rejected) and updated: seven events per post."""
    from functions.events import (
        CommentCreated,
        CommentData,
        CommentModerated,
        CommentUpdated,
        ModerationData,
        PostCreated,
        PostData,
        derived_event_id,
    )
    from functions.ids import new_id

    events: list[Any] = []
    index = 0
    while len(events) < count:
        post = PostData(id=new_id(), title=f"{tag} post {index}")
        events.append(PostCreated.of(post))
        for number, verdict in enumerate(("approved", "rejected")):
            comment = CommentData(
                id=new_id(),
                postId=post.id,
                content=f"{tag} comment {index}.{number}",
                status="pending",
                commentVersion=1,
            )
            created = CommentCreated.of(comment)
            moderated = CommentModerated.of(
                ModerationData(**{**comment.model_dump(by_alias=True), "status": verdict}),
                derived_event_id("CommentModerated", comment.id),
            )
            updated = CommentUpdated.of(
                comment.model_copy(update={"status": verdict, "comment_version": 2}),
                derived_event_id("CommentUpdated", moderated.event_id),
            )
            events += [created, moderated, updated]
        index += 1
    return events[:count]
