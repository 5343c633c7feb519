"""Moderation use case: decide on a new comment, once."""

from aws_lambda_powertools import Logger

from functions.events import CommentCreated, CommentModerated, ModerationData, derived_event_id
from functions.moderation import store
from functions.moderation.rule import moderate
from functions.settings import Settings

logger = Logger(service="moderation")


def moderate_comment(settings: Settings, event: CommentCreated) -> None:
    comment = event.data
    decision = ModerationData(
        id=comment.id,
        postId=comment.post_id,
        content=comment.content,
        status=moderate(comment.content, settings.banned_words),
        commentVersion=comment.comment_version,
    )
    moderated = CommentModerated.of(decision, derived_event_id("CommentModerated", comment.id))
    try:
        store.record(settings, moderated)
    except store.AlreadyDecided:
        logger.info("comment already moderated", comment_id=comment.id)
