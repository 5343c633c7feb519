"""Each event is archived once: the sweeper and a late stream publisher never both archive it.

On moto, through the real outbox stream, archive table, SNS topic and queues. An extra copy
is possible only when a publisher dies between claiming (perhaps archiving) and marking sent;
the sweeper's rescue then archives again, and the archive's counter counts it.
"""

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.runner import EventSourceRunner
from functions import archive, names, settings
from tests.conftest import Api
from tests.faults import crash_marking_sent
from tests.helpers import backdate_outbox, scan

PUBLISHER, SWEEPER = "outbox_publisher", "outbox_sweeper"


def write_posts(api: Api, count: int) -> list[str]:
    ids = []
    for i in range(count):
        status, post = api.post("/posts", {"title": f"post {i}"})
        assert status == 201
        ids.append(post["id"])
    return ids


def census() -> archive.Census:
    return archive.census(settings.load())


def visible(api: Api) -> set[str]:
    _, view = api.get("/posts")
    return set(view)


def test_a_late_stream_publisher_leaves_what_the_sweeper_took(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN the stream publisher far behind, with three records past the sweep grace
    runner.pause(PUBLISHER)
    posts = write_posts(api, 3)
    # WHEN the sweeper publishes them, and then the stream publisher catches up
    runner.fire(SWEEPER)
    runner.resume(PUBLISHER)
    runner.drain()
    # THEN each event is in the archive once, and delivered
    assert census() == archive.Census(records=3, distinct_events=3, rearchived=0)
    assert archive.head(settings.load()).position == 3, "a lost claim costs no position"
    assert visible(api) == set(posts)
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))


@pytest.fixture
def slow_archiving(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, threading.Event]]:
    """The first ``archive.record`` call holds until released: a publisher caught mid-batch."""
    events = {"holding": threading.Event(), "release": threading.Event()}
    original = archive.record
    calls = []

    def record(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            events["holding"].set()
            assert events["release"].wait(30)
        original(*args, **kwargs)

    monkeypatch.setattr(archive, "record", record)
    yield events
    events["release"].set()


def test_the_sweeper_leaves_a_live_publishers_claim_alone(
    api: Api,
    runner: EventSourceRunner,
    monkeypatch: pytest.MonkeyPatch,
    slow_archiving: dict[str, threading.Event],
) -> None:
    # GIVEN a publisher that is late (records a minute old, the grace 30 s) ...
    monkeypatch.setenv("OUTBOX_SWEEP_GRACE_SECONDS", "30")
    runner.pause(PUBLISHER)
    posts = write_posts(api, 3)
    backdate_outbox(60)
    # ... and now busy with them: claimed, not yet archived
    runner.resume(PUBLISHER)
    publisher = threading.Thread(target=runner.sources[PUBLISHER].poll)
    publisher.start()
    assert slow_archiving["holding"].wait(30)
    # WHEN the sweeper runs meanwhile
    runner.fire(SWEEPER)
    # THEN it leaves the claimed records to their publisher, which finishes them
    assert archive.head(settings.load()).position == 3, "the sweeper allocated nothing"
    slow_archiving["release"].set()
    publisher.join(timeout=30)
    runner.drain()
    assert census() == archive.Census(records=3, distinct_events=3, rearchived=0)
    assert visible(api) == set(posts)
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))


def crash_before_marking_sent() -> Any:
    table = names.resource(settings.load().prefix, names.OUTBOX_TABLE)
    crash = RuntimeError("publisher died between archiving and marking sent")
    return crash_marking_sent(table, crash)


def test_a_crash_between_archiving_and_marking_sent_adds_one_counted_copy(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a publisher that died between archiving and marking sent
    with crash_before_marking_sent() as crashed:
        [post] = write_posts(api, 1)
        runner.drain()  # the stream's retries leave the record: its dead publisher claimed it
    assert crashed
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [False]
    # WHEN the sweeper rescues it (its claim expired: the sweep grace is 0 in tests)
    runner.fire(SWEEPER)
    runner.drain()
    # THEN it is archived again at a new position: one extra copy, and it is counted
    assert census() == archive.Census(records=2, distinct_events=1, rearchived=1)
    assert visible(api) == {post}
    assert [r["sent"] for r in scan(names.OUTBOX_TABLE)] == [True]
