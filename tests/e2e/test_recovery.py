"""Rebuild, steady-state catch-up, holes, S3 segments, replay, redrive."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import aws_time
from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from functions import archive, aws, names, settings
from functions.events import PostCreated
from functions.query import recovery, store
from functions.query.service import SUBSCRIPTION
from functions.subscriptions import checkpoint, follower
from operations import ops
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.helpers import PREFIX, queue_url

VIEW_TABLE = names.resource(PREFIX, names.VIEW_TABLE)
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@pytest.fixture
def view_writes() -> Iterator[list[dict[str, Any]]]:
    """Every write call that touches the view table, recorded as it is made."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        tables = {params.get("TableName"), *params.get("RequestItems", {})}
        if VIEW_TABLE in tables:
            calls.append(params)

    client = aws.client("dynamodb")
    for operation in WRITES:
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", record)
    yield calls
    for operation in WRITES:
        client.meta.events.unregister(f"provide-client-params.dynamodb.{operation}", record)


def posts_with_comments(api: Api, runner: EventSourceRunner, count: int, tag: str) -> None:
    for index in range(count):
        _, post = api.post("/posts", {"title": f"{tag} {index}"})
        api.post(f"/posts/{post['id']}/comments", {"content": f"{tag} comment {index}"})
    runner.drain()


def test_catch_up_with_nothing_missed_writes_nothing_to_the_view(
    api: Api, runner: EventSourceRunner, view_writes: list[dict[str, Any]]
) -> None:
    # GIVEN a view that missed nothing, and one scheduled catch-up that folded the live marks
    posts_with_comments(api, runner, 2, "steady")
    runner.fire("query_catch_up")
    row_writes = [
        c for c in view_writes if c.get("Item", {}).get("view", {}).get("S", "").startswith("v1/")
    ]
    assert row_writes, "the live path writes view rows (the counter counts)"
    view_writes.clear()
    # WHEN catch-up runs again with nothing new
    report = recovery.catch_up(settings.load())
    # THEN it checked everything and made zero calls that write the view table
    assert report.behind == report.recovered == 0
    assert report.watermark_after == report.head == archive.head(settings.load()).position
    assert view_writes == []


def test_first_catch_up_after_live_delivery_writes_no_view_rows(
    api: Api, runner: EventSourceRunner, view_writes: list[dict[str, Any]]
) -> None:
    posts_with_comments(api, runner, 2, "live")
    view_writes.clear()
    report = recovery.catch_up(settings.load())
    assert report.recovered == 0
    assert report.ignored == 2  # the two CommentModerated, never delivered to query
    # only the checkpoint changes: the watermark, and the folded live marks removed
    assert not [c for c in view_writes if "Item" in c]
    changed = {(c["Key"]["view"]["S"], c["Key"]["key"]["S"]) for c in view_writes}
    assert changed == {
        ("~checkpoint#query#v1", "watermark"),
        ("~checkpoint#query#v1", "seen#000000000000"),
    }


def test_rebuild_while_writes_continue_loses_nothing(api: Api, runner: EventSourceRunner) -> None:
    # GIVEN a history spread over several archive buckets (segment size 10 in tests)
    posts_with_comments(api, runner, 4, "before")
    _, before = api.get("/posts")
    progress: list[tuple[int, int]] = []

    def write_during_rebuild(done: int, total: int) -> None:
        if not progress:
            # reads during the rebuild see the old, complete view, never a half-built one
            assert api.get("/posts") == (200, before)
            posts_with_comments(api, runner, 2, "during")
        progress.append((done, total))

    # WHEN the view is rebuilt while users keep writing
    report = recovery.rebuild(settings.load(), write_during_rebuild)
    posts_with_comments(api, runner, 1, "after")
    # THEN the new version serves every post, including those written during the rebuild
    assert (report.old_version, report.new_version) == ("v1", "v2")
    assert store.pointer(settings.load()) == store.Pointer(active="v2")
    _, view = api.get("/posts")
    titles = sorted(post["title"] for post in view.values())
    assert titles == sorted(
        [f"before {i}" for i in range(4)] + [f"during {i}" for i in range(2)] + ["after 0"]
    )
    assert view == oracle_view()
    # AND progress was reported up to the head the rebuild started from
    assert len(progress) > 1
    assert progress[-1][0] == progress[-1][1] == report.events
    # AND the old version is retired, and dropped in the background by the scheduled catch-up
    assert report.retired == ["v1"]
    assert store.version_rows(settings.load(), "v1") != []
    runner.fire("query_catch_up")
    assert store.version_rows(settings.load(), "v1") == []
    assert store.retired(settings.load()) == []


def test_writes_between_the_last_catch_up_and_the_switch_reach_the_new_version(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rebuild that is about to switch reads, its catch-up done
    posts_with_comments(api, runner, 1, "before")
    save_pointer = store.save_pointer

    def write_then_switch(
        config: settings.Settings, pointer: store.Pointer, expected: store.Pointer
    ) -> None:
        if pointer == store.Pointer(active="v2"):
            # WHEN users write in that window (live updates write both versions)
            posts_with_comments(api, runner, 1, "at the switch")
        save_pointer(config, pointer, expected)

    monkeypatch.setattr(store, "save_pointer", write_then_switch)
    recovery.rebuild(settings.load())
    # THEN the new version has them, with no further catch-up
    _, view = api.get("/posts")
    assert sorted(p["title"] for p in view.values()) == ["at the switch 0", "before 0"]
    assert view == oracle_view()


def test_the_live_path_reads_the_view_pointer_once_per_batch(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN three posts waiting in the query queue
    runner.pause("query_consumer")
    for index in range(3):
        api.post("/posts", {"title": f"batched {index}"})
    runner.drain()
    pointer_reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == VIEW_TABLE and params["Key"]["key"]["S"] == "active":
            pointer_reads.append(params)

    client = aws.client("dynamodb")
    client.meta.events.register("provide-client-params.dynamodb.GetItem", record)
    try:
        # WHEN the consumer receives them in one batch
        assert runner.sources["query_consumer"].poll() == 3
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.GetItem", record)
    # THEN it read the pointer once, and applied all three
    assert len(pointer_reads) == 1
    titles = sorted(p["title"] for p in api.get("/posts")[1].values())
    assert titles == ["batched 0", "batched 1", "batched 2"]


def test_a_batch_that_read_the_pointer_before_a_rebuild_loses_nothing(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's events were archived before it read the pointer, so a rebuild that starts
    after that read catches its new version up with them: the stale read costs nothing."""
    # GIVEN a batch of two posts, whose live path reads the pointer (v1) at the first event
    runner.pause("query_consumer")
    _, first = api.post("/posts", {"title": "first of the batch"})
    _, second = api.post("/posts", {"title": "second of the batch"})
    runner.drain()
    config = settings.load()
    project = SUBSCRIPTION.handlers[PostCreated]
    rebuilt: list[str] = []

    def rebuild_after_the_first_event(config: settings.Settings, event: Any, track: str) -> Any:
        result = project(config, event, track)
        if not rebuilt:
            rebuilt.append(recovery.rebuild(config).new_version)
        return result

    # WHEN a whole rebuild runs before the batch's second event is applied
    monkeypatch.setitem(SUBSCRIPTION.handlers, PostCreated, rebuild_after_the_first_event)  # type: ignore[misc]
    runner.resume("query_consumer")
    runner.drain()
    assert rebuilt == ["v2"]
    # THEN the view shows both posts, with no further catch-up
    view = api.get("/posts")[1]
    assert {view[first["id"]]["title"], view[second["id"]]["title"]} == {
        "first of the batch",
        "second of the batch",
    }
    assert checkpoint.watermark(config, SUBSCRIPTION, "v2") == archive.head(config).position
    assert api.get("/posts")[1] == oracle_view()


def test_holes_older_than_the_grace_are_skipped_and_counted(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a publisher that died after allocating two positions, then normal traffic
    archive.allocate(settings.load(), 2)
    posts_with_comments(api, runner, 1, "after the crash")
    # WHEN catch-up runs (the test stage's hole grace is 0 s)
    report = recovery.catch_up(settings.load())
    # THEN the holes are skipped, counted, and do not hold the watermark back
    assert report.holes_skipped == 2
    assert report.watermark_after == report.head


def test_history_is_the_union_of_s3_segments_and_the_table(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN more than two buckets of history, the complete ones copied to S3 by the schedule
    posts_with_comments(api, runner, 6, "old")
    runner.fire("archive_segmenter")
    config = settings.load()
    segmented = archive.head(config).segmented_through
    assert segmented >= 2
    # AND every record that carries a TTL deleted (as DynamoDB will, once its time comes)
    expire_every_ttl_item()
    # WHEN the view is rebuilt from nothing
    report = recovery.rebuild(config)
    # THEN every event was read, from S3 and the table together
    assert report.events == archive.head(config).position
    assert report.catch_up.recovered == 0
    _, view = api.get("/posts")
    assert len(view) == 6
    assert view == oracle_view()


def test_replay_reapplies_from_a_position_and_changes_nothing(
    api: Api, runner: EventSourceRunner
) -> None:
    posts_with_comments(api, runner, 2, "replayed")
    _, before = api.get("/posts")
    report = ops.replay("query", from_position=1)
    assert report.recovered == 6  # 2 x (PostCreated, CommentCreated, CommentUpdated)
    assert api.get("/posts") == (200, before)


def test_dlq_redrive_moves_messages_back_and_they_are_processed(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers
) -> None:
    # GIVEN a good event stuck in the query DLQ (say, it failed while a dependency was down)
    posts_with_comments(api, runner, 1, "seed")
    event = {
        "event_id": "11111111-1111-1111-1111-111111111111",
        "type": "PostCreated",
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "aggregate_id": "p-dlq",
        "data": {"id": "p-dlq", "title": "from the DLQ"},
    }
    sqs = aws.client("sqs")
    sqs.send_message(
        QueueUrl=queue_url(names.dead_letter_queue(PREFIX, "query")), MessageBody=json.dumps(event)
    )
    assert {s.consumer: s.dlq_depth for s in ops.status(consumers).consumers}["query"] == 1
    # WHEN it is redriven
    assert ops.dlq_redrive("query") == 1
    runner.drain()
    # THEN the DLQ is empty and the event is in the view
    assert {s.consumer: s.dlq_depth for s in ops.status(consumers).consumers}["query"] == 0
    assert api.get("/posts/p-dlq")[1]["title"] == "from the DLQ"


def test_a_rebuild_overtaken_by_another_does_not_switch_reads(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rebuild (A) that another rebuild (B) starts and finishes while A catches up
    posts_with_comments(api, runner, 1, "t")
    catch_up = recovery.catch_up
    overtaken: list[recovery.RebuildReport] = []

    def catch_up_while_b_runs(config: settings.Settings, version: str | None = None) -> Any:
        if not overtaken:
            monkeypatch.setattr(recovery, "catch_up", catch_up)
            overtaken.append(recovery.rebuild(config))  # B
        return catch_up(config, version)

    monkeypatch.setattr(recovery, "catch_up", catch_up_while_b_runs)
    # WHEN A tries to switch, THEN it is refused, and reads stay on B's complete version
    with pytest.raises(store.PointerMoved):
        recovery.rebuild(settings.load())
    [b] = overtaken
    assert store.pointer(settings.load()) == store.Pointer(active=b.new_version)
    assert api.get("/posts")[1] == oracle_view()
    assert b.retired == ["v2", "v1"]  # A's half-built version, and the old one
    assert sorted(recovery.drop_retired(settings.load())) == ["v1", "v2"]
    assert store.version_rows(settings.load(), "v2") == []


def expire_every_ttl_item() -> None:
    """What DynamoDB's TTL will do, sooner or later: delete every item that carries a TTL."""
    aws_time.expire_items()


def test_a_quiet_blog_rebuilds_whole_once_every_ttl_item_is_gone(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a quiet blog: fewer events than a bucket, nothing complete to copy to S3
    posts_with_comments(api, runner, 2, "quiet")
    config = settings.load()
    assert archive.head(config).position < config.segment_size
    # AND the segmenter ran before and after its bucket was old enough to seal partially
    runner.fire("archive_segmenter")
    assert aws_time.expire_items() == 0, "a record carried a TTL before it was in S3"
    monkeypatch.setenv("ARCHIVE_SEAL_AGE_SECONDS", "0")
    runner.fire("archive_segmenter")
    # WHEN DynamoDB deletes every archive item that carries a TTL
    assert aws_time.expire_items() == archive.head(config).position
    # THEN a rebuild from nothing still reads every event, from S3, and the view is whole
    report = recovery.rebuild(settings.load())
    assert report.events == archive.head(config).position
    _, view = api.get("/posts")
    assert sorted(p["title"] for p in view.values()) == ["quiet 0", "quiet 1"]
    assert view == oracle_view()


def test_a_hole_in_expired_history_is_skipped_however_young_the_traffic(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a hole in bucket 0, segmented to S3 and expired from the table
    archive.allocate(settings.load(), 1)
    posts_with_comments(api, runner, 4, "old")
    runner.fire("archive_segmenter")
    expire_every_ttl_item()
    # AND a long hole grace with fresh traffic (so time alone could not call it a hole)
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    posts_with_comments(api, runner, 1, "new")
    # WHEN a new view is built from the whole history
    report = recovery.rebuild(settings.load())
    # THEN the hole is passed over and the watermark reaches the head
    assert report.catch_up.watermark_after == archive.head(settings.load()).position
    assert report.catch_up.holes_pending == 0


def test_a_young_hole_holds_the_watermark_and_what_follows_is_not_redone(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN query away, a position just allocated and not yet recorded, then more events
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    ops.outage_start(LocalConsumers(runner), "query", "unsubscribe")
    [hole] = archive.allocate(settings.load(), 1)
    posts_with_comments(api, runner, 1, "after the hole")
    # WHEN catch-up runs twice
    first = recovery.catch_up(settings.load())
    second = recovery.catch_up(settings.load())
    # THEN the watermark waits before the young hole, the events after it are applied once
    assert (first.holes_pending, first.watermark_after) == (1, hole - 1)
    assert first.recovered == 3
    assert (second.recovered, second.holes_pending, second.behind) == (0, 1, 1)
    assert [p["title"] for p in api.get("/posts")[1].values()] == ["after the hole 0"]


def test_an_unreadable_archived_event_is_parked_by_catch_up_and_rebuild_alike(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN an archived event this code cannot read (a future schema version), among others
    config = settings.load()
    [position] = archive.allocate(config, 1)
    future = {"type": "PostCreated", "version": 99, "event_id": "e", "aggregate_id": "a"}
    archive.record(
        config,
        [
            archive.ArchivedEvent(
                position=position,
                event_id="e",
                event_type="PostCreated",
                payload=json.dumps(future),
                archived_at=0.0,
            )
        ],
    )
    posts_with_comments(api, runner, 1, "readable")
    # WHEN the view catches up, and is rebuilt
    report = recovery.catch_up(config)
    rebuilt = recovery.rebuild(config)
    # THEN the record is parked and holds the watermark below it, in both versions, without
    # stopping recovery: everything else is there, and lag counts only it
    assert (report.unreadable, report.parked, report.lag) == (1, 1, 1)
    assert report.watermark_after == position - 1
    assert (rebuilt.catch_up.watermark_after, rebuilt.catch_up.parked) == (position - 1, 1)
    assert [p["title"] for p in api.get("/posts")[1].values()] == ["readable 0"]
    [parked] = ops.parked("query")
    assert (parked.track, parked.position, parked.event_id) == (rebuilt.new_version, position, "e")


def test_a_catch_up_cut_short_resumes_where_it_stopped(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a brand-new view with history to catch up, in chunks of two positions
    ops.outage_start(LocalConsumers(runner), "query", "unsubscribe")
    posts_with_comments(api, runner, 2, "history")
    monkeypatch.setattr(follower, "CHUNK", 2)
    calls: list[int] = []
    read = archive.read

    def timeout_on_the_third(*args: Any) -> Any:
        # (a handler's exception would not do: catch-up holds that event and goes on)
        calls.append(1)
        if len(calls) == 3:
            raise TimeoutError("the Lambda ran out of time")
        return read(*args)

    monkeypatch.setattr(archive, "read", timeout_on_the_third)
    # WHEN the first run is cut short
    with pytest.raises(TimeoutError):
        recovery.catch_up(settings.load())
    # THEN its progress was saved, and the next run goes on from there
    saved = checkpoint.watermark(settings.load(), SUBSCRIPTION, "v1")
    assert saved >= 2
    monkeypatch.undo()
    report = recovery.catch_up(settings.load())
    assert report.watermark_before == saved
    assert report.watermark_after == report.head
    assert len(api.get("/posts")[1]) == 2
