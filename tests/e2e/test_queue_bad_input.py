"""Bad input on the queue side. Every consumer, every kind of bad message.

Each consumer is paused while its queue fills with the good messages of a real scenario and,
behind them, one message of each bad kind: malformed JSON, a wrong schema version, an unknown
event type, an event type the consumer does not handle, missing fields, two oversized messages
(just under SQS's 256 KiB: one padded with a field no event has and missing its data, one
whose text field is that long) and a bad archive-position attribute. (A field no event has is
not bad by itself: events are read tolerantly, so a newer producer's added field is ignored.)
All of them arrive in one batch. Then:

- the good messages of that batch are processed by that one invocation;
- every bad message ends in the consumer's DLQ (exactly those, after the queue's
  ``maxReceiveCount`` receives), and its queue is empty;
- each receive of a bad message logs one line, at error level, naming its message id and the
  reason, and the reason names the problem; the good messages log no error.

An oversized message that *is* a well-formed event (a 200 KB title or comment) is bad too: the
event contracts bound every text field as the HTTP commands do, so it ends in the DLQ.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.runner import EventSourceRunner
from functions import aws, names
from functions.commands import MAX_CONTENT, MAX_TITLE
from tests.conftest import Api
from tests.e2e.conftest import Records
from tests.e2e.test_poison_messages import MAX_RECEIVE_COUNT
from tests.helpers import PREFIX, queue_depth, queue_url, receive_all, scan

SQS_MAX_BODY = 256 * 1024
SQS_MAX_BATCH = 10
TEXT_FIELD = {"PostCreated": "title", "CommentCreated": "content", "CommentModerated": "content"}
HANDLED = {"moderation": "CommentCreated", "comments": "CommentModerated", "query": "PostCreated"}
NOT_HANDLED = {
    "moderation": "PostCreated",
    "comments": "CommentCreated",
    "query": "CommentModerated",
}


def valid_event(event_type: str, **changes: Any) -> dict[str, Any]:
    """A well-formed event of ``event_type`` about nothing that exists."""
    data: dict[str, Any] = (
        {"id": "p-bad", "title": "never shown"}
        if event_type == "PostCreated"
        else {
            "id": "c-bad",
            "postId": "p-bad",
            "content": "never shown",
            "status": "pending" if event_type == "CommentCreated" else "approved",
            "commentVersion": 1,
        }
    )
    event = {
        "event_id": f"bad-{event_type}",
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "aggregate_id": data["id"],
        "data": data,
    }
    return {**event, **changes}


def oversized(event: dict[str, Any]) -> str:
    """``event`` with a padding field, as a body just under SQS's 256 KiB limit."""
    body = json.dumps({**event, "padding": ""})
    padded = json.dumps({**event, "padding": "x" * (SQS_MAX_BODY - 64 - len(body))})
    assert SQS_MAX_BODY - 100 < len(padded.encode()) < SQS_MAX_BODY
    return padded


def oversized_text(event: dict[str, Any]) -> str:
    """``event`` with its text field (title or content) just under SQS's 256 KiB limit."""
    field = TEXT_FIELD[event["type"]]
    size = SQS_MAX_BODY - 64 - len(json.dumps(event))
    padded = json.dumps({**event, "data": {**event["data"], field: "x" * size}})
    assert SQS_MAX_BODY - 100 < len(padded.encode()) < SQS_MAX_BODY
    return padded


@dataclass(frozen=True)
class Bad:
    kind: str
    body: str
    reason: str
    """What the logged reason must say."""
    attributes: dict[str, Any] | None = None


def bad_messages(consumer: str) -> list[Bad]:
    handled, other = HANDLED[consumer], NOT_HANDLED[consumer]
    return [
        Bad("malformed_json", '{"type": "PostCreated", "version": 1,', "Invalid JSON"),
        Bad(
            "wrong_schema_version",
            json.dumps(valid_event(handled, version=99)),
            "version 99 is newer than this code reads",
        ),
        Bad(
            "unknown_event_type",
            json.dumps(valid_event(handled, type="PostDeleted")),
            "'PostDeleted' found using 'type' does not match any of the expected tags",
        ),
        Bad(
            "event_type_not_handled",
            json.dumps(valid_event(other)),
            f"unexpected event type '{other}'",
        ),
        Bad(
            "missing_fields",
            json.dumps({"type": handled, "version": 1}),
            f"{handled}.aggregate_id: Field required; {handled}.data: Field required",
        ),
        Bad(
            "oversized",
            oversized({k: v for k, v in valid_event(handled).items() if k != "data"}),
            f"{handled}.data: Field required",
        ),
        Bad(
            "oversized_text_field",
            oversized_text(valid_event(handled)),
            f"{handled}.data.{TEXT_FIELD[handled]}: String should have at most "
            f"{MAX_TITLE if handled == 'PostCreated' else MAX_CONTENT} characters",
        ),
        Bad(
            "bad_position_attribute",
            json.dumps(valid_event(handled)),
            f"{names.POSITION_ATTRIBUTE} is not a position: 'soon'",
            {names.POSITION_ATTRIBUTE: {"DataType": "Number", "StringValue": "soon"}},
        ),
    ]


def send(consumer: str, bad: Bad) -> str:
    extra = {"MessageAttributes": bad.attributes} if bad.attributes else {}
    response = aws.client("sqs").send_message(
        QueueUrl=queue_url(names.queue(PREFIX, consumer)), MessageBody=bad.body, **extra
    )
    return str(response["MessageId"])


COMMENTS = (("Peel an orange", "rejected"), ("Lovely weather", "approved"))


def scenario(api: Api, runner: EventSourceRunner, consumer: str) -> tuple[str, dict[str, str]]:
    """A post with a rejected and an approved comment, run with ``consumer`` paused.

    A batch holds ten messages, eight of them bad, so query gets two good ones: the post and
    one comment, held pending (moderation stays paused).
    Returns the post's id and each comment's id with its expected status.
    """
    runner.pause(f"{consumer}_consumer")
    if consumer == "query":
        runner.pause("moderation_consumer")
    _, post = api.post("/posts", {"title": "good"})
    expected = {}
    for content, status in COMMENTS[: 1 if consumer == "query" else 2]:
        _, comments = api.post(f"/posts/{post['id']}/comments", {"content": content})
        expected[comments[-1]["id"]] = "pending" if consumer == "query" else status
    runner.drain()
    return str(post["id"]), expected


def statuses(api: Api, post_id: str) -> dict[str, str]:
    status, post = api.get(f"/posts/{post_id}")
    return {c["id"]: c["status"] for c in post["comments"]} if status == 200 else {}


def the_good_messages_were_processed(
    consumer: str, api: Api, post_id: str, expected: dict[str, str]
) -> bool:
    """What one invocation of ``consumer`` on the good messages leaves behind."""
    if consumer == "moderation":
        decisions = {d["comment_id"]: d["verdict"] for d in scan(names.MODERATION_TABLE)}
        return decisions == expected
    if consumer == "comments":
        stored = {c["comment_id"]: c["status"] for c in scan(names.COMMENTS_TABLE)}
        return stored == expected
    return statuses(api, post_id) == expected


@pytest.mark.parametrize("consumer", names.CONSUMERS)
def test_every_kind_of_bad_message_goes_to_the_dlq_and_the_batch_is_processed(
    api: Api, runner: EventSourceRunner, service_logs: Records, consumer: str
) -> None:
    # GIVEN the consumer paused behind the good messages of a real scenario
    post_id, expected = scenario(api, runner, consumer)
    queue = names.queue(PREFIX, consumer)
    good = queue_depth(queue)
    assert good >= 2
    # AND one message of each bad kind behind them, all within one batch
    bad = {send(consumer, message): message for message in bad_messages(consumer)}
    assert good + len(bad) <= SQS_MAX_BATCH

    # WHEN the consumer receives its batch, once
    source = runner.sources[f"{consumer}_consumer"]
    assert source.poll() == good + len(bad), "everything arrived in one batch"
    # THEN that one invocation processed the good messages of the batch
    assert the_good_messages_were_processed(consumer, api, post_id, expected)

    # WHEN it runs until its queue is empty (the bad messages come back, and go)
    runner.resume(source.name)
    runner.drain()
    # THEN exactly the bad messages are in its DLQ, and nothing is left in its queue
    dead = receive_all(names.dead_letter_queue(PREFIX, consumer))
    assert sorted(m["MessageId"] for m in dead) == sorted(bad)
    assert queue_depth(queue) == 0
    # AND every receive of a bad message logged its message id and the reason
    for message_id, message in bad.items():
        lines = [r for r in service_logs.records if getattr(r, "message_id", None) == message_id]
        assert len(lines) == MAX_RECEIVE_COUNT, message.kind
        for line in lines:
            assert line.levelno == logging.ERROR
            assert line.getMessage() == "poison message"
            assert message.reason in getattr(line, "reason", ""), (message.kind, line.__dict__)
    failed = {getattr(r, "message_id", None) for r in service_logs.records}
    assert failed == set(bad), "no good message logged an error"
    # AND the pipeline went on: the view shows every comment with its verdict
    assert statuses(api, post_id) == expected
    for other in names.CONSUMERS:
        if other != consumer:
            assert receive_all(names.dead_letter_queue(PREFIX, other)) == []


def test_the_log_line_is_one_json_object_with_the_message_id_and_the_reason(
    api: Api, runner: EventSourceRunner, service_logs: Records
) -> None:
    """What an operator greps for: the line as the service's own (Powertools) handler writes it."""
    runner.pause("query_consumer")
    message_id = send("query", bad_messages("query")[0])
    runner.sources["query_consumer"].poll()
    [record] = [r for r in service_logs.records if getattr(r, "message_id", None) == message_id]
    [powertools] = [h for h in logging.getLogger("query").handlers if h is not service_logs]
    line = json.loads(powertools.format(record))
    assert (line["level"], line["message"], line["service"]) == ("ERROR", "poison message", "query")
    assert line["message_id"] == message_id
    assert "Invalid JSON" in line["reason"]
