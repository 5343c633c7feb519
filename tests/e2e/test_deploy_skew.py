"""Across a deploy, no event is passed over: the real pipeline on moto (outbox, stream publisher,
archive, SNS to SQS, the consumers, catch-up).

CloudFormation updates functions one at a time, so for a while a producer runs newer code than
its consumers. Here a "newer producer" is an outbox record written as such code would write it,
and "older consumer code" is the code with ``events.READABLE_VERSIONS`` lowered.
"""

import json
from typing import Any

import pytest

from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from emulator.template import load
from functions import archive, aws, events, names, settings
from functions.dynamo import to_item
from functions.events import PostCreated, PostData
from functions.ids import new_id
from functions.outbox import OutboxRecord
from functions.query import recovery
from operations import ops
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.faults import failing
from tests.helpers import PREFIX, receive_all, writes_table

VIEW_TABLE = names.resource(PREFIX, names.VIEW_TABLE)


def write_as_a_newer_producer(payload: dict[str, Any]) -> None:
    """An outbox record holding ``payload`` as it is, as newer code would have written it."""
    event = PostCreated.of(PostData(id=payload["aggregate_id"], title="placeholder"))
    record = OutboxRecord.new(event).model_copy(
        update={"event_id": payload["event_id"], "payload": json.dumps(payload)}
    )
    aws.client("dynamodb").put_item(
        TableName=names.resource(PREFIX, names.OUTBOX_TABLE),
        Item=to_item(record.model_dump(exclude_none=True)),
    )


def post_payload(title: str, **changes: Any) -> dict[str, Any]:
    post_id = new_id()
    payload = PostCreated.of(PostData(id=post_id, title=title)).model_dump(mode="json")
    return {**payload, **changes}


def query_row(runner: EventSourceRunner) -> ops.ConsumerStatus:
    [row] = [r for r in ops.status(LocalConsumers(runner)).consumers if r.consumer == "query"]
    return row


@pytest.fixture
def old_query_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consumers running code that reads no PostCreated yet; restored after the test."""
    monkeypatch.setitem(events.READABLE_VERSIONS, "PostCreated", 0)


def test_a_newer_producers_added_field_reaches_the_view(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a v1 PostCreated with a field this code does not know, in the outbox
    payload = post_payload("with a subtitle")
    payload["data"]["subtitle"] = "added by a newer producer"
    write_as_a_newer_producer({**payload, "trace_id": "abc"})
    # WHEN the pipeline runs (live path only)
    runner.drain()
    # THEN the post is in the view, and the consumer applied it: lag 0, nothing parked
    post_id = payload["aggregate_id"]
    assert api.get(f"/posts/{post_id}") == (
        200,
        {"id": post_id, "title": "with a subtitle", "comments": []},
    )
    row = query_row(runner)
    assert (row.lag, row.parked, row.dlq_depth) == (0, 0, 0)


def test_an_unknown_version_is_parked_live_and_holds_the_watermark(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a post, then a PostCreated of a version no code here reads, then another post
    _, before = api.post("/posts", {"title": "before"})
    runner.drain()
    future = post_payload("from the future", version=99)
    write_as_a_newer_producer(future)
    runner.drain()
    _, after = api.post("/posts", {"title": "after"})
    runner.drain()
    # THEN the live path parked it (no dead letter) and applied the rest
    assert receive_all(names.dead_letter_queue(PREFIX, "query")) == []
    assert sorted(p["title"] for p in api.every_post()[1].values()) == ["after", "before"]
    [parked] = ops.parked("query")
    assert (parked.event_id, parked.unreadable, parked.parked) == (future["event_id"], True, True)
    # AND status reports it for query: parked 1, lag 1 (it alone is not applied)
    row = query_row(runner)
    assert (row.parked, row.lag) == (1, 1)
    # AND catch-up keeps query's watermark below its position, and applies what is above it
    report = recovery.catch_up(settings.load())
    assert report.watermark_after == parked.position - 1 < report.head
    assert (report.parked, report.lag) == (1, 1)
    # AND the other consumers do not take PostCreated: nothing held there
    assert [f.consumer for f in ops.parked()] == ["query"]
    assert api.get(f"/posts/{before['id']}")[0] == api.get(f"/posts/{after['id']}")[0] == 200


@pytest.mark.usefixtures("old_query_code")
def test_events_parked_by_old_code_are_applied_after_the_upgrade(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN posts written while query runs code that cannot read them
    ids = [api.post("/posts", {"title": f"skewed {n}"})[1]["id"] for n in range(3)]
    runner.drain()
    recovery.catch_up(settings.load())
    assert api.every_post()[1] == {}
    assert query_row(runner).parked == 3
    # WHEN query is upgraded and its scheduled catch-up runs
    monkeypatch.setitem(events.READABLE_VERSIONS, "PostCreated", 1)
    runner.fire("query_catch_up")
    # THEN every post is in the view, nothing is parked, the watermark is at the head
    assert sorted(api.every_post()[1]) == sorted(ids)
    row = query_row(runner)
    assert (row.parked, row.lag, row.watermark) == (0, 0, row.archive_head)


def test_a_handler_failing_for_a_while_is_parked_not_dead_lettered_then_applied(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN every write to the view failing
    crash = RuntimeError("the view's table is failing")
    with failing("dynamodb", "PutItem", crash, when=lambda p: writes_table(p, VIEW_TABLE)):
        # WHEN a post is written and the pipeline runs, and the catch-up too
        _, post = api.post("/posts", {"title": "through the failure"})
        runner.drain()
        runner.fire("query_catch_up")
    # THEN the live path tried it its tries, then parked it: acknowledged, no dead letter
    assert receive_all(names.dead_letter_queue(PREFIX, "query")) == []
    [parked] = ops.parked("query")
    assert parked.tries >= names.PARK_AFTER_TRIES
    assert (parked.parked, parked.unreadable) == (True, False)
    assert "the view's table is failing" in parked.reason
    assert query_row(runner).parked == 1
    # WHEN the table recovers and the scheduled catch-up runs
    runner.fire("query_catch_up")
    # THEN the post is in the view and nothing is parked or behind
    assert api.get(f"/posts/{post['id']}")[1]["title"] == "through the failure"
    assert ops.parked() == []
    row = query_row(runner)
    assert (row.parked, row.lag, row.watermark) == (0, 0, row.archive_head)


def test_a_healthy_consumer_has_no_lag_before_any_catch_up(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN posts and comments delivered by the live path only
    _, post = api.post("/posts", {"title": "healthy"})
    api.post(f"/posts/{post['id']}/comments", {"content": "fine"})
    runner.drain()
    # THEN every consumer's lag is 0, although no catch-up has moved a watermark
    rows = ops.status(LocalConsumers(runner)).consumers
    assert [(r.consumer, r.lag, r.parked) for r in rows] == [(c, 0, 0) for c in names.CONSUMERS]
    assert all(r.watermark == 0 < r.archive_head for r in rows)


def test_a_comment_is_signed_with_an_optional_author_bounded_and_stripped(
    api: Api, runner: EventSourceRunner
) -> None:
    _, post = api.post("/posts", {"title": "signed"})
    status, comments = api.post(
        f"/posts/{post['id']}/comments", {"content": "hello", "author": "  Ada Lovelace "}
    )
    assert status == 201
    assert comments == [
        {"id": comments[0]["id"], "content": "hello", "status": "pending", "author": "Ada Lovelace"}
    ]
    for bad in ("", "   ", "a" * 81, 7, None):
        status, body = api.post(f"/posts/{post['id']}/comments", {"content": "x", "author": bad})
        if bad is None:
            assert status == 201  # null is "no author"
            continue
        assert status == 422, (bad, body)
        assert body["error"]["details"][0]["field"] == "author"
    runner.drain()
    shown = api.get(f"/posts/{post['id']}")[1]["comments"]
    assert [(c["status"], c.get("author")) for c in shown] == [
        ("approved", "Ada Lovelace"),
        ("approved", None),
    ]


def write_as_the_version_1_code(post_id: str, content: str) -> str:
    """A comment as the code before authors stored it: its row, and a version-1
    ``CommentCreated`` in the outbox (no author, version 1)."""
    comment_id = new_id()
    dynamodb = aws.client("dynamodb")
    dynamodb.put_item(
        TableName=names.resource(PREFIX, names.COMMENTS_TABLE),
        Item=to_item(
            {
                "post_id": post_id,
                "comment_id": comment_id,
                "content": content,
                "status": "pending",
                "comment_version": 1,
            }
        ),
    )
    payload = {
        "event_id": new_id(),
        "type": "CommentCreated",
        "version": 1,
        "occurred_at": "2026-11-01T10:00:00Z",
        "aggregate_id": comment_id,
        "data": {
            "id": comment_id,
            "postId": post_id,
            "content": content,
            "status": "pending",
            "commentVersion": 1,
        },
    }
    event = PostCreated.of(PostData(id=post_id, title="placeholder"))
    record = OutboxRecord.new(event).model_copy(
        update={
            "event_id": payload["event_id"],
            "event_type": "CommentCreated",
            "payload": json.dumps(payload),
        }
    )
    dynamodb.put_item(
        TableName=names.resource(PREFIX, names.OUTBOX_TABLE),
        Item=to_item(record.model_dump(exclude_none=True)),
    )
    return comment_id


def test_a_rebuild_over_mixed_versions_equals_the_live_view(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN comments written by the version-1 code and by the current one, with and without
    # an author, moderated and projected by the live path
    _, post = api.post("/posts", {"title": "mixed"})
    old = [write_as_the_version_1_code(post["id"], text) for text in ("old one", "an orange")]
    api.post(f"/posts/{post['id']}/comments", {"content": "new one", "author": "Grace"})
    api.post(f"/posts/{post['id']}/comments", {"content": "new apple"})
    runner.drain()
    archived = [
        json.loads(e.payload)
        for e in archive.history(settings.load(), archive.head(settings.load()).position)
    ]
    versions = {(e["type"], e["version"]) for e in archived}
    assert {("CommentCreated", 1), ("CommentCreated", 2), ("CommentUpdated", 2)} <= versions
    live = api.get(f"/posts/{post['id']}")[1]
    # (a rejected comment is served without its text or author: docs/api.md)
    assert [(c.get("content"), c["status"], c.get("author")) for c in live["comments"]] == [
        ("old one", "approved", None),
        (None, "rejected", None),
        ("new one", "approved", "Grace"),
        ("new apple", "approved", None),
    ]
    assert [c["id"] for c in live["comments"][:2]] == old
    # WHEN the view is rebuilt from the archive
    recovery.rebuild(settings.load())
    # THEN it is the live view, and the projection of the whole archive
    assert api.get(f"/posts/{post['id']}")[1] == live
    assert api.every_post()[1] == oracle_view()


def test_a_message_is_parked_on_its_last_receive_though_a_dead_lambda_left_no_try(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN the query Lambda dying on its first batch (no try recorded), then its writes failing
    source = runner.sources["query_consumer"]
    handler = source._handler
    died: list[int] = []

    def dies_once(event: dict[str, Any], context: Any) -> Any:
        if not died:
            died.append(len(event["Records"]))
            raise RuntimeError("the query Lambda died")
        return handler(event, context)

    source._handler = dies_once
    crash = RuntimeError("the view's table is failing")
    try:
        with failing("dynamodb", "PutItem", crash, when=lambda p: writes_table(p, VIEW_TABLE)):
            _, post = api.post("/posts", {"title": "received three times"})
            runner.drain()
    finally:
        source._handler = handler
    # THEN on its third receive (two tries) it was parked and acknowledged, not dead-lettered
    assert died
    assert receive_all(names.dead_letter_queue(PREFIX, "query")) == []
    [parked] = ops.parked("query")
    assert (parked.tries, parked.given_up, parked.parked) == (2, True, True)
    # AND the catch-up applies it
    runner.fire("query_catch_up")
    assert api.get(f"/posts/{post['id']}")[1]["title"] == "received three times"


def test_the_queues_give_up_no_sooner_than_the_live_path_parks() -> None:
    """A failing message is parked by its last receive: SQS must not dead-letter it first."""
    default = load()["Parameters"]["MaxReceiveCount"]["Default"]
    assert int(default) >= names.PARK_AFTER_TRIES
