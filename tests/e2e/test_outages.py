"""Acceptance (issues 3 and 11): every consumer converges after every kind of outage.

Each case runs the seed's scenario: a post and a comment; one consumer (moderation, comments
or query) goes down; a second post and a comment with the banned word; the consumer comes back.
The final state must equal, item by item, the state of a stack that missed nothing: the view
equals the projection folded over the whole archive and the no-outage baseline (ids aside),
every comment has its final status in the comments table, and every comment caused exactly one
``CommentCreated``, one ``CommentModerated`` and one ``CommentUpdated``. The catch-up report
must count exactly the events the consumer missed.
"""

from collections import Counter
from typing import Any

import pytest

from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from functions import archive, names, settings
from functions.events import parse_event
from functions.query.projection import fold, render_view
from operations import ops
from tests.conftest import Api
from tests.helpers import scan

MISSED_IN_PHASE_TWO = {
    "moderation": 1,  # CommentCreated
    "comments": 1,  # CommentModerated
    "query": 3,  # PostCreated, CommentCreated, CommentUpdated
}
"""The events of phase two each consumer takes."""
ARCHIVED_WHILE_DOWN = {"moderation": 2, "comments": 3, "query": 4}
"""Phase two's events archived by the time the consumer is back: while moderation is down the
comment is not decided, so its CommentModerated and CommentUpdated come only after it."""
EVENTS_IN_PHASE_ONE = 4
MISSED_IN_ALL = {"moderation": 2, "comments": 2, "query": 6}


def catch_ups(runner: EventSourceRunner) -> None:
    """Every consumer's scheduled catch-up: the watermarks reach the archive head."""
    for consumer in names.CONSUMERS:
        runner.fire(f"{consumer}_catch_up")
    runner.drain()


def phase_one(api: Api, runner: EventSourceRunner) -> None:
    _, post = api.post("/posts", {"title": "Before the outage"})
    api.post(f"/posts/{post['id']}/comments", {"content": "Lovely weather"})
    runner.drain()


def phase_two(api: Api, runner: EventSourceRunner) -> None:
    _, post = api.post("/posts", {"title": "During the outage"})
    api.post(f"/posts/{post['id']}/comments", {"content": "Peel an orange"})
    runner.drain()


def oracle_view() -> dict[str, Any]:
    """The view of a consumer that applied every archived event exactly in order."""
    config = settings.load()
    events = archive.history(config, archive.head(config).position)
    return render_view(fold(parse_event(e.payload) for e in events))


def without_ids(view: dict[str, Any]) -> list[Any]:
    return [
        (post["title"], [(c.get("content"), c["status"]) for c in post["comments"]])
        for post in view.values()
    ]


EXPECTED = [  # newest first, as GET /posts lists them
    ("During the outage", [(None, "rejected")]),  # a rejected comment's text is not served
    ("Before the outage", [("Lovely weather", "approved")]),
]


def events_per_comment() -> dict[str, Counter[str]]:
    """From the archive: how many events of each type every comment caused."""
    config = settings.load()
    counts: dict[str, Counter[str]] = {}
    for archived in archive.history(config, archive.head(config).position):
        event = parse_event(archived.payload)
        if event.type != "PostCreated":
            counts.setdefault(event.aggregate_id, Counter())[event.type] += 1
    return counts


def assert_converged(api: Api, consumers: LocalConsumers) -> None:
    """The state of a stack that missed nothing."""
    _, view = api.get("/posts")
    assert view == oracle_view()
    assert without_ids(view) == EXPECTED
    statuses = {c["content"]: (c["status"], c["comment_version"]) for c in scan("comments")}
    assert statuses == {"Lovely weather": ("approved", 2), "Peel an orange": ("rejected", 2)}
    assert len(scan(names.MODERATION_TABLE)) == 2
    once = Counter({"CommentCreated": 1, "CommentModerated": 1, "CommentUpdated": 1})
    assert list(events_per_comment().values()) == [once, once]
    for status in ops.status(consumers).consumers:
        assert (status.subscribed, status.paused, status.queue_depth) == (True, False, 0)


def test_no_outage_baseline(api: Api, runner: EventSourceRunner, consumers: LocalConsumers) -> None:
    phase_one(api, runner)
    phase_two(api, runner)
    assert_converged(api, consumers)


@pytest.mark.parametrize("mode", ops.MODES)
@pytest.mark.parametrize("consumer", names.CONSUMERS)
def test_a_consumer_converges_after_an_outage(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers, consumer: str, mode: ops.Mode
) -> None:
    # GIVEN a post and a comment seen by every consumer, and their watermarks at the head
    phase_one(api, runner)
    catch_ups(runner)
    # WHEN one consumer goes down and more happens
    ops.outage_start(consumers, consumer, mode)
    phase_two(api, runner)
    # THEN what depends on it stands still: the post is missing, or the comment is pending
    _, during = api.get("/posts")
    if consumer == "query":
        assert without_ids(during) == EXPECTED[1:], "query should have missed phase two"
    else:
        assert without_ids(during)[0] == ("During the outage", [(None, "pending")])
    # WHEN it comes back
    report = ops.outage_end(consumers, consumer)
    runner.drain()
    # THEN everything is exactly as if it had missed nothing
    assert_converged(api, consumers)
    # AND catch-up recovered exactly the events it missed, from the archive
    assert (report.consumer, report.watermark_before) == (consumer, EVENTS_IN_PHASE_ONE)
    assert report.recovered == MISSED_IN_PHASE_TWO[consumer]
    assert report.behind == ARCHIVED_WHILE_DOWN[consumer]
    assert report.ignored == ARCHIVED_WHILE_DOWN[consumer] - MISSED_IN_PHASE_TWO[consumer]
    assert report.holes_skipped == report.holes_pending == report.unreadable == 0
    assert report.watermark_after == report.head
    # AND after the next scheduled catch-ups, every watermark is at the archive head
    catch_ups(runner)
    for status in ops.status(consumers).consumers:
        assert status.watermark == status.archive_head, status.consumer


@pytest.mark.parametrize("consumer", names.CONSUMERS)
def test_a_consumer_deployed_late_gets_the_whole_history(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers, consumer: str
) -> None:
    # GIVEN a consumer that was not subscribed while everything happened
    ops.outage_start(consumers, consumer, "unsubscribe")
    phase_one(api, runner)
    phase_two(api, runner)
    # WHEN it is subscribed and starts from position 0
    report = ops.outage_end(consumers, consumer)
    runner.drain()
    # THEN it has the whole history, like a durable subscription with deliver-all
    assert (report.watermark_before, report.recovered) == (0, MISSED_IN_ALL[consumer])
    assert_converged(api, consumers)
