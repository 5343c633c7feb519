"""The comments table (adapter): key format, transactional writes, reads."""

from typing import Any

from functions import aws, names, outbox
from functions.dynamo import from_item, to_item
from functions.events import CommentCreated, CommentData, CommentUpdated
from functions.posts import store as posts_store
from functions.settings import Settings

POST_ID, COMMENT_ID = names.COMMENTS_KEY


class PostMissing(Exception):
    """The transaction's check that the post exists failed."""


class CommentChanged(Exception):
    """The comment was not in the state the update expected (moved on, or missing)."""


def _key(post_id: str, comment_id: str) -> dict[str, Any]:
    return to_item({POST_ID: post_id, COMMENT_ID: comment_id})


def _to_comment(item: dict[str, Any]) -> CommentData:
    values = from_item(item)
    return CommentData(
        id=values[COMMENT_ID],
        postId=values[POST_ID],
        content=values["content"],
        status=values["status"],
        commentVersion=int(values["comment_version"]),
        author=values.get("author"),
    )


GUARD_INDEX = 2
"""Where ``insert`` puts its ``guard`` in the transaction (after the post check and the Put)."""


def insert(
    settings: Settings,
    comment: CommentData,
    event: CommentCreated,
    guard: dict[str, Any] | None = None,
) -> None:
    """Store a new comment and its event, if and only if its post exists; with ``guard`` (an
    idempotency key's ``Put``) in the same transaction. A failed guard is reported first
    (``outbox.ConditionFailed``): a repeated request's post existed the first time."""
    put = {
        "Put": {
            "TableName": settings.table(names.COMMENTS_TABLE),
            "Item": to_item(
                {
                    POST_ID: comment.post_id,
                    COMMENT_ID: comment.id,
                    "content": comment.content,
                    "status": comment.status,
                    "comment_version": comment.comment_version,
                    **({"author": comment.author} if comment.author is not None else {}),
                }
            ),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": COMMENT_ID},
        }
    }
    operations = [posts_store.exists_condition(settings, comment.post_id), put]
    try:
        outbox.write(
            settings.table(names.OUTBOX_TABLE),
            operations if guard is None else [*operations, guard],
            [event],
        )
    except outbox.ConditionFailed as error:
        if GUARD_INDEX not in error.failed and 0 in error.failed:  # the post's existence check
            raise PostMissing(comment.post_id) from error
        raise


def update(settings: Settings, before: CommentData, event: CommentUpdated) -> None:
    """Store ``event.data`` over ``before``, only if the stored comment is still ``before``."""
    after = event.data
    operation = {
        "Update": {
            "TableName": settings.table(names.COMMENTS_TABLE),
            "Key": _key(after.post_id, after.id),
            "UpdateExpression": "SET #status = :status, comment_version = :new",
            "ConditionExpression": "comment_version = :old",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {
                    ":status": after.status,
                    ":new": after.comment_version,
                    ":old": before.comment_version,
                }
            ),
        }
    }
    try:
        outbox.write(settings.table(names.OUTBOX_TABLE), [operation], [event])
    except outbox.ConditionFailed as error:
        raise CommentChanged(after.id) from error


def get(settings: Settings, post_id: str, comment_id: str) -> CommentData | None:
    response = aws.client("dynamodb").get_item(
        TableName=settings.table(names.COMMENTS_TABLE),
        Key=_key(post_id, comment_id),
        ConsistentRead=True,
    )
    item = response.get("Item")
    return _to_comment(item) if item else None


def newest_for_post(settings: Settings, post_id: str, limit: int) -> list[CommentData]:
    """At most ``limit`` of the post's newest comments, oldest first: one query, whatever the
    number of comments (ids sort by creation time)."""
    items = (
        aws.client("dynamodb")
        .query(
            TableName=settings.table(names.COMMENTS_TABLE),
            KeyConditionExpression="#post = :post",
            ExpressionAttributeNames={"#post": POST_ID},
            ExpressionAttributeValues=to_item({":post": post_id}),
            ConsistentRead=True,
            ScanIndexForward=False,
            Limit=limit,
        )
        .get("Items", [])
    )
    return [_to_comment(item) for item in reversed(items)]
