"""The moderation table (adapter): one decision per comment, stored with its event."""

from functions import names, outbox
from functions.dynamo import to_item
from functions.events import CommentModerated
from functions.settings import Settings


class AlreadyDecided(Exception):
    """This comment has a decision already; the delivery was a repeat."""


def record(settings: Settings, event: CommentModerated) -> None:
    decision = event.data
    put = {
        "Put": {
            "TableName": settings.table(names.MODERATION_TABLE),
            "Item": to_item(
                {
                    names.MODERATION_KEY: decision.id,
                    "post_id": decision.post_id,
                    "verdict": decision.status,
                    "event_id": event.event_id,
                }
            ),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": names.MODERATION_KEY},
        }
    }
    try:
        outbox.write(settings.table(names.OUTBOX_TABLE), [put], [event])
    except outbox.ConditionFailed as error:
        raise AlreadyDecided(decision.id) from error
