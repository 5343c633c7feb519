"""One focused test for each behaviour the no-loss guarantee rests on.

A mutation audit changed these behaviours one at a time and the suite still passed. Each test
here fails when its behaviour is broken (docs/testing.md, "Mutations the suite must kill",
records the change and the failure) and passes on the code as it is. They go through the
real hops on moto (outbox stream, archive, SNS to SQS, the runner) and inject faults at the
AWS client (``tests/faults.py``), importing nothing from the consumer plumbing.
"""

import json
import logging
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from functions import archive, aws, events, names, settings
from functions.query import recovery, service, store
from operations import ops
from tests.conftest import Api
from tests.e2e.conftest import Records
from tests.e2e.test_outages import oracle_view
from tests.e2e.test_recovery import expire_every_ttl_item, posts_with_comments
from tests.e2e.test_redelivery import subscribe_tap
from tests.faults import failing, failing_entries
from tests.helpers import PREFIX, peek_bodies, receive_all, scan, writes_table

ARCHIVE_TABLE = names.resource(PREFIX, names.ARCHIVE_TABLE)
OUTBOX_TABLE = names.resource(PREFIX, names.OUTBOX_TABLE)
SNS_DOWN = EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")
DYNAMODB_DOWN = EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


def titles(api: Api) -> list[str]:
    return sorted(post["title"] for post in api.get("/posts")[1].values())


def position_of(entry: dict[str, Any]) -> int:
    return int(entry["MessageAttributes"][names.POSITION_ATTRIBUTE]["StringValue"])


# -- the publisher: archive first, then publish; only what SNS accepted is sent -------------


def test_every_event_is_in_the_archive_before_sns_sees_it(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a watch on every PublishBatch call: is each entry already archived, as published?
    checked: list[bool] = []

    def archived_already(params: dict[str, Any], **_: Any) -> None:
        entries = params["PublishBatchRequestEntries"]
        found = archive.read(settings.load(), [position_of(e) for e in entries])
        checked.extend(
            position_of(e) in found and found[position_of(e)].payload == e["Message"]
            for e in entries
        )

    hook = "provide-client-params.sns.PublishBatch"
    aws.client("sns").meta.events.register(hook, archived_already)
    try:
        # WHEN posts and comments flow through the whole pipeline
        posts_with_comments(api, runner, 2, "ordered")
    finally:
        aws.client("sns").meta.events.unregister(hook, archived_already)
    # THEN every event SNS was handed was in the archive at its position already
    assert len(checked) == 8  # 2 x (post, comment, decision, update)
    assert all(checked)


def test_an_archive_that_cannot_be_written_publishes_nothing(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a tap on the topic, and the archive table failing
    subscribe_tap()
    with failing(
        "dynamodb",
        "BatchWriteItem",
        DYNAMODB_DOWN,
        when=lambda p: ARCHIVE_TABLE in p["RequestItems"],
    ) as failed:
        # WHEN a post is written and the publisher runs (and is retried)
        assert api.post("/posts", {"title": "archive down"})[0] == 201
        runner.drain()
    # THEN nothing reached SNS, and the record waits unsent
    assert failed
    assert receive_all(f"{PREFIX}-tap") == []
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [False]
    # WHEN the archive is back and the sweeper runs (the test stage's grace is 0 s)
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN the post is published once, at a position the archive holds
    [message] = receive_all(f"{PREFIX}-tap")
    position = int(message["MessageAttributes"][names.POSITION_ATTRIBUTE]["StringValue"])
    assert archive.read(settings.load(), [position])[position].payload == message["Body"]
    assert titles(api) == ["archive down"]


def test_entries_sns_reported_failed_stay_unsent_and_are_published_later(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN SNS failing one entry of a batch (PublishBatch's Failed list), accepting the other
    with failing_entries(lambda entry: "refused by SNS" in entry["Message"]) as refused:
        # WHEN two posts are published in one batch
        for title in ("accepted by SNS", "refused by SNS"):
            assert api.post("/posts", {"title": title})[0] == 201
        runner.drain()
    # THEN the refused one is not sent, and not shown; the accepted one is
    assert len(refused) == 1
    sent = {json.loads(r["payload"])["data"]["title"]: r["sent"] for r in scan(names.OUTBOX_TABLE)}
    assert sent == {"accepted by SNS": True, "refused by SNS": False}
    assert titles(api) == ["accepted by SNS"]
    # WHEN the sweeper runs with SNS healthy
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN it is published, at the position archived the first time (not archived twice)
    assert titles(api) == ["accepted by SNS", "refused by SNS"]
    assert all(r["sent"] for r in scan(names.OUTBOX_TABLE))
    assert archive.head(settings.load()).position == 2


def test_the_sweeper_leaves_records_younger_than_its_grace(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an unsent record (SNS was down when the stream publisher ran), and a 1 h grace
    with failing("sns", "PublishBatch", SNS_DOWN):
        assert api.post("/posts", {"title": "young and unsent"})[0] == 201
        runner.drain()
    monkeypatch.setenv("OUTBOX_SWEEP_GRACE_SECONDS", "3600")
    # WHEN the sweeper runs
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN it leaves the young record to the stream publisher
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [False]
    assert titles(api) == []
    # WHEN the record is older than the grace
    monkeypatch.setenv("OUTBOX_SWEEP_GRACE_SECONDS", "0")
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN the sweeper publishes it
    assert titles(api) == ["young and unsent"]


# -- consumers: a message whose handler raised is never lost --------------------------------

CONSUMER_WRITE = {
    "moderation": ("TransactWriteItems", names.MODERATION_TABLE, {"CommentCreated"}),
    "comments": ("TransactWriteItems", names.COMMENTS_TABLE, {"CommentModerated"}),
    "query": ("PutItem", names.VIEW_TABLE, {"PostCreated", "CommentCreated", "CommentUpdated"}),
}


@pytest.mark.parametrize("consumer", sorted(CONSUMER_WRITE))
def test_a_message_whose_handler_raised_comes_back_then_is_parked_and_applied_once_fixed(
    api: Api, runner: EventSourceRunner, service_logs: Records, consumer: str
) -> None:
    operation, suffix, handled = CONSUMER_WRITE[consumer]
    table = names.resource(PREFIX, suffix)
    dlq = names.dead_letter_queue(PREFIX, consumer)
    crash = RuntimeError(f"{consumer} cannot write")
    # GIVEN a post and a comment written
    _, post = api.post("/posts", {"title": "t"})
    api.post(f"/posts/{post['id']}/comments", {"content": "hello"})
    # WHEN everything drains, with the consumer's own writes failing (every other hop works)
    with failing("dynamodb", operation, crash, when=lambda p: writes_table(p, table)) as failed:
        runner.drain()
    # THEN each message it failed on was received 3 times, then parked (acknowledged: it is
    # in the archive, so no dead letter), its watermark held below it
    config = settings.load()
    expected = {
        e.event_id: e.position
        for e in archive.history(config, archive.head(config).position)
        if e.event_type in handled
    }
    assert expected
    assert len(failed) == names.PARK_AFTER_TRIES * len(expected)
    assert peek_bodies(dlq) == []
    parked = ops.parked(consumer)
    assert {f.event_id: f.position for f in parked} == expected
    assert all(f.parked and f.tries == names.PARK_AFTER_TRIES for f in parked)
    assert all(repr(crash) == f.reason for f in parked)
    # AND every failed receive was logged as an error, with its message id and the cause
    lines = [r for r in service_logs.records if r.getMessage() == "message failed"]
    assert len(lines) == names.PARK_AFTER_TRIES * len(expected)
    assert {r.levelno for r in lines} == {logging.ERROR}
    assert {getattr(r, "reason", None) for r in lines} == {repr(crash)}
    assert len({getattr(r, "message_id", None) for r in lines} - {None}) == len(expected)
    # WHEN the cause is fixed and the consumers' scheduled catch-ups run
    for name in ("moderation", "comments", "query"):
        runner.fire(f"{name}_catch_up")
        runner.drain()
    # THEN the comment ends approved, shown in the view, and nothing is parked
    assert api.get(f"/posts/{post['id']}")[1]["comments"][0]["status"] == "approved"
    assert ops.parked() == []


# -- the archive: its S3 tier is read ---------------------------------------------------------


def test_catch_up_reads_positions_expired_from_the_table_from_s3(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN query unsubscribed while more than a bucket of events happens
    consumers = LocalConsumers(runner)
    ops.outage_start(consumers, "query", "unsubscribe")
    posts_with_comments(api, runner, 3, "expired")
    # AND the complete bucket copied to S3, and its table records expired (TTL)
    runner.fire("archive_segmenter")
    assert archive.head(settings.load()).segmented_through >= 1
    expire_every_ttl_item()
    # WHEN the outage ends (catch-up)
    report = ops.outage_end(consumers, "query")
    # THEN the expired positions were read from S3: nothing skipped, the view complete
    assert report is not None
    assert report.holes_skipped == 0
    assert report.recovered == 3 * 3  # PostCreated, CommentCreated, CommentUpdated each
    assert titles(api) == ["expired 0", "expired 1", "expired 2"]
    assert api.get("/posts")[1] == oracle_view()


# -- the view: newer wins; a young hole waits; a rebuild catches up --------------------------


def comment_event(kind: type[events.CommentCreated] | type[events.CommentUpdated], **data: Any):
    comment = events.CommentData(id="c1", postId="p1", content="hi", **data)
    return kind.of(comment)


def test_an_older_event_never_replaces_what_a_newer_one_wrote(api: Api) -> None:
    # GIVEN the view showing a comment's decision (version 2)
    config = settings.load()
    version = store.active_version(config)
    post = events.PostCreated.of(events.PostData(id="p1", title="t"))
    service.project(config, post, version)
    updated = comment_event(events.CommentUpdated, status="approved", commentVersion=2)
    assert service.project(config, updated, version) == 1
    # WHEN the older CommentCreated (version 1, pending) arrives late
    created = comment_event(events.CommentCreated, status="pending", commentVersion=1)
    changed = service.project(config, created, version)
    # THEN it changes nothing
    assert changed == 0
    assert api.get("/posts/p1")[1]["comments"] == [
        {"id": "c1", "content": "hi", "status": "approved"}
    ]


def test_a_young_hole_waits_for_its_late_event(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN query unsubscribed; a publisher allocated a position and has not recorded it yet
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    consumers = LocalConsumers(runner)
    ops.outage_start(consumers, "query", "unsubscribe")
    config = settings.load()
    [late] = archive.allocate(config, 1)
    posts_with_comments(api, runner, 1, "after the hole")
    # WHEN catch-up runs
    first = recovery.catch_up(config)
    # THEN the young hole is not skipped: the watermark waits before it
    assert (first.holes_pending, first.holes_skipped, first.watermark_after) == (1, 0, late - 1)
    # WHEN the slow publisher records its event at last, and catch-up runs again
    post = events.PostCreated.of(events.PostData(id="late", title="the late one"))
    archived = archive.ArchivedEvent(
        position=late,
        event_id=post.event_id,
        event_type=post.type,
        payload=post.to_json(),
        archived_at=0.0,
    )
    archive.record(config, [archived])
    second = recovery.catch_up(config)
    # THEN the late event is applied and the watermark reaches the head
    assert second.recovered == 1
    assert second.watermark_after == second.head
    assert titles(api) == ["after the hole 0", "the late one"]


def test_a_rebuild_catches_up_what_was_archived_while_it_read_the_history(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN history, and the live query consumer paused (only catch-up can bring new events)
    posts_with_comments(api, runner, 2, "before")
    runner.pause("query_consumer")
    written: list[str] = []

    def write_while_reading(done: int, total: int) -> None:
        if not written:
            written.append(api.post("/posts", {"title": "during the rebuild"})[1]["id"])
            runner.drain()  # archived, published; query's copy waits in its queue

    # WHEN the view is rebuilt, with a post written while it reads the history
    report = recovery.rebuild(settings.load(), write_while_reading)
    # THEN the new version holds it, through the rebuild's own catch-up
    assert written
    assert titles(api) == ["before 0", "before 1", "during the rebuild"]
    assert report.catch_up.recovered == 1
