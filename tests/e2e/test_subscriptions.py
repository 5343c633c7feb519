"""The live path and catch-up deliver the same cause at once; one effect results.

Moderation and comments emit events from their handlers. When the live path and a catch-up
apply the same event concurrently, both compute the same decision and race to commit it; the
outbox record's condition on the derived event id (and, for comments, the condition on the
comment's version) lets exactly one commit. Each test holds both appliers at a barrier just
before their transaction, so the race is real, not hoped for.
"""

import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from emulator.runner import EventSourceRunner
from functions import archive, names, outbox, settings, subscribers
from functions.events import parse_event
from functions.subscriptions import checkpoint, follower
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.helpers import scan


def archived_types(comment_id: str) -> Counter[str]:
    config = settings.load()
    return Counter(
        parse_event(e.payload).type
        for e in archive.history(config, archive.head(config).position)
        if parse_event(e.payload).aggregate_id == comment_id
    )


@pytest.fixture
def racing_writes(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Once armed, the next two outbox transactions wait for each other, then commit at once."""
    barrier = threading.Barrier(2, timeout=30)
    write = outbox.write
    waiting = [0]

    def write_together(table: str, operations: Sequence[Any], events: Sequence[Any]) -> None:
        if waiting[0] > 0:
            waiting[0] -= 1
            barrier.wait()
        write(table, operations, events)

    monkeypatch.setattr(outbox, "write", write_together)

    def arm() -> None:
        waiting[0] = 2

    return arm


def resume_without_catch_up(runner: EventSourceRunner, source: str) -> None:
    """Resume a source without the catch-up its resumption runs: the test runs its own."""
    with pytest.MonkeyPatch.context() as resuming:
        resuming.setattr(follower, "scheduled", lambda subscription: {})
        runner.resume(source)


def live_and_catch_up_at_once(
    runner: EventSourceRunner, consumer: str, arm: Callable[[], None]
) -> None:
    """The consumer's live path takes its batch while its catch-up applies the same event."""
    errors: list[BaseException] = []

    def run(step: Any) -> None:
        try:
            step()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    resume_without_catch_up(runner, f"{consumer}_consumer")
    arm()  # after the resume: only the two racing appliers may reach the barrier
    source = runner.sources[f"{consumer}_consumer"]
    subscription = subscribers.by_name(consumer)
    threads = [
        threading.Thread(target=run, args=(source.poll,)),
        threading.Thread(
            target=run, args=(lambda: follower.catch_up(settings.load(), subscription),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_moderation_decided_live_and_by_catch_up_at_once_emits_one_decision(
    api: Api, runner: EventSourceRunner, racing_writes: Callable[[], None]
) -> None:
    # GIVEN a comment whose CommentCreated waits in moderation's queue and in the archive
    runner.pause("moderation_consumer")
    _, post = api.post("/posts", {"title": "Raced"})
    _, [comment] = api.post(f"/posts/{post['id']}/comments", {"content": "an orange"})
    runner.drain()
    # WHEN the live path and catch-up both decide it, committing at the same moment
    live_and_catch_up_at_once(runner, "moderation", racing_writes)
    runner.drain()
    # THEN one decision, one CommentModerated, one CommentUpdated, and the right status
    assert [d["comment_id"] for d in scan(names.MODERATION_TABLE)] == [comment["id"]]
    assert archived_types(comment["id"]) == Counter(
        {"CommentCreated": 1, "CommentModerated": 1, "CommentUpdated": 1}
    )
    assert api.get(f"/posts/{post['id']}")[1]["comments"][0]["status"] == "rejected"
    assert api.get("/posts")[1] == oracle_view()


def test_a_decision_applied_live_and_by_catch_up_at_once_updates_the_comment_once(
    api: Api, runner: EventSourceRunner, racing_writes: Callable[[], None]
) -> None:
    # GIVEN a decision whose CommentModerated waits in the comments queue and in the archive
    runner.pause("comments_consumer")
    _, post = api.post("/posts", {"title": "Raced"})
    _, [comment] = api.post(f"/posts/{post['id']}/comments", {"content": "lovely"})
    runner.drain()
    # WHEN the live path and catch-up both apply it, committing at the same moment
    live_and_catch_up_at_once(runner, "comments", racing_writes)
    runner.drain()
    # THEN the comment changed once: approved, version 2, one CommentUpdated
    [stored] = scan(names.COMMENTS_TABLE)
    assert (stored["status"], stored["comment_version"]) == ("approved", 2)
    assert archived_types(comment["id"]) == Counter(
        {"CommentCreated": 1, "CommentModerated": 1, "CommentUpdated": 1}
    )
    assert api.get("/posts")[1] == oracle_view()


def test_live_marks_are_one_write_a_batch_and_catch_up_folds_them(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live path records a batch's positions with one write per seen-marks item; catch-up
    folds every mark into the watermark and removes it, across items."""
    monkeypatch.setattr(names, "SEEN_BUCKET_SIZE", 4)
    config = settings.load()
    query = subscribers.by_name("query")
    runner.pause("query_consumer")
    for index in range(3):
        _, post = api.post("/posts", {"title": f"marked {index}"})
        api.post(f"/posts/{post['id']}/comments", {"content": "fine"})
    runner.drain()
    # WHEN the query consumer takes its queue as one batch
    marks: list[list[int]] = []
    mark = checkpoint.mark

    def counted(*args: Any) -> None:
        marks.append(sorted(args[3]))
        mark(*args)

    monkeypatch.setattr(checkpoint, "mark", counted)
    resume_without_catch_up(runner, "query_consumer")  # the live path, not a catch-up
    runner.drain()
    # THEN one mark call a batch (and track) recorded all the positions applied live
    head = archive.head(config).position
    assert head == 12
    [applied] = marks
    assert len(applied) == 9  # 3 x (PostCreated, CommentCreated, CommentUpdated)
    assert checkpoint.seen(config, query, "v1", 1, head) == set(applied)
    # AND catch-up folds them (over four seen-marks items) and removes them
    report = follower.catch_up(config, query)
    assert (report.watermark_after, report.recovered, report.ignored) == (head, 0, 3)
    assert checkpoint.seen(config, query, "v1", 1, head) == set()


@pytest.mark.parametrize("consumer", names.CONSUMERS)
def test_an_unreadable_archived_event_is_parked_and_never_blocks_a_consumers_catch_up(
    api: Api, runner: EventSourceRunner, consumer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an archived event this code cannot read (a future schema version), among others
    config = settings.load()
    [position] = archive.allocate(config, 1)
    future = {"type": "CommentCreated", "version": 99, "event_id": "e", "aggregate_id": "a"}
    archive.record(
        config,
        [
            archive.ArchivedEvent(
                position=position,
                event_id="e",
                event_type="CommentCreated",
                payload=json.dumps(future),
                archived_at=0.0,
            )
        ],
    )
    _, post = api.post("/posts", {"title": "After it"})
    api.post(f"/posts/{post['id']}/comments", {"content": "an orange"})
    runner.drain()
    logged: list[dict[str, Any]] = []

    def error(message: str, **fields: Any) -> None:
        logged.append({**fields, "message": message})

    monkeypatch.setattr(follower.logger, "error", error)
    # WHEN the consumer catches up
    report = follower.catch_up(config, subscribers.by_name(consumer))
    # THEN a consumer of CommentCreated parks it and logs it, and its watermark stays below
    # it; what came after is applied all the same. Comments does not take it: it passes it.
    takes = "CommentCreated" in subscribers.by_name(consumer).event_types
    assert (report.unreadable, report.parked) == ((1, 1) if takes else (0, 0))
    assert report.watermark_after == (position - 1 if takes else report.head)
    assert report.lag == (1 if takes else 0)
    assert takes == any(
        line.get("message") == "unreadable archived event" and line.get("position") == position
        for line in logged
    )
    assert api.get(f"/posts/{post['id']}")[1]["comments"][0]["status"] == "rejected"
