"""The posts table (adapter): key format and the transactional write."""

from typing import Any

from functions import names, outbox
from functions.dynamo import to_item
from functions.events import PostCreated, PostData
from functions.settings import Settings


def exists_condition(settings: Settings, post_id: str) -> dict[str, Any]:
    """A transaction operation that passes only if the post exists (used by comments)."""
    return {
        "ConditionCheck": {
            "TableName": settings.table(names.POSTS_TABLE),
            "Key": to_item({names.POSTS_KEY: post_id}),
            "ConditionExpression": "attribute_exists(#id)",
            "ExpressionAttributeNames": {"#id": names.POSTS_KEY},
        }
    }


GUARD_INDEX = 1
"""Where ``insert`` puts its ``guard`` in the transaction (after the post's own ``Put``)."""


def insert(
    settings: Settings, post: PostData, event: PostCreated, guard: dict[str, Any] | None = None
) -> None:
    """Store the post and its event; with ``guard`` (an idempotency key's ``Put``), in the same
    transaction, so all three are written or none (``outbox.ConditionFailed`` says which
    condition stopped it)."""
    put = {
        "Put": {
            "TableName": settings.table(names.POSTS_TABLE),
            "Item": to_item({names.POSTS_KEY: post.id, "title": post.title}),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": names.POSTS_KEY},
        }
    }
    operations = [put] if guard is None else [put, guard]
    outbox.write(settings.table(names.OUTBOX_TABLE), operations, [event])
