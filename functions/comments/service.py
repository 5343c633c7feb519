"""Comments use cases: create a pending comment; apply a moderation result; its subscription."""

from aws_lambda_powertools import Logger

from functions import names
from functions.commands import CreateComment
from functions.comments import store
from functions.events import (
    CommentCreated,
    CommentData,
    CommentModerated,
    CommentUpdated,
    derived_event_id,
)
from functions.ids import new_id
from functions.settings import Settings
from functions.subscriptions.subscription import Subscription

logger = Logger(service="comments")


class UnknownPost(Exception):
    def __init__(self, post_id: str) -> None:
        super().__init__(f"post {post_id!r} does not exist")
        self.post_id = post_id


class UnknownComment(Exception):
    """A moderation result names a comment this service never stored."""


def create_comment(settings: Settings, post_id: str, command: CreateComment) -> list[CommentData]:
    """Store a pending comment; return all of the post's comments."""
    comment = CommentData(
        id=new_id(),
        postId=post_id,
        content=command.content,
        status="pending",
        commentVersion=1,
        author=command.author,
    )
    try:
        store.insert(settings, comment, CommentCreated.of(comment))
    except store.PostMissing as error:
        raise UnknownPost(post_id) from error
    return store.list_for_post(settings, post_id)


def apply_moderation(settings: Settings, event: CommentModerated) -> None:
    """Set the comment's status from a moderation result, once.

    The update is conditional on the comment's version, and its event id is derived from the
    moderation event, so a repeated or late delivery changes nothing and emits nothing new.
    """
    result = event.data
    current = store.get(settings, result.post_id, result.id)
    if current is None:
        raise UnknownComment(result.id)
    if current.status != "pending":
        logger.info("moderation already applied", comment_id=result.id, event_id=event.event_id)
        return
    updated = current.model_copy(
        update={"status": result.status, "comment_version": current.comment_version + 1}
    )
    try:
        store.update(
            settings,
            current,
            CommentUpdated.of(updated, derived_event_id("CommentUpdated", event.event_id)),
        )
    except store.CommentChanged:
        logger.info("comment changed concurrently; retrying", comment_id=result.id)
        apply_moderation(settings, event)


def _on_comment_moderated(settings: Settings, event: CommentModerated, _track: str) -> None:
    apply_moderation(settings, event)


SUBSCRIPTION = Subscription(
    name="comments",
    table=names.COMMENTS_TABLE,
    key=names.COMMENTS_KEY,
    handlers={CommentModerated: _on_comment_moderated},
)
