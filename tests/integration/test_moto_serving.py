"""moto's server costs that are not AWS's, and emulator.moto_serving, which mends them.

Each test starts its own server on a free loopback port, in a thread, and resets moto's
backends when it stops.
"""

import contextlib
import http.client
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.backends import list_of_moto_modules
from moto.core import responses
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from emulator import moto_patches, moto_serving
from tests.integration.moto_helpers import counting, create_table, trim_horizon

AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LOOKUP = "method_names_from_class"  # moto.core.responses imports it, without exporting it
REQUEST_ID = "gen_amzn_requestid_long"  # the same
LIST_TABLES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": AUTH,
}


def _serve(server: BaseWSGIServer) -> Iterator[tuple[str, int]]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    assert isinstance(host, str)
    try:
        yield host, port
    finally:
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


SERVING = ("keep-alive", "flask-bypass", "dispatch-cache", "get-records")
"""The patches of ``emulator.moto_serving``, whatever ``BLOG_MOTO_SPEED_PATCHES`` says."""


@pytest.fixture
def werkzeug_server(aws_env: None) -> Iterator[tuple[str, int]]:
    """moto's own server (what ThreadedMotoServer builds)."""
    app = DomainDispatcherApplication(create_backend_app)
    yield from _serve(make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler))


@pytest.fixture
def mended_server(aws_env: None) -> Iterator[tuple[str, int]]:
    with moto_patches.applied(*SERVING):
        yield from _serve(moto_serving.server("127.0.0.1", 0))


def exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes, headers: Any
) -> tuple[http.client.HTTPResponse, bytes]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


# -- a connection per request ---------------------------------------------------------------


def test_moto_server_closes_the_connection_after_every_request(
    werkzeug_server: tuple[str, int],
) -> None:
    # GIVEN moto's own server and one HTTP/1.1 connection
    connection = http.client.HTTPConnection(*werkzeug_server, timeout=10)
    # WHEN a client makes an AWS call on it
    response, _ = exchange(connection, "POST", "/", b"{}", LIST_TABLES)
    # THEN the server closes it: the next call needs a new connection (and a new server thread)
    assert response.status == 200
    assert response.getheader("Connection") == "close"


def test_mended_server_keeps_one_connection_for_many_calls(
    mended_server: tuple[str, int],
) -> None:
    # GIVEN the mended server and one connection
    connection = http.client.HTTPConnection(*mended_server, timeout=10)
    put = {**LIST_TABLES, "X-Amz-Target": "DynamoDB_20120810.CreateTable"}
    table = {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    # WHEN calls with bodies and without follow each other on it
    created, created_body = exchange(connection, "POST", "/", json.dumps(table).encode(), put)
    socket_after_first = connection.sock
    listed, listed_body = exchange(connection, "POST", "/", b"{}", LIST_TABLES)
    # THEN every call is answered in full on the same socket, and the server keeps it open
    assert created.status == 200, created_body
    assert json.loads(created_body)["TableDescription"]["TableName"] == "t"
    assert listed.status == 200
    assert json.loads(listed_body) == {"TableNames": ["t"]}
    assert listed.getheader("Connection") == "keep-alive"
    assert connection.sock is socket_after_first is not None


def test_mended_server_closes_when_the_client_asks(mended_server: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*mended_server, timeout=10)
    response, _ = exchange(connection, "POST", "/", b"{}", {**LIST_TABLES, "Connection": "close"})
    assert response.status == 200
    assert response.getheader("Connection") == "close"


def test_mended_server_answers_a_head_with_the_length_and_no_body(
    mended_server: tuple[str, int],
) -> None:
    # GIVEN an object of 11 bytes in S3, served by the mended server
    s3 = boto3.client("s3", endpoint_url=f"http://{mended_server[0]}:{mended_server[1]}")
    s3.create_bucket(Bucket="heads")
    s3.put_object(Bucket="heads", Key="k", Body=b"hello world")
    # WHEN a client asks for its head, then for the object, on one connection
    head = s3.head_object(Bucket="heads", Key="k")
    got = s3.get_object(Bucket="heads", Key="k")["Body"].read()
    # THEN the head gives the object's length (not the empty body's) and the next call works
    assert head["ContentLength"] == 11
    assert got == b"hello world"


def test_mended_server_takes_a_body_sent_after_100_continue(
    mended_server: tuple[str, int],
) -> None:
    # GIVEN a client that waits for "100 Continue" before it sends the body
    connection = http.client.HTTPConnection(*mended_server, timeout=10)
    connection.putrequest("POST", "/")
    for name, value in {**LIST_TABLES, "Expect": "100-continue", "Content-Length": "2"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    # WHEN the server says continue and the body follows
    interim = b""
    while len(interim) < len(CONTINUE):  # a recv may return part of it
        interim += connection.sock.recv(len(CONTINUE) - len(interim))
    connection.send(b"{}")
    response = connection.getresponse()
    # THEN the call is answered
    assert interim == CONTINUE
    assert response.status == 200
    assert json.loads(response.read()) == {"TableNames": []}


def test_mended_server_answers_500_and_closes_when_the_application_fails(
    mended_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, environ: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(DomainDispatcherApplication, "get_application", broken)
    connection = http.client.HTTPConnection(*mended_server, timeout=10)
    response, body = exchange(connection, "POST", "/", b"{}", LIST_TABLES)
    assert response.status == 500
    assert body == b"Internal Server Error"
    assert response.getheader("Connection") == "close"


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


# -- Flask, the headers, the request id -------------------------------------------------------

EPOCH = re.compile(rb"1[0-9]{9}(\.[0-9]+)?")  # a time in epoch seconds, in a body
ISO_TIME = re.compile(rb"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?")


def answers_of_a_story(url: str) -> list[tuple[str, int, list[tuple[str, str]], bytes]]:
    """Every answer moto gives to a story of DynamoDB, Streams, SQS and SNS calls, raw."""
    seen: list[tuple[str, int, list[tuple[str, str]], bytes]] = []
    requests.post(f"{url}/moto-api/seed?a=42", timeout=10)  # the same ids in every run

    def record(http_response: Any, model: Any, **_: Any) -> None:
        body = ISO_TIME.sub(b"T", EPOCH.sub(b"T", http_response.content))
        headers = [(k, v) for k, v in http_response.raw.headers.items() if k not in BODY_SUMS]
        seen.append((model.name, http_response.status_code, headers, body))

    config = Config(retries={"max_attempts": 1})
    clients = [boto3.client(s, endpoint_url=url, config=config) for s in SERVICES]
    for client in clients:
        client.meta.events.register("after-call", record)
    dynamodb, streams, sqs, sns = clients
    for call in story_calls(dynamodb, streams, sqs, sns):
        with contextlib.suppress(ClientError):  # its answer is recorded all the same
            call()
    for target, body in [("DynamoDB_20120810.GetItem", b"{"), ("DynamoDB_20120810.Nope", b"{}")]:
        headers = {**LIST_TABLES, "X-Amz-Target": target}
        raw = requests.post(url, data=body, headers=headers, timeout=10)
        seen.append((target, raw.status_code, list(raw.headers.items()), raw.content))
    dashboard = requests.post(f"{url}/moto-api/", timeout=10)  # a Flask template
    seen.append(("dashboard", dashboard.status_code, [], dashboard.content[:100]))
    return seen


SERVICES = ("dynamodb", "dynamodbstreams", "sqs", "sns")
BODY_SUMS = ("x-amz-crc32", "Content-Length")  # of the body, whose times differ between runs


def story_calls(dynamodb: Any, streams: Any, sqs: Any, sns: Any) -> list[Callable[[], Any]]:
    key = {"pk": {"S": "a"}}
    queue = "http://127.0.0.1/123456789012/q"
    topic = "arn:aws:sns:us-east-1:123456789012:tp"
    cancelled = [
        {"Put": {"TableName": "t", "Item": key, "ConditionExpression": "attribute_not_exists(pk)"}}
    ]
    return [
        lambda: create_table(dynamodb, "t"),
        lambda: dynamodb.put_item(
            TableName="t", Item={**key, "n": {"N": "1"}, "b": {"B": b"\x00"}}
        ),
        lambda: dynamodb.get_item(TableName="t", Key=key),
        lambda: dynamodb.query(
            TableName="t",
            KeyConditionExpression="pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
        ),
        lambda: dynamodb.put_item(
            TableName="t", Item=key, ConditionExpression="attribute_not_exists(pk)"
        ),
        lambda: dynamodb.transact_write_items(TransactItems=cancelled),
        lambda: dynamodb.get_item(TableName="missing", Key=key),
        lambda: streams.list_streams(),
        lambda: sqs.create_queue(QueueName="q"),
        lambda: sqs.send_message(QueueUrl=queue, MessageBody="hello"),
        lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10),
        lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle"),
        lambda: sqs.get_queue_url(QueueName="missing"),
        lambda: sns.create_topic(Name="tp"),
        lambda: sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:q"
        ),
        lambda: sns.publish(TopicArn=topic, Message="m"),
        lambda: sns.publish(TopicArn=topic + "-missing", Message="m"),
        lambda: sns.list_topics(),
    ]


def test_direct_answers_are_flasks_answers(
    mended_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://{mended_server[0]}:{mended_server[1]}"
    # GIVEN a story of calls answered through Flask, as moto's server answers them
    with monkeypatch.context() as through_flask:
        through_flask.setattr(moto_serving, "_direct_view", lambda app, environ: None)
        flask = answers_of_a_story(url)
    requests.post(f"{url}/moto-api/reset", timeout=10)
    # WHEN the same story is answered by the mended server
    views: list[Any] = []
    find = moto_serving._direct_view

    def found(*args: Any) -> Any:
        views.append(find(*args))
        return views[-1]

    monkeypatch.setattr(moto_serving, "_direct_view", found)
    direct = answers_of_a_story(url)
    # THEN every AWS call was answered directly, moto's own API through Flask
    assert [view is not None for view in views] == [False] + [True] * (len(direct) - 1) + [False]
    # AND with the same status, headers and body, in order
    assert [a[:2] for a in direct] == [a[:2] for a in flask]
    assert direct == flask
    assert {a[1] for a in direct} == {200, 400, 404, 500}  # successes, errors, a failure
    assert direct[-1][1] == 200


HEAD = "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-amz-json-1.0\r\n"
REQUESTS = [
    HEAD + "\r\n",  # what botocore sends
    HEAD + "X-Amz-Target: DynamoDB_20120810.ListTables\r\nx-amz-target: twice\r\n\r\n",
    HEAD + "Empty:\r\nSpaces:  padded value  \r\nTab:\tv\r\nBare-LF: v\n\r\n",
    HEAD + "Connection: close\r\n\r\n",
    HEAD + "Connection: Keep-Alive\r\n\r\n",
    HEAD + "Expect: 100-continue\r\n\r\n",
    HEAD + "Folded: a\r\n  b\r\n\r\n",  # an obsolete continuation line
    HEAD + "No colon here\r\n\r\n",
    HEAD + "Bad Name: v\r\n\r\n",
    HEAD + "From nobody\r\n\r\n",
    HEAD + "Latin: caf\xe9\r\n\r\n",
    HEAD + "".join(f"H{i}: v\r\n" for i in range(101)) + "\r\n",  # too many
    HEAD + "Long: " + "x" * 70000 + "\r\n\r\n",
    "POST / HTTP/1.0\r\nHost: h\r\n\r\n",
    "POST //twice HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /\r\n\r\n",
    "POST / HTTP/2.0\r\n\r\n",
    "POST / HTTP/1.1 extra\r\n\r\n",
    "POST / HTTP/1.1",  # the connection ends in the headers
]


def parsed(parse: Callable[[Any], bool], raw: str) -> tuple[Any, ...]:
    """What a parse of ``raw`` leaves on a handler: the request, the headers, what it wrote."""
    handler = moto_serving.KeepAliveHandler.__new__(moto_serving.KeepAliveHandler)
    handler.rfile, handler.wfile = io.BytesIO(raw.encode("latin-1")), io.BytesIO()
    handler.client_address = ("127.0.0.1", 1)
    handler.raw_requestline = handler.rfile.readline(65537)  # type: ignore[attr-defined]
    handler.requestline, handler.request_version, handler.command = "", "", ""
    ok = parse(handler)
    headers = getattr(handler, "headers", None)
    written = re.sub(rb"Date: [^\r]*", b"Date: -", handler.wfile.getvalue())
    state = (handler.command, handler.path if ok else None, handler.request_version)
    items = None if headers is None else headers.items()
    return ok, state, handler.close_connection, items, written


@pytest.mark.parametrize("raw", REQUESTS, ids=range(len(REQUESTS)))
def test_mended_parse_of_a_request_is_http_servers(raw: str) -> None:
    # GIVEN a request as it arrives, plain or not
    # WHEN the mended handler parses it, and http.server's own parse does
    mine = parsed(moto_serving.KeepAliveHandler.parse_request, raw)
    theirs = parsed(BaseHTTPRequestHandler.parse_request, raw)
    # THEN both leave the same request, headers, connection state and written answer
    assert mine == theirs


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


def test_the_direct_path_runs_flask_cors_where_moto_installed_it_and_no_unknown_hook(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.moto_server import werkzeug_app

    # GIVEN DynamoDB's Flask app as moto builds it: with flask-cors, then without, then hooked
    with_cors = create_backend_app("dynamodb")
    monkeypatch.setattr(werkzeug_app, "DISABLE_GLOBAL_CORS", True)
    without_cors = create_backend_app("dynamodb")
    hooked = create_backend_app("dynamodb")
    hooked.before_request(lambda: None)
    # WHEN the direct path looks for the view of a POST to /
    # THEN it adds the CORS header only where flask-cors runs, and leaves a hooked app to Flask
    cors = moto_serving._view(with_cors, "/")
    no_cors = moto_serving._view(without_cors, "/")
    assert cors is not None
    assert no_cors is not None
    assert (cors[1], no_cors[1]) == (True, False)
    assert moto_serving._view(hooked, "/") is None
