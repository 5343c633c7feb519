"""The public API on the `make dev` stack, against its own OpenAPI document (docs/api.md).

``GET /openapi.json`` is loaded by schemathesis, which runs every phase (examples, coverage,
fuzzing: positive and negative data) on each operation and then the stateful phase (create a
post, then read it and comment on it, following the document's links), with all of its
default checks, response schema conformance among them. Then the issue's checks, each on the
same stack: no rejected text in any answer, no write but JSON, no CORS for an unknown origin,
idempotent retries, 304 for an ETag, a bounded comment answer.

Examples are few (``API_EXAMPLES``, 10 by default, fixed seed) so the module stays quick; set
``API_EXAMPLES`` higher for a longer, random run.
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import Status, events

from functions import contract, idempotency, names
from functions.query.cursor import Cursor
from tests.e2e.conftest import LocalStack

EXAMPLES = int(os.environ.get("API_EXAMPLES", "10"))
LOCAL_PREFIX = "blog-local"
WAIT_SECONDS = 120
"""The longest wait for the stack's pipeline (moderation, the view) to catch up."""

# A cursor is opaque: the document says so with a format of its own, and here it is drawn as
# the API makes them (any post id, existing or not), since a random string is no cursor.
schemathesis.openapi.format(
    "posts-cursor",
    st.from_regex(r"\A[0-9A-Za-z_-]{1,64}\Z").map(lambda i: Cursor.after_post(i).encode()),
)


def wait_for(condition: Any, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (the pipeline is asynchronous)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen in {WAIT_SECONDS} s"
        time.sleep(0.1)
    return result


def test_schemathesis_finds_nothing_in_any_phase(local_stack: LocalStack) -> None:
    """Every phase schemathesis has (examples, coverage, fuzzing, stateful) with every default
    check (no 5xx, status codes, content types, headers and bodies as documented, positive
    data accepted, negative data refused, a created resource readable, ...)."""
    schema = schemathesis.openapi.from_url(f"{local_stack.url}/openapi.json")
    schema.config.update(base_url=local_stack.url)
    schema.config.generation.update(
        max_examples=EXAMPLES, deterministic="API_EXAMPLES" not in os.environ
    )
    # The methods API Gateway's REST APIs route (AWS documentation, "Set up a method using the
    # API Gateway console": GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY): TRACE and QUERY
    # never reach the deployed app, and `chalice local` answers them 501 itself.
    schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "patch"}

    def readable_once_projected(context: Any, case: Any, response: Any) -> None:
        # The view is eventually consistent: a created post is readable once projected. A
        # client that reads right after creating polls; so does this hook, before the
        # stateful phase follows the document's link from the creation to the read.
        created = response.status_code == 201 and case.path == "/posts"
        if created and case.method.upper() == "POST":
            url = f"{local_stack.url}/posts/{response.json()['id']}"
            wait_for(lambda: requests.get(url, timeout=30).status_code == 200, url)

    schema.hooks.register_hook_with_name(readable_once_projected, "after_call")
    problems: list[str] = []
    phases: dict[str, str] = {}
    followed: list[int] = []  # statuses of reads of a post the step before created
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.phase.value == "stateful":
            followed += reads_after_creation(event.recorder)
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.value
        if isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.info.format()}")
        if isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
        if isinstance(event, events.ScenarioFinished) and event.status != Status.SUCCESS:
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        problems.append(
                            f"{check.name}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
    assert not problems, "\n\n".join(problems)
    assert set(phases) >= {"examples", "coverage", "fuzzing", "stateful"}, phases
    # AND the stateful phase did create posts and read them back through the document's link
    assert 200 in followed, followed


def reads_after_creation(recorder: Any) -> list[int]:
    """The statuses of ``GET /posts/{post_id}`` steps whose parent step created that post."""
    statuses = []
    for case_id, node in recorder.cases.items():
        parent = recorder.cases.get(node.parent_id) if node.parent_id else None
        if parent is None or node.value.method.upper() != "GET" or parent.value.path != "/posts":
            continue
        if parent.value.method.upper() == "POST" and node.value.path == "/posts/{post_id}":
            response = recorder.find_response(case_id=case_id)
            if response is not None:
                statuses.append(response.status_code)
    return statuses


# ---- the checks, on the same stack -----------------------------------------------


def call(
    stack: LocalStack,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    all_headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(  # noqa: S310 (loopback)
        stack.url + path, data=data, method=method, headers=all_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def dynamodb(local_stack: LocalStack) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{local_stack.aws_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def count(dynamodb: Any, table: str) -> int:
    name = names.resource(LOCAL_PREFIX, table)
    return int(dynamodb.scan(TableName=name, Select="COUNT", ConsistentRead=True)["Count"])


def holding(dynamodb: Any, table: str, text: str) -> int:
    """How many items of ``table`` hold ``text`` anywhere."""
    name = names.resource(LOCAL_PREFIX, table)
    pages = dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
    return sum(text in json.dumps(item) for page in pages for item in page["Items"])


@pytest.fixture(scope="module")
def post(local_stack: LocalStack) -> str:
    status, _, body = call(local_stack, "POST", "/posts", {"title": "the contract's post"})
    assert status == 201
    post_id = str(json.loads(body)["id"])
    wait_for(lambda: call(local_stack, "GET", f"/posts/{post_id}")[0] == 200, "the post's view")
    return post_id


def test_the_text_of_a_rejected_comment_appears_in_no_answer(
    local_stack: LocalStack, post: str
) -> None:
    status, _, created = call(
        local_stack, "POST", f"/posts/{post}/comments", {"content": "An ORANGE!"}
    )
    assert status == 201
    comment_id = next(c["id"] for c in json.loads(created) if c.get("content") == "An ORANGE!")

    def rejected() -> bool:
        shown = json.loads(call(local_stack, "GET", f"/posts/{post}")[2])
        return any(c == {"id": comment_id, "status": "rejected"} for c in shown["comments"])

    wait_for(rejected, "the comment's rejection")
    answers = [
        call(local_stack, "GET", "/posts")[2],
        call(local_stack, "GET", "/posts?limit=1")[2],
        call(local_stack, "GET", f"/posts/{post}")[2],
        call(local_stack, "POST", f"/posts/{post}/comments", {"content": "next"})[2],
    ]
    for answer in answers:
        assert b"ORANGE" not in answer.upper()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"],
)
def test_a_post_not_sent_as_json_gets_a_4xx_and_writes_nothing(
    local_stack: LocalStack, dynamodb: Any, content_type: str
) -> None:
    # The outbox is shared: consumers may still be writing the events of earlier tests'
    # comments into it, so "nothing written" is checked by this request's own text.
    marker = f"sneaky-{uuid.uuid4().hex}"
    posts = count(dynamodb, names.POSTS_TABLE)
    for body in (json.dumps({"title": marker}).encode(), f"title={marker}".encode()):
        status, _, answer = call(
            local_stack, "POST", "/posts", body, headers={"Content-Type": content_type}
        )
        assert status == 415
        assert json.loads(answer)["error"]["code"] == "unsupported_media_type"
    assert count(dynamodb, names.POSTS_TABLE) == posts
    assert [holding(dynamodb, t, marker) for t in (names.POSTS_TABLE, names.OUTBOX_TABLE)] == [
        0,
        0,
    ]


def test_an_unknown_origin_gets_no_cors_header(local_stack: LocalStack, post: str) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = origin | {"Access-Control-Request-Method": "POST"}
    answers = [
        call(local_stack, "GET", "/posts", headers=origin),
        call(local_stack, "GET", f"/posts/{post}", headers=origin),
        call(local_stack, "POST", "/posts", {"title": "from elsewhere"}, headers=origin),
        call(local_stack, "OPTIONS", "/posts", headers=preflight),
        call(local_stack, "OPTIONS", f"/posts/{post}/comments", headers=preflight),
        call(local_stack, "GET", "/openapi.json", headers=origin),
    ]
    for status, headers, _ in answers:
        assert status < 400
        assert not any(h.lower().startswith("access-control-") for h in headers), headers


def test_two_posts_with_one_key_create_one_post_and_another_body_is_refused(
    local_stack: LocalStack, dynamodb: Any
) -> None:
    key = {idempotency.HEADER: str(uuid.uuid4())}
    before = count(dynamodb, names.POSTS_TABLE)
    first = call(local_stack, "POST", "/posts", {"title": "exactly once"}, headers=key)
    second = call(local_stack, "POST", "/posts", {"title": "exactly once"}, headers=key)
    assert first[0] == second[0] == 201
    assert json.loads(first[2]) == json.loads(second[2])
    assert count(dynamodb, names.POSTS_TABLE) == before + 1
    refused = call(local_stack, "POST", "/posts", {"title": "something else"}, headers=key)
    assert refused[0] == 409
    assert json.loads(refused[2])["error"]["code"] == "idempotency_key_reused"
    assert count(dynamodb, names.POSTS_TABLE) == before + 1


def test_the_posts_answer_304_to_their_own_etag(local_stack: LocalStack, post: str) -> None:
    # Earlier writes to this stack may still be reaching the view: a 200 to an old tag is right
    # only if the view changed, and then its new tag is asked again, until the view is quiet.
    for path in ("/posts", f"/posts/{post}"):
        status, headers, _ = call(local_stack, "GET", path)
        assert status == 200
        deadline = time.monotonic() + 120
        while True:
            again = call(local_stack, "GET", path, headers={"If-None-Match": headers["ETag"]})
            if again[0] == 304:
                assert again[2] == b""
                break
            assert again[0] == 200
            assert again[1]["ETag"] != headers["ETag"], "the same view, answered in full"
            assert time.monotonic() < deadline, "the view never stopped changing"
            headers = again[1]


def test_after_205_comments_an_answer_holds_at_most_200(local_stack: LocalStack) -> None:
    status, _, body = call(local_stack, "POST", "/posts", {"title": "a busy post"})
    post_id = json.loads(body)["id"]
    for index in range(205):
        status, _, answer = call(
            local_stack, "POST", f"/posts/{post_id}/comments", {"content": f"comment {index}"}
        )
        assert status == 201
    comments = json.loads(answer)
    assert len(comments) == contract.MAX_ANSWER_COMMENTS
    assert comments[-1]["content"] == "comment 204"


def test_the_document_covers_the_posts_and_their_comments(local_stack: LocalStack) -> None:
    status, _, body = call(local_stack, "GET", "/openapi.json")
    document = json.loads(body)
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert {"/posts", "/posts/{post_id}", "/posts/{post_id}/comments"} <= set(document["paths"])
