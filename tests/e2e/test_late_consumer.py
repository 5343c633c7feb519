"""A consumer added after the fact gets every past event, by the mechanism alone.

An ``audit`` consumer (it records every event it is given, once) is declared like any other:
a ``Subscription`` with its handler and its own table, a queue handler and a catch-up schedule
in a Blueprint. One copy is deployed from the start; a second copy's table, queue and SNS
subscription are created only after the history was written. Neither has recovery code of its
own. Both must end with the same state: every archived event, exactly once.
"""

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from chalice.app import Blueprint, Chalice, CloudWatchEvent, Rate, SQSEvent

from emulator.moto_env import REGION
from emulator.runner import EventSourceRunner
from functions import archive, aws, names, settings
from functions.dynamo import to_item
from functions.events import (
    EVENT_TYPES,
    CommentCreated,
    CommentModerated,
    CommentUpdated,
    PostCreated,
)
from functions.subscriptions import checkpoint, follower, live
from functions.subscriptions.subscription import Subscription
from tests.conftest import Api
from tests.helpers import PREFIX, scan

KEY = "event_id"


def recorder(table_suffix: str) -> Callable[[settings.Settings, Any, str], None]:
    """The audit handler: store the event once, keyed by its id (idempotent by condition)."""

    def record(config: settings.Settings, event: Any, _track: str) -> None:
        client = aws.client("dynamodb")
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # a repeat
            client.put_item(
                TableName=config.table(table_suffix),
                Item=to_item({KEY: event.event_id, "type": event.type}),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": KEY},
            )

    return record


def audit(name: str) -> Subscription:
    handler = recorder(name)
    return Subscription(
        name=name,
        table=name,
        key=(KEY,),
        handlers=dict.fromkeys(
            (PostCreated, CommentCreated, CommentModerated, CommentUpdated), handler
        ),
    )


EARLY, LATE = audit("audit-early"), audit("audit-late")
early_bp, late_bp = Blueprint(__name__), Blueprint(__name__)


@early_bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(PREFIX, EARLY.name), batch_size=10, name="early_consumer"
)
def early_on_event(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, EARLY, follower.logger)


@early_bp.schedule(Rate(1, unit=Rate.MINUTES), name="early_catch_up")
def early_catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    return follower.scheduled(EARLY)


@late_bp.on_sqs_message(
    queue_arn=names.queue_arn_placeholder(PREFIX, LATE.name), batch_size=10, name="late_consumer"
)
def late_on_event(event: SQSEvent) -> live.PartialItemFailureResponse:
    return live.consume(event, LATE, follower.logger)


@late_bp.schedule(Rate(1, unit=Rate.MINUTES), name="late_catch_up")
def late_catch_up(event: CloudWatchEvent) -> dict[str, Any]:
    return follower.scheduled(LATE)


def deploy(subscription: Subscription, blueprint: Blueprint) -> EventSourceRunner:
    """What the template would create for a new consumer: its table, queue and subscription.
    Then its functions, polled by a runner of their own."""
    aws.client("dynamodb").create_table(
        TableName=names.resource(PREFIX, subscription.table),
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=names.queue(PREFIX, subscription.name))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.client("sns").subscribe(
        TopicArn=settings.load().topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    app = Chalice(app_name=subscription.name)
    app.register_blueprint(blueprint)
    return EventSourceRunner(app, aws.client, REGION)


def write(api: Api, runner: EventSourceRunner, count: int, tag: str) -> None:
    for index in range(count):
        _, post = api.post("/posts", {"title": f"{tag} {index}"})
        api.post(f"/posts/{post['id']}/comments", {"content": f"an orange {index}"})
        api.post(f"/posts/{post['id']}/comments", {"content": f"fine {index}"})
    runner.drain()


def audited(subscription: Subscription) -> list[tuple[str, str]]:
    return sorted((item[KEY], item["type"]) for item in scan(subscription.table))


@pytest.mark.parametrize("history", [3, 12])
def test_a_consumer_deployed_late_reaches_the_state_of_one_present_from_the_start(
    api: Api, runner: EventSourceRunner, history: int
) -> None:
    # GIVEN a consumer present from the start, and a history of events (over several archive
    # buckets of the test stage's 10 positions)
    early = deploy(EARLY, early_bp)
    write(api, runner, history, "history")
    early.drain()
    config = settings.load()
    assert archive.head(config).position == history * 7  # a post, two comments, each decided
    # WHEN a new consumer is deployed only now: its table, queue and subscription
    late = deploy(LATE, late_bp)
    assert audited(LATE) == []
    # AND the system goes on, delivering live to both
    write(api, runner, 1, "after")
    early.drain()
    late.drain()
    # AND each one's scheduled catch-up runs (as it does every minute)
    early.fire("early_catch_up")
    late.fire("late_catch_up")
    # THEN the late one has exactly the state of the one that missed nothing
    archived = sorted(
        (e.event_id, e.event_type) for e in archive.history(config, archive.head(config).position)
    )
    assert audited(LATE) == audited(EARLY) == archived
    assert {t for _, t in archived} == set(EVENT_TYPES)
    # AND both watermarks are at the archive head
    head = archive.head(config).position
    for subscription in (EARLY, LATE):
        assert checkpoint.watermark(config, subscription, "main") == head
