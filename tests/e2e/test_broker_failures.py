"""A broker outage or a publisher crash loses and repeats nothing."""

from botocore.exceptions import EndpointConnectionError

from emulator.control import LocalConsumers
from emulator.runner import EventSourceRunner
from functions import archive, names, settings
from operations import ops
from tests.conftest import Api
from tests.faults import crash_marking_sent, failing
from tests.helpers import scan


def statuses(api: Api) -> list[tuple[str | None, str]]:
    """Each comment's text (served only once approved) and status."""
    _, view = api.get("/posts")
    return [(c.get("content"), c["status"]) for post in view.values() for c in post["comments"]]


def test_sns_outage_keeps_writes_and_the_sweeper_publishes_them_later(
    api: Api, runner: EventSourceRunner, consumers: LocalConsumers
) -> None:
    sns_down = EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")
    # GIVEN SNS is unreachable
    with failing("sns", "PublishBatch", sns_down) as failed:
        # WHEN users write
        status, post = api.post("/posts", {"title": "Written while SNS was down"})
        assert status == 201
        assert api.post(f"/posts/{post['id']}/comments", {"content": "orange"})[0] == 201
        runner.drain()
        for _ in range(3):
            runner.fire("outbox_sweeper")  # the sweeper runs too, and fails the same way
        # THEN the writes are stored, their records stay unsent, and no consumer saw them
        assert failed
        outbox = scan(names.OUTBOX_TABLE)
        assert len(outbox) == 2
        assert not any(record["sent"] for record in outbox)
        assert api.get("/posts") == (200, {})
        assert ops.status(consumers).unsent_outbox == 2
        # AND each record was archived once, however many times publishing was retried
        assert archive.head(settings.load()).position == 2
    # WHEN SNS is back and the sweeper runs
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN every record is sent and every consumer converged
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
    assert statuses(api) == [(None, "rejected")]
    assert ops.status(consumers).unsent_outbox == 0
    assert archive.head(settings.load()).position == 2 + 2  # CommentModerated, CommentUpdated
    assert len(scan(names.MODERATION_TABLE)) == 1


def test_publisher_crash_between_publish_and_sent_republishes_and_applies_once(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a post, fully processed
    _, post = api.post("/posts", {"title": "t"})
    runner.drain()
    # WHEN the publisher crashes after publishing CommentCreated, before marking it sent
    crash = RuntimeError("publisher crashed")
    outbox_table = names.resource(settings.load().prefix, names.OUTBOX_TABLE)
    with crash_marking_sent(outbox_table, crash) as crashed:
        api.post(f"/posts/{post['id']}/comments", {"content": "hello"})
        runner.drain()  # the stream's retries leave the record: its dead publisher claimed it
    runner.fire("outbox_sweeper")
    runner.drain()
    # THEN the sweeper published it again; with the tests' hole grace of 0 its old position
    # may count as a hole, so it was archived at a new one: twice in the archive, counted ...
    assert len(crashed) == 1
    config = settings.load()
    archived = [e.event_type for e in archive.history(config, archive.head(config).position)]
    assert archived.count("CommentCreated") == 2
    assert archive.head(config).rearchived == 1
    # ... and nothing was applied twice: one decision, one update, comment at version 2
    assert len(scan(names.MODERATION_TABLE)) == 1
    assert [r["event_type"] for r in scan(names.OUTBOX_TABLE)].count("CommentUpdated") == 1
    [comment] = scan(names.COMMENTS_TABLE)
    assert (comment["status"], comment["comment_version"]) == ("approved", 2)
    assert statuses(api) == [("hello", "approved")]
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
