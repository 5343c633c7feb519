"""The speed patches of emulator.moto_serving: each answers as moto does, at less cost."""

import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.backends import list_of_moto_modules
from moto.core import responses
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)

from emulator import moto_patches, moto_serving
from tests.integration.moto_helpers import counting, create_table, trim_horizon

LOOKUP = "method_names_from_class"  # moto.core.responses imports it, without exporting it
REQUEST_ID = "gen_amzn_requestid_long"  # the same
SERVING = ("dispatch-cache", "get-records")
"""The patches of ``emulator.moto_serving``, whatever ``BLOG_MOTO_SPEED_PATCHES`` says."""


# -- the dispatch and the action lookup -----------------------------------------------------


def test_moto_lists_its_package_for_every_dispatch_and_the_mend_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moto.backends

    # GIVEN moto's dispatcher, unmended
    listings = counting(monkeypatch, moto.backends, "list_of_moto_modules")
    dispatcher = DomainDispatcherApplication(create_backend_app)
    host = "dynamodb.us-east-1.amazonaws.com"
    # WHEN it finds the service of 5 requests to one host
    before = [dispatcher.get_backend_for_host(host) for _ in range(5)]
    # THEN it listed its package 5 times
    assert len(listings) == 5
    # AND mended, it lists it once for that host, and answers as before
    moto_patches.apply(*SERVING)
    try:
        listings.clear()
        after = [dispatcher.get_backend_for_host(host) for _ in range(5)]
        assert len(listings) == 1
        assert after == before == ["dynamodb"] * 5
        assert dispatcher.get_backend_for_host("sqs.us-east-1.amazonaws.com") == "sqs"
        assert len(listings) == 2
    finally:
        moto_patches.remove()
    assert "dynamodb" in list_of_moto_modules()


def test_action_lookup_is_computed_once_per_class_when_mended() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    original = getattr(responses, LOOKUP)
    moto_patches.apply(*SERVING)
    try:
        cached = getattr(responses, LOOKUP)
        assert cached is not original
        assert cached(DynamoHandler) == original(DynamoHandler)
        assert "put_item" in cached(DynamoHandler)
        assert cached(SQSResponse) == original(SQSResponse)
        assert cached(DynamoHandler) is cached(DynamoHandler)
    finally:
        moto_patches.remove()
    assert getattr(responses, LOOKUP) is original


# -- GetRecords -----------------------------------------------------------------------------


def stream_records(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], int]:
    """Every record of a table that saw each kind of attribute value, and serializer runs."""
    from moto.core.serialize import ResponseSerializer

    runs = counting(monkeypatch, ResponseSerializer, "serialize")
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    arn = create_table(dynamodb, "t")
    every_kind = {
        "pk": {"S": "a"},
        "n": {"N": "1.5"},
        "flag": {"BOOL": True},
        "none": {"NULL": True},
        "map": {"M": {"x": {"L": [{"S": "y"}, {"N": "2"}]}}},
        "strings": {"SS": ["p", "q"]},
        "numbers": {"NS": ["3", "4"]},
        "text": {"S": 'a "quoted" é and \\ backslash'},
    }
    dynamodb.put_item(TableName="t", Item=every_kind)
    dynamodb.update_item(
        TableName="t",
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    dynamodb.delete_item(TableName="t", Key={"pk": {"S": "a"}})
    iterator = trim_horizon(streams, arn)
    runs.clear()
    page = streams.get_records(ShardIterator=iterator, Limit=10)
    empty = streams.get_records(ShardIterator=page["NextShardIterator"])
    assert empty["Records"] == []
    return page["Records"], len(runs)


def test_get_records_are_written_directly_as_moto_would_serialize_them(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    # GIVEN the records of an insert, an update and a delete, as moto's serializer gives them
    with mock_aws():
        serialized, serializer_runs = stream_records(monkeypatch)
    # WHEN the same records are read with the mend
    moto_patches.apply(*SERVING)
    try:
        with mock_aws():
            direct, direct_runs = stream_records(monkeypatch)
    finally:
        moto_patches.remove()
    # THEN the client parses the same records (ids, numbers and sizes aside), and the generic
    # serializer never ran
    assert serializer_runs == 2
    assert direct_runs == 0

    def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "eventID"} for r in records]

    assert [r["eventName"] for r in direct] == ["INSERT", "MODIFY", "REMOVE"]
    times = [r["dynamodb"].pop("ApproximateCreationDateTime") for r in serialized + direct]
    assert all(t.tzinfo is not None for t in times)
    now = datetime.now(UTC)
    assert all(abs((now - t).total_seconds()) < 60 for t in times)  # seconds, not milliseconds
    for records in (serialized, direct):  # moto numbers records across tables and tests
        numbers = [int(r["dynamodb"].pop("SequenceNumber")) for r in records]
        assert numbers == sorted(set(numbers))
        assert all(r["dynamodb"].pop("SizeBytes") > 0 for r in records)  # counts the number
    assert comparable(direct) == comparable(serialized)


def test_get_records_write_binary_values_as_dynamodb_does(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    # GIVEN the mend, and an item with a binary value at the top and one in a map
    moto_patches.apply(*SERVING)
    try:
        with mock_aws():
            dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
            arn = create_table(dynamodb, "t")
            item = {"pk": {"S": "a"}, "blob": {"B": b"\x00\x01"}, "m": {"M": {"b": {"B": b"\x02"}}}}
            dynamodb.put_item(TableName="t", Item=item)
            iterator = trim_horizon(streams, arn)
            # WHEN the stream is read
            [record] = streams.get_records(ShardIterator=iterator)["Records"]
            stored = dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]
    finally:
        moto_patches.remove()
    # THEN the image holds the bytes written, as GetItem does
    assert record["dynamodb"]["NewImage"] == stored == item


# -- the request id ---------------------------------------------------------------------------


def test_request_id_is_drawn_in_one_call_from_motos_seedable_random(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.moto_api._internal import mock_random
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    # GIVEN moto's random, counted
    picks = counting(monkeypatch, mock_random, "choice")
    draws = counting(monkeypatch, mock_random, "choices")
    # WHEN moto makes a request id, and the mend makes two from the same seed
    theirs = gen_amzn_requestid_long()
    headers: dict[str, Any] = {}
    mock_random.seed(7)
    mine = moto_serving._request_id(headers)
    mock_random.seed(7)
    again = moto_serving._request_id()
    # THEN both are 52 letters and digits; moto picked 52 times, the mend drew once per id
    assert re.fullmatch("[A-Za-z0-9]{52}", theirs)
    assert re.fullmatch("[A-Za-z0-9]{52}", mine)
    assert (len(picks), len(draws)) == (52, 2)
    # AND the seed still decides the id, and the answer's headers carry it
    assert again == mine == headers["x-amzn-requestid"]
    # AND apply() puts it where moto's answers take their id from, and remove() puts back moto's
    moto_patches.apply(*SERVING)
    try:
        assert getattr(responses, REQUEST_ID) is moto_serving._request_id
    finally:
        moto_patches.remove()
    assert getattr(responses, REQUEST_ID) is gen_amzn_requestid_long
