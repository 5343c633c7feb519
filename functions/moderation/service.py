"""Moderation use case: decide on a new comment, once. And its subscription."""

from aws_lambda_powertools import Logger

from functions import names
from functions.events import CommentCreated, CommentModerated, ModerationData, derived_event_id
from functions.moderation import store
from functions.moderation.rule import moderate
from functions.settings import Settings
from functions.subscriptions.subscription import Subscription

logger = Logger(service="moderation")


def moderate_comment(settings: Settings, event: CommentCreated) -> None:
    """Decide and record the decision with its ``CommentModerated``, unless already decided.

    The event id is derived from the comment, and the decision is a conditional put in the
    same transaction, so deciding twice (live and catch-up at once) emits one event.
    """
    comment = event.data
    decision = ModerationData(
        id=comment.id,
        postId=comment.post_id,
        content=comment.content,
        status=moderate(comment.content, settings.banned_words),
        commentVersion=comment.comment_version,
        author=comment.author,
    )
    moderated = CommentModerated.of(decision, derived_event_id("CommentModerated", comment.id))
    try:
        store.record(settings, moderated)
    except store.AlreadyDecided:
        logger.info("comment already moderated", comment_id=comment.id)


def _on_comment_created(settings: Settings, event: CommentCreated, _track: str) -> None:
    moderate_comment(settings, event)


SUBSCRIPTION = Subscription(
    name="moderation",
    table=names.MODERATION_TABLE,
    key=(names.MODERATION_KEY,),
    handlers={CommentCreated: _on_comment_created},
)
