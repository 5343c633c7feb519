"""Every consumer's subscription, by name: what operations, tests and tools iterate over.

``names.CONSUMERS`` names the consumers for the template (queues, subscriptions, functions);
``tests/integration/test_drift.py`` fails if this registry and it disagree.
"""

from functions.comments.service import SUBSCRIPTION as COMMENTS
from functions.moderation.service import SUBSCRIPTION as MODERATION
from functions.query.service import SUBSCRIPTION as QUERY
from functions.subscriptions.subscription import Subscription

ALL: tuple[Subscription, ...] = (MODERATION, COMMENTS, QUERY)


class UnknownConsumer(ValueError):
    def __init__(self, consumer: str) -> None:
        super().__init__(f"unknown consumer {consumer!r}: one of {', '.join(s.name for s in ALL)}")
        self.consumer = consumer


def by_name(consumer: str) -> Subscription:
    for subscription in ALL:
        if subscription.name == consumer:
            return subscription
    raise UnknownConsumer(consumer)
