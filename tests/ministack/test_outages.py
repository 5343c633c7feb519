"""The query consumer's outages on the deployed stack, and a poison message, on MiniStack.

An outage is what an operator would do on AWS: disable the consumer's event source mapping
(pause), delete its subscription (unsubscribe), or pause it and purge its queue (purge).
Recovery restores the subscription from the stack's template, invokes the query catch-up
function (its schedule cannot be fired on demand) and enables the mapping again. moto's lane
(tests/e2e/test_outages.py) checks the same against the oracle, and the purge rule.
"""

from typing import Any, Literal

import pytest

from functions import names
from operations import deployed
from tests.ministack.conftest import Lane, eventually
from tests.ministack.test_stack import outbox_of

Mode = Literal["pause", "unsubscribe", "purge"]
QUERY = "query_consumer"
EVENTS_PER_PHASE = 4  # PostCreated, CommentCreated, CommentModerated, CommentUpdated
QUERY_EVENTS_PER_PHASE = 3  # all but CommentModerated
SHORT_VISIBILITY = "5"
"""Seconds before a failed message comes back: with the template's 120, a poison message takes
six minutes to reach its DLQ. Only for the poison test: shorter than a cold start, it would
have slow good messages received three times and dead-lettered too."""


def write_phase(lane: Lane, title: str, comment: str) -> tuple[str, str]:
    """A post and a comment through the API, once all four of its events are published."""
    _, post = lane.post("/posts", {"title": title})
    _, [created] = lane.post(f"/posts/{post['id']}/comments", {"content": comment})
    eventually(
        lambda: (
            [r["sent"]["BOOL"] for r in outbox_of(lane, post["id"])] == [True] * EVENTS_PER_PHASE
        ),
        what=f"the events of {title!r} published",
    )
    return post["id"], created["id"]


def view_of(lane: Lane, post_id: str) -> Any:
    status, body = lane.get(f"/posts/{post_id}")
    if status == 404:
        return None
    return (body["title"], [(c.get("content"), c["status"]) for c in body["comments"]])


def catch_up(lane: Lane) -> dict[str, Any]:
    report: dict[str, Any] = lane.consumers.fire("query_catch_up")
    return report


@pytest.mark.parametrize("mode", ["pause", "unsubscribe", "purge"])
def test_query_recovers_after_an_outage(lane: Lane, mode: Mode) -> None:
    client, resources, consumers = lane.client, lane.resources, lane.consumers
    # GIVEN a post with an approved comment that query has seen, and its watermark at the head
    before, _ = write_phase(lane, f"Before the {mode}", "Lovely weather")
    eventually(
        lambda: view_of(lane, before) == (f"Before the {mode}", [("Lovely weather", "approved")]),
        what="query sees phase one",
    )
    baseline = catch_up(lane)
    assert baseline["watermark_after"] == baseline["head"]

    # WHEN query goes down as an operator would take it down
    if mode in ("pause", "purge"):
        consumers.pause(QUERY)
        assert consumers.is_paused(QUERY)
    if mode == "purge":
        client("sqs").purge_queue(QueueUrl=resources.queues["query"])
    if mode == "unsubscribe":
        arn = deployed.subscription(client, resources, "query")
        assert arn is not None
        client("sns").unsubscribe(SubscriptionArn=arn)
    # AND a post with a rejected comment is written and fully published meanwhile
    during, _ = write_phase(lane, f"During the {mode}", "Peel an orange")
    assert view_of(lane, during) is None, "query should have missed it"

    # AND query comes back: subscription restored, catch-up invoked, mapping enabled
    assert deployed.resubscribe(client, resources, "query") == (mode == "unsubscribe")
    report = catch_up(lane)
    if consumers.is_paused(QUERY):
        consumers.resume(QUERY)

    # THEN catch-up recovered exactly what query missed, from the archive
    assert report["recovered"] == QUERY_EVENTS_PER_PHASE
    assert report["behind"] == EVENTS_PER_PHASE
    assert report["ignored"] == 1  # the CommentModerated event: not a view event
    assert report["watermark_after"] == report["head"]
    assert report["holes_skipped"] == report["holes_pending"] == 0
    # AND the view shows both phases, and stays so once the queue has drained
    assert view_of(lane, during) == (f"During the {mode}", [(None, "rejected")])
    eventually(lambda: lane.queue_depth(resources.queues["query"]) == 0, what="queue drained")
    assert view_of(lane, before) == (f"Before the {mode}", [("Lovely weather", "approved")])
    assert view_of(lane, during) == (f"During the {mode}", [(None, "rejected")])
    # AND query is subscribed and its mapping enabled
    assert deployed.subscription(client, resources, "query") is not None
    assert not consumers.is_paused(QUERY)


def test_a_poison_message_ends_in_the_dlq_and_its_batch_is_processed(lane: Lane) -> None:
    sqs, queue = lane.client("sqs"), lane.resources.queues["query"]
    dlq = lane.resources.dead_letter_queues["query"]
    # GIVEN a paused query consumer with a good message and a poison message in its queue
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": SHORT_VISIBILITY})
    assert lane.queue_depth(dlq) == 0, "nothing else was dead-lettered"
    lane.consumers.pause(QUERY)
    try:
        post_id, _ = write_phase(lane, "Behind a poison message", "fine")
        poison = sqs.send_message(QueueUrl=queue, MessageBody='{"type": "PostCreated"}')
    finally:
        # WHEN the consumer runs again
        lane.consumers.resume(QUERY)

    # THEN the good messages of the batch were processed
    eventually(
        lambda: view_of(lane, post_id) == ("Behind a poison message", [("fine", "approved")]),
        what="the good messages applied",
    )
    # AND the poison message ends in the dead-letter queue, after the configured receives
    dead = eventually(
        lambda: sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages"),
        timeout=180,
        what="the poison message in the DLQ",
    )
    assert [m["MessageId"] for m in dead] == [poison["MessageId"]], [
        (m["Body"][:200], m["Attributes"]) for m in dead
    ]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 5  # maxReceiveCount
    eventually(lambda: lane.queue_depth(queue) == 0, what="the queue empty")
    assert names.dead_letter_queue(lane.resources.prefix, "query") in dlq
