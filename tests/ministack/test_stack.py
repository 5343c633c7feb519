"""The packaged stack as deployed on MiniStack: the seed scenario through API Gateway and the
real event source mappings, the page, the bridged settings, and finding a stack's resources."""

import json
from typing import Any

import pytest

from functions import names
from operations import deployed
from tests.ministack.conftest import STACK, Lane, eventually
from tools.api_client import HttpApi

MAPPED = {"ModerationConsumer", "CommentsConsumer", "QueryConsumer", "OutboxPublisher"}


def scan(lane: Lane, suffix: str) -> list[dict[str, Any]]:
    pages = (
        lane.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=lane.resources.tables[suffix], ConsistentRead=True)
    )
    return [item for page in pages for item in page["Items"]]


def outbox_of(lane: Lane, post_id: str) -> list[dict[str, Any]]:
    """The outbox records of events about ``post_id`` (the post and its comments)."""
    return [r for r in scan(lane, names.OUTBOX_TABLE) if post_id in r["payload"]["S"]]


def all_sent(lane: Lane, post_id: str) -> list[dict[str, Any]] | None:
    records = outbox_of(lane, post_id)
    return records if all(r["sent"]["BOOL"] for r in records) else None


def test_seed_scenario_converges_through_api_gateway_and_the_mappings(lane: Lane) -> None:
    # GIVEN the packaged stack on MiniStack
    # WHEN a post and two comments are created through API Gateway
    status, post = lane.post("/posts", {"title": "First post"})
    assert status == 201
    status, _ = lane.post(f"/posts/{post['id']}/comments", {"content": "Lovely weather"})
    assert status == 201
    status, comments = lane.post(f"/posts/{post['id']}/comments", {"content": "I love ORANGE."})
    assert status == 201
    approved_id, rejected_id = (c["id"] for c in comments)

    # THEN the stream, SNS, the filtered queues and the consumer functions bring the view there
    expected = {
        "id": post["id"],
        "title": "First post",
        "comments": [
            {"id": approved_id, "content": "Lovely weather", "status": "approved"},
            {"id": rejected_id, "status": "rejected"},  # its text is not served
        ],
    }
    eventually(lambda: lane.get(f"/posts/{post['id']}") == (200, expected), what="the seed's view")
    assert lane.get("/posts")[1][post["id"]] == expected
    # AND the comments service holds both statuses at their second version
    stored = {
        c["comment_id"]["S"]: (c["status"]["S"], c["comment_version"]["N"])
        for c in scan(lane, names.COMMENTS_TABLE)
        if c["post_id"]["S"] == post["id"]
    }
    assert stored == {approved_id: ("approved", "2"), rejected_id: ("rejected", "2")}
    # AND every event went through the outbox and was marked sent
    outbox = eventually(lambda: all_sent(lane, post["id"]), what="every outbox record sent")
    assert sorted(r["event_type"]["S"] for r in outbox) == sorted(
        ["PostCreated"] + ["CommentCreated", "CommentModerated", "CommentUpdated"] * 2
    )


def test_the_page_loads_through_api_gateway(lane: Lane) -> None:
    api = HttpApi(lane.url, timeout=60)
    page = api.request("GET", "/")
    assert page.status == 200
    assert (page.header("Content-Type") or "").startswith("text/html")
    html = page.body.decode()
    assert '<script src="static/app.js" defer></script>' in html
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        asset = api.request("GET", f"/static/{name}")
        assert (asset.status, (asset.header("Content-Type") or "").split(";")[0]) == (200, kind)


def test_the_bridge_applied_what_ministack_skips(lane: Lane) -> None:
    table = lane.resources.tables[names.ARCHIVE_TABLE]
    ttl = lane.client("dynamodb").describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == (
        "ENABLED",
        names.ARCHIVE_TTL_ATTRIBUTE,
    )


def test_find_reads_the_stacks_resources(lane: Lane) -> None:
    found = lane.resources
    assert (found.stack, found.prefix) == (STACK, STACK)
    assert found.tables[names.OUTBOX_TABLE] == names.resource(STACK, names.OUTBOX_TABLE)
    assert set(found.queues) == set(names.CONSUMERS)
    assert found.topic_arn.endswith(f":{names.resource(STACK, names.EVENTS_TOPIC)}")
    # every function with an event source has exactly its one mapping
    assert {f: len(u) for f, u in found.mappings.items()} == dict.fromkeys(MAPPED, 1)
    # the API, the publisher, the sweeper, the segmenter, the view's rebuild, and each
    # consumer's two functions
    assert len(found.functions) == 5 + 2 * len(names.CONSUMERS)
    assert found.environment()[names.PREFIX_VARIABLE] == STACK


def test_pause_and_resume_flip_the_mappings_enabled_flag(lane: Lane) -> None:
    consumers = lane.consumers
    [uuid] = lane.resources.mappings["ModerationConsumer"]
    consumers.pause("moderation_consumer")
    try:
        assert consumers.is_paused("moderation_consumer")
        mapping = lane.client("lambda").get_event_source_mapping(UUID=uuid)
        assert mapping["State"] in deployed.PAUSED_STATES
    finally:
        consumers.resume("moderation_consumer")
    assert not consumers.is_paused("moderation_consumer")
    with pytest.raises(KeyError):
        consumers.pause("query_catch_up")  # a schedule has no mapping


def test_a_missing_stack_is_a_clear_error(lane: Lane) -> None:
    with pytest.raises(deployed.StackNotFound, match="no stack named 'nope'"):
        deployed.find(lane.client, "nope")


def test_a_stack_of_another_project_is_refused(lane: Lane) -> None:
    other = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    cfn = lane.client("cloudformation")
    cfn.create_stack(StackName="someone-else", TemplateBody=json.dumps(other))
    eventually(
        lambda: (
            cfn.describe_stacks(StackName="someone-else")["Stacks"][0]["StackStatus"]
            == "CREATE_COMPLETE"
        ),
        what="the other stack",
    )
    with pytest.raises(deployed.NotThisProject, match="is not this blog's"):
        deployed.find(lane.client, "someone-else")
