"""Acceptance (issue 3): the query view converges after every kind of outage.

Each case runs the seed's scenario: a post and a comment; query goes down; a second post and a
comment with the banned word, moderated; query comes back. The final view must equal, item by
item, the view of a consumer that missed nothing (the projection folded over the whole
archive), and equal the view of the same scenario run with no outage (ids aside). The catch-up
report must count exactly the events query missed.
"""

from typing import Any

import pytest

from emulator import ops
from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from functions import archive, settings
from functions.events import parse_event
from functions.query.projection import fold, render_view
from tests.conftest import Api

QUERY_EVENTS_IN_PHASE_TWO = 3  # PostCreated, CommentCreated, CommentUpdated
QUERY_EVENTS_IN_ALL = 6


def phase_one(api: Api, runner: EventSourceRunner, query_deployed: bool = True) -> None:
    _, post = api.post("/posts", {"title": "Before the outage"})
    api.post(f"/posts/{post['id']}/comments", {"content": "Lovely weather"})
    runner.drain()
    if query_deployed:
        runner.fire("query_catch_up")  # the scheduled run: the watermark reaches the head


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
        (post["title"], [(c["content"], c["status"]) for c in post["comments"]])
        for post in view.values()
    ]


EXPECTED = [
    ("Before the outage", [("Lovely weather", "approved")]),
    ("During the outage", [("Peel an orange", "rejected")]),
]


def test_no_outage_baseline(api: Api, runner: EventSourceRunner) -> None:
    phase_one(api, runner)
    phase_two(api, runner)
    _, view = api.get("/posts")
    assert view == oracle_view()
    assert without_ids(view) == EXPECTED


@pytest.mark.parametrize("mode", ops.MODES)
def test_query_converges_after_an_outage(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers, mode: ops.Mode
) -> None:
    # GIVEN a post and a comment seen by query
    phase_one(api, runner)
    # WHEN query goes down, more happens, and query comes back
    ops.outage_start(consumers, "query", mode)
    phase_two(api, runner)
    _, during = api.get("/posts")
    assert without_ids(during) == EXPECTED[:1], "query should have missed phase two"
    report = ops.outage_end(consumers, "query")
    runner.drain()
    # THEN the view is exactly the view of a consumer that missed nothing
    _, view = api.get("/posts")
    assert view == oracle_view()
    assert without_ids(view) == EXPECTED
    # AND catch-up recovered exactly the events query missed from the archive
    assert report is not None
    assert report.recovered == QUERY_EVENTS_IN_PHASE_TWO
    assert report.behind == QUERY_EVENTS_IN_PHASE_TWO + 1
    assert report.ignored == 1  # phase two's CommentModerated: not a view event
    assert report.holes_skipped == report.holes_pending == 0
    assert report.watermark_after == report.head
    # AND the consumer is subscribed and running again
    status = {s.consumer: s for s in ops.status(consumers).consumers}["query"]
    assert (status.subscribed, status.paused, status.queue_depth) == (True, False, 0)
    assert status.watermark == status.archive_head


def test_brand_new_subscriber_gets_the_whole_history(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers
) -> None:
    # GIVEN a query service that was not deployed (nor subscribed) while everything happened
    ops.outage_start(consumers, "query", "unsubscribe")
    phase_one(api, runner, query_deployed=False)
    phase_two(api, runner)
    assert api.get("/posts") == (200, {})
    # WHEN it is deployed (subscribed) and starts from position 0
    report = ops.outage_end(consumers, "query")
    runner.drain()
    # THEN it has the whole history, like a durable subscription with deliver-all
    assert report is not None
    assert (report.watermark_before, report.recovered) == (0, QUERY_EVENTS_IN_ALL)
    _, view = api.get("/posts")
    assert view == oracle_view()
    assert without_ids(view) == EXPECTED
