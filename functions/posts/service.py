"""Posts use cases."""

from typing import Any

from botocore.exceptions import ClientError

from functions import idempotency, outbox
from functions.commands import CreatePost
from functions.events import PostCreated, PostData
from functions.ids import new_id
from functions.posts import store
from functions.settings import Settings


def create_post(
    settings: Settings, command: CreatePost, key: idempotency.IdempotentRequest | None = None
) -> dict[str, Any]:
    """Store a new post; its answer. With ``key``, a repeat of the key's first request answers
    what that one created and writes nothing (``idempotency``)."""
    post = PostData(id=new_id(), title=command.title)
    answer = post.model_dump()
    if key is None:
        store.insert(settings, post, PostCreated.of(post))
        return answer
    guard = idempotency.put_operation(settings, key, answer)
    try:
        store.insert(settings, post, PostCreated.of(post), guard)
    except outbox.ConditionFailed as error:
        if store.GUARD_INDEX not in error.failed:
            raise
        first = idempotency.replay(settings, key)
        if first is None:  # the record expired between the two calls: a new request after all
            return create_post(settings, command, key)
        return dict(first)
    except ClientError as error:
        if idempotency.is_conflict(error, store.GUARD_INDEX):
            raise idempotency.KeyInUse() from error
        raise
    return answer
