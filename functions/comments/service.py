"""Comments use cases: create a pending comment; apply a moderation result; its subscription."""

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from functions import contract, idempotency, names, outbox
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


def create_comment(
    settings: Settings,
    post_id: str,
    command: CreateComment,
    key: idempotency.IdempotentRequest | None = None,
) -> list[dict[str, Any]]:
    """Store a pending comment; answer with it among the post's newest comments (at most
    ``contract.MAX_ANSWER_COMMENTS``), where only the new one and approved ones show their text.

    With ``key``, a repeat of the key's first request writes nothing and answers with the
    comment that one created, among the post's newest comments as they are now.
    """
    comment = CommentData(
        id=new_id(),
        postId=post_id,
        content=command.content,
        status="pending",
        commentVersion=1,
        author=command.author,
    )
    created = contract.dump(
        contract.comment(comment.id, comment.content, "pending", own=True, author=comment.author)
    )
    guard = None if key is None else idempotency.put_operation(settings, key, created)
    try:
        store.insert(settings, comment, CommentCreated.of(comment), guard)
    except store.PostMissing as error:
        raise UnknownPost(post_id) from error
    except outbox.ConditionFailed as error:
        if key is None or store.GUARD_INDEX not in error.failed:
            raise
        first = idempotency.replay(settings, key)
        if first is None:  # the record expired between the two calls: a new request after all
            return create_comment(settings, post_id, command, key)
        created = dict(first)
    except ClientError as error:
        if key is not None and idempotency.is_conflict(error, store.GUARD_INDEX):
            raise idempotency.KeyInUse() from error
        raise
    return answer_page(settings, post_id, created)


def answer_page(settings: Settings, post_id: str, created: dict[str, Any]) -> list[dict[str, Any]]:
    """``created`` among the post's newest other comments, oldest first, bounded."""
    newest = store.newest_for_post(settings, post_id, contract.MAX_ANSWER_COMMENTS)
    others = [c for c in newest if c.id != created["id"]][-(contract.MAX_ANSWER_COMMENTS - 1) :]
    shown = [
        contract.dump(contract.comment(c.id, c.content, c.status, author=c.author)) for c in others
    ]
    return sorted([*shown, created], key=lambda c: str(c["id"]))


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
