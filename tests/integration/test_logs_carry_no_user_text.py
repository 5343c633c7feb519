"""Logs carry ids, positions and error locations, never a user's text: the handlers that log a
record they cannot read name where it is wrong, not what it says. Through the real handlers."""

import io
import json
import time
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from emulator import runner
from emulator.stack import Stack
from functions import archive, publisher, settings
from functions.events import parse_event
from functions.subscriptions import follower
from functions.validation import reason
from tests.integration.test_follower_edges import Recorder, tap

SECRET = "my bank PIN is 0000"


def logged_lines(monkeypatch: pytest.MonkeyPatch, logger: Any) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


def test_the_publisher_logs_an_unreadable_record_by_sequence_number_and_field(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stream record whose outbox image lacks a field, and carries a user's post
    image = {
        "event_id": {"S": "e1"},
        "event_type": {"S": "PostCreated"},
        "payload": {"S": json.dumps({"title": SECRET})},
        "created_at": {"S": "2026-01-01T00:00:00Z"},
    }
    event = {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
                "dynamodb": {
                    "ApproximateCreationDateTime": time.time(),
                    "NewImage": image,
                    "Keys": {},
                    "SequenceNumber": "42",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        ]
    }
    logged = logged_lines(monkeypatch, publisher.logger)
    # WHEN the publisher reads it
    response = runner.resolve_handler("functions.publisher.on_outbox_record")(event, None)
    # THEN it is a batch item failure, logged by its sequence number and the missing field only
    assert response == {"batchItemFailures": [{"itemIdentifier": "42"}]}
    [line] = [json.loads(x) for x in logged.getvalue().splitlines()]
    assert (line["message"], line["sequence_number"]) == ("unreadable outbox record", "42")
    assert line["reason"] == "sent: Field required"
    assert SECRET not in logged.getvalue()


def test_catch_up_logs_an_unreadable_archived_event_by_position_and_field(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an archived post whose title is not text, and holds a user's words
    config = settings.load()
    [position] = archive.allocate(config, 1)
    payload = {"type": "PostCreated", "aggregate_id": "p1", "data": {"id": "p1", "title": [SECRET]}}
    archive.record(
        config,
        [
            archive.ArchivedEvent(
                position=position,
                event_id="e1",
                event_type="PostCreated",
                payload=json.dumps(payload),
                archived_at=time.time(),
            )
        ],
    )
    logged = logged_lines(monkeypatch, follower.logger)
    # WHEN a consumer catches up
    report = follower.catch_up(config, tap(Recorder()))
    # THEN it is passed over and logged by its position and the field's path only
    assert report.unreadable == 1
    [line] = [json.loads(x) for x in logged.getvalue().splitlines()]
    assert (line["message"], line["position"]) == ("unreadable archived event", position)
    assert line["reason"].startswith("PostCreated.data.title")
    assert SECRET not in logged.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"type": "PostCreated", "aggregate_id": "p1", "data": {"title": SECRET}}),
        json.dumps({"type": "PostCreated", "aggregate_id": [SECRET], "data": {"id": "p1"}}),
    ],
)
def test_no_kind_of_validation_error_quotes_the_input(body: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_event(body)
    assert SECRET in str(raised.value) or SECRET in json.dumps(raised.value.errors())
    assert SECRET not in reason(raised.value)


class Checked(BaseModel):
    words: str

    @field_validator("words")
    @classmethod
    def refuse(cls, value: str) -> str:
        raise ValueError(f"refused {value!r}")


def test_a_validators_message_is_named_by_its_kind_only() -> None:
    with pytest.raises(ValidationError) as raised:
        Checked(words=SECRET)
    assert SECRET in raised.value.errors()[0]["msg"]
    assert reason(raised.value) == "words: value_error"
