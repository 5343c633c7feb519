"""Acceptance 3: every message of the scenario delivered twice and in reverse order changes nothing.

A tap queue subscribed to the topic without a filter records every event the scenario
published. Re-publishing them all to SNS, twice, newest first, sends each consumer duplicates
in reverse order through its real subscription and filter policy.
"""

from typing import Any

from emulator.runner import EventSourceRunner
from functions import aws, names
from tests.conftest import Api
from tests.e2e.test_seed_scenario import run_seed_scenario
from tests.helpers import PREFIX, receive_all, scan


def subscribe_tap() -> str:
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=f"{PREFIX}-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    topic = names.resource(PREFIX, names.EVENTS_TOPIC)
    topic_arn = next(
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(topic)
    )
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    return str(topic_arn)


def republish(topic_arn: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        aws.client("sns").publish(
            TopicArn=topic_arn,
            Message=message["Body"],
            MessageAttributes={
                name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                for name, value in message["MessageAttributes"].items()
            },
        )


def snapshot(api: Api) -> tuple[Any, ...]:
    return (
        api.get("/posts"),
        sorted(scan(names.COMMENTS_TABLE), key=lambda c: c["comment_id"]),
        sorted(scan(names.MODERATION_TABLE), key=lambda m: m["comment_id"]),
        sorted(r["event_id"] for r in scan(names.OUTBOX_TABLE)),
    )


def test_duplicated_and_reversed_delivery_changes_nothing(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN the seed scenario, converged, with a tap on the topic
    topic_arn = subscribe_tap()
    run_seed_scenario(api, runner)
    before = snapshot(api)
    published = receive_all(f"{PREFIX}-tap")
    assert len(published) == 7  # 1 post, 2 x (created, moderated, updated)

    # WHEN every event is published again, twice, newest first
    republish(topic_arn, list(reversed(published)) * 2)
    delivered = runner.drain()

    # THEN the consumers saw every duplicate, and nothing changed anywhere
    # (query: 1 post + 2 created + 2 updated; moderation: 2 created; comments: 2 moderated)
    assert delivered == 2 * (5 + 2 + 2)
    assert snapshot(api) == before
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
    for consumer in names.CONSUMERS:
        assert receive_all(names.dead_letter_queue(PREFIX, consumer)) == []
