"""After a long SNS outage, one sweeper run drains the backlog page after page, within its time.

On moto, through the real hops: the stream publisher archives while SNS is down and keeps the
positions; the sweeper republishes them. Pages are made small here to see several of them.
"""

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from emulator.runner import EventSourceRunner, resolve_handler
from functions import outbox, publisher
from tests.conftest import Api
from tests.e2e.test_guarantees import titles
from tests.e2e.test_outages import oracle_view
from tests.faults import failing
from tests.helpers import scan, scheduled_event

POSTS = 7


def backlog(api: Api, runner: EventSourceRunner) -> None:
    """``POSTS`` posts written and archived while SNS is down: all unsent."""
    with failing("sns", "PublishBatch", EndpointConnectionError(endpoint_url="sns")):
        for index in range(POSTS):
            api.post("/posts", {"title": f"backlog {index}"})
        runner.drain()
    assert len(unsent()) == POSTS


def unsent() -> list[dict[str, Any]]:
    return [r for r in scan("outbox") if not r["sent"]]


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pages of 2 records; the size of each page the sweeper reads."""
    monkeypatch.setattr(publisher, "SWEEP_PAGE", 2)
    read = outbox.unsent
    sizes: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> list[outbox.OutboxRecord]:
        records = read(*args, **kwargs)
        sizes.append(len(records))
        return records

    monkeypatch.setattr(outbox, "unsent", counted)
    return sizes


def test_one_sweep_drains_a_backlog_of_many_pages(
    api: Api, runner: EventSourceRunner, pages: list[int]
) -> None:
    # GIVEN seven records left unsent by an SNS outage, and pages of two
    backlog(api, runner)
    # WHEN SNS is back and the sweeper runs once
    runner.fire("outbox_sweeper")
    # THEN it read page after page until one came back short, and nothing is left unsent
    assert pages == [2, 2, 2, 1]
    assert unsent() == []
    runner.drain()
    assert titles(api) == sorted(f"backlog {i}" for i in range(POSTS))
    assert api.get("/posts")[1] == oracle_view()


def test_a_sweep_stops_paging_when_its_time_runs_short(
    api: Api, runner: EventSourceRunner, pages: list[int]
) -> None:
    # GIVEN the same backlog, and an invocation with no time left after its first page
    backlog(api, runner)

    class NoTimeLeft:
        def get_remaining_time_in_millis(self) -> int:
            return 0

    event = scheduled_event()
    # WHEN the sweeper runs
    report = resolve_handler("functions.publisher.sweep_unsent")(event, NoTimeLeft())
    # THEN it swept one page and left the rest to the next run
    assert (pages, report["pages"], report["published"]) == ([2], 1, 2)
    assert len(unsent()) == POSTS - 2
