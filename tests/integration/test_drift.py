"""The code, the template and .chalice/config.json agree on every name, key and filter.

``functions/names.py`` is the one place names live; these tests fail when ``infra/`` or the
Chalice config says otherwise.
"""

import json

import pytest

import app
from emulator.config import stage_environment
from emulator.runner import table_of_stream
from emulator.stack import Stack
from emulator.template import load, resources_of_type
from functions import aws, names, settings, subscribers
from functions.events import EVENT_TYPES
from tests.helpers import PREFIX

TABLE_KEYS = {
    names.POSTS_TABLE: (names.POSTS_KEY,),
    names.COMMENTS_TABLE: names.COMMENTS_KEY,
    names.MODERATION_TABLE: (names.MODERATION_KEY,),
    names.OUTBOX_TABLE: (names.OUTBOX_KEY,),
    names.VIEW_TABLE: names.VIEW_KEY,
    names.ARCHIVE_TABLE: names.ARCHIVE_KEY,
    names.IDEMPOTENCY_TABLE: (names.IDEMPOTENCY_KEY,),
}


def test_every_table_has_the_name_and_keys_the_code_uses(deployed: Stack) -> None:
    client = aws.client("dynamodb")
    assert set(client.list_tables()["TableNames"]) == {
        names.resource(PREFIX, suffix) for suffix in TABLE_KEYS
    }
    for suffix, keys in TABLE_KEYS.items():
        schema = client.describe_table(TableName=names.resource(PREFIX, suffix))["Table"]
        assert tuple(k["AttributeName"] for k in schema["KeySchema"]) == keys, suffix


def test_the_outbox_index_archive_ttl_and_bucket_are_what_the_code_uses(deployed: Stack) -> None:
    client = aws.client("dynamodb")
    outbox = client.describe_table(TableName=names.resource(PREFIX, names.OUTBOX_TABLE))["Table"]
    [index] = outbox["GlobalSecondaryIndexes"]
    assert index["IndexName"] == names.OUTBOX_UNSENT_INDEX
    assert tuple(k["AttributeName"] for k in index["KeySchema"]) == names.OUTBOX_UNSENT_KEY
    # moto's CloudFormation ignores TimeToLiveSpecification, so read it from the template
    ttl = load()["Resources"]["EventArchiveTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": names.ARCHIVE_TTL_ATTRIBUTE, "Enabled": True}
    ttl = load()["Resources"]["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": names.IDEMPOTENCY_TTL_ATTRIBUTE, "Enabled": True}
    bucket = names.archive_bucket(PREFIX, "123456789012")
    assert deployed.outputs["ArchiveBucketName"] == bucket == settings.load().archive_bucket
    aws.client("s3").head_bucket(Bucket=bucket)


def test_every_consumer_has_its_queue_and_dead_letter_queue(deployed: Stack) -> None:
    sqs = aws.client("sqs")
    for consumer in names.CONSUMERS:
        url = sqs.get_queue_url(QueueName=names.queue(PREFIX, consumer))["QueueUrl"]
        redrive = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
                "RedrivePolicy"
            ]
        )
        assert redrive["deadLetterTargetArn"].endswith(names.dead_letter_queue(PREFIX, consumer))


def test_the_app_event_sources_point_at_the_template_resources(deployed: Stack) -> None:
    queues = {names.queue(PREFIX, consumer) for consumer in names.CONSUMERS}
    sqs_sources = {
        s.queue_arn.rsplit(":", 1)[-1] for s in app.app.event_sources if hasattr(s, "queue_arn")
    }
    assert sqs_sources == queues
    [stream] = [s for s in app.app.event_sources if hasattr(s, "stream_arn")]
    assert table_of_stream(stream.stream_arn) == deployed.physical_ids["OutboxTable"]
    assert deployed.outputs["OutboxStreamArn"].startswith(
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{names.resource(PREFIX, 'outbox')}/"
    )


def test_each_subscription_filters_exactly_the_events_its_consumer_handles() -> None:
    subscriptions = resources_of_type(load(), "AWS::SNS::Subscription")
    assert len(subscriptions) == len(names.CONSUMERS)
    for consumer in names.CONSUMERS:
        [properties] = [
            r["Properties"]
            for r in subscriptions.values()
            if r["Properties"]["Endpoint"]["Fn::GetAtt"][0] == f"{consumer.title()}Queue"
        ]
        handled = subscribers.by_name(consumer).consumes
        filtered = properties["FilterPolicy"][names.EVENT_TYPE_ATTRIBUTE]
        assert sorted(filtered) == sorted(cls.__name__ for cls in handled), consumer
        assert set(filtered) <= set(EVENT_TYPES)


def test_every_consumer_has_a_subscription_a_queue_handler_and_a_catch_up() -> None:

    assert [s.name for s in subscribers.ALL] == list(names.CONSUMERS)
    sources = {source.name for source in app.app.event_sources}
    for consumer in names.CONSUMERS:
        assert {f"{consumer}_consumer", f"{consumer}_catch_up"} <= sources, consumer
        subscription = subscribers.by_name(consumer)
        # its checkpoint lives in its own table, keyed as the template keys that table
        table = next(
            r["Properties"]
            for r in resources_of_type(load(), "AWS::DynamoDB::Table").values()
            if r["Properties"]["TableName"] == {"Fn::Sub": f"${{Prefix}}-{subscription.table}"}
        )
        assert tuple(k["AttributeName"] for k in table["KeySchema"]) == subscription.key


@pytest.mark.parametrize("stage", ["local", "test"])
def test_emulated_stages_name_the_topic_their_stack_creates(stage: str) -> None:
    environment = stage_environment(stage)
    prefix = environment[names.PREFIX_VARIABLE]
    assert environment["EVENTS_TOPIC_ARN"] == (
        f"arn:aws:sns:us-east-1:123456789012:{names.resource(prefix, names.EVENTS_TOPIC)}"
    )
    assert environment["ARCHIVE_BUCKET"] == names.archive_bucket(prefix, "123456789012")


def test_the_deployable_stage_has_no_emulator_settings() -> None:
    environment = stage_environment("dev")
    assert environment[names.PREFIX_VARIABLE] == load()["Parameters"]["Prefix"]["Default"]
    assert not any(key.startswith("AWS_") for key in environment)
    assert "123456789012" not in json.dumps(environment)  # moto's account
