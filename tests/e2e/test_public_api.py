"""The public API's contract (docs/api.md) through every hop on moto: what it serves, what it
refuses, retries with an ``Idempotency-Key``, ETags, CORS preflights and the OpenAPI document.
"""

import json
import time
from typing import Any

import pytest
from chalice.app import Request

from emulator.runner import EventSourceRunner
from functions import aws, contract, idempotency, names, openapi
from functions.http import CORS_ALLOW_HEADERS, json_with_etag
from tests.conftest import Api
from tests.e2e.test_seed_scenario import ALLOWED, run_seed_scenario
from tests.faults import failing, transaction_conflict
from tests.helpers import PREFIX, scan

JSON = {"Content-Type": "application/json"}


def send(api: Api, path: str, body: Any, key: str | None = None, **headers: str) -> tuple[int, Any]:
    extra = {} if key is None else {idempotency.HEADER: key}
    response = api.client.http.post(
        path, headers=JSON | extra | headers, body=json.dumps(body).encode()
    )
    return response.status_code, json.loads(response.body)


def written() -> dict[str, int]:
    return {
        table: len(scan(table))
        for table in (names.POSTS_TABLE, names.COMMENTS_TABLE, names.OUTBOX_TABLE)
    }


# ---- moderation: the text of a comment that is not approved is never served ---------------


def test_the_text_of_a_rejected_comment_appears_in_no_answer(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN the seed scenario: a comment with the banned word, rejected
    post_id, _, rejected_id = run_seed_scenario(api, runner)
    # WHEN anyone reads the post, the list, or answers of later comments
    answers = [
        api.client.http.get("/posts").body,
        api.client.http.get(f"/posts/{post_id}").body,
        api.client.http.post(
            f"/posts/{post_id}/comments", headers=JSON, body=b'{"content": "later"}'
        ).body,
    ]
    # THEN the rejected comment is listed with its status, and its text is in none of them
    for body in answers:
        assert b"ORANGE" not in body.upper()
        assert rejected_id.encode() in body
    # (the text is still stored: it is the server's to keep)
    assert "I love ORANGE." in {c["content"] for c in scan(names.COMMENTS_TABLE)}


def test_pending_text_is_served_only_to_its_author_in_the_answer(
    api: Api, runner: EventSourceRunner
) -> None:
    _, post = api.post("/posts", {"title": "t"})
    runner.drain()
    runner.pause("moderation_consumer")  # comments stay pending
    _, mine = api.post(f"/posts/{post['id']}/comments", {"content": "my own words"})
    runner.drain()
    assert mine == [{"id": mine[0]["id"], "status": "pending", "content": "my own words"}]
    status, shown = api.get(f"/posts/{post['id']}")
    assert status == 200
    assert shown["comments"] == [{"id": mine[0]["id"], "status": "pending"}]
    _, theirs = api.post(f"/posts/{post['id']}/comments", {"content": "someone else"})
    assert theirs[0] == {"id": mine[0]["id"], "status": "pending"}


# ---- bounded answers --------------------------------------------------------------------


def test_after_205_comments_a_comment_answer_holds_the_newest_200(api: Api) -> None:
    _, post = api.post("/posts", {"title": "busy"})
    ids = []
    for index in range(205):
        status, answer = api.post(f"/posts/{post['id']}/comments", {"content": f"c{index}"})
        assert status == 201
        ids.append(next(c["id"] for c in answer if c.get("content") == f"c{index}"))
    assert len(answer) == contract.MAX_ANSWER_COMMENTS
    assert [c["id"] for c in answer] == ids[-contract.MAX_ANSWER_COMMENTS :]
    assert answer[-1] == {"id": ids[-1], "status": "pending", "content": "c204"}
    assert all("content" not in c for c in answer[:-1])  # pending, not this request's


# ---- Idempotency-Key ----------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_creates_one_post_and_one_event(
    api: Api, runner: EventSourceRunner
) -> None:
    # WHEN the same POST is sent three times with one key
    answers = [send(api, "/posts", {"title": "once"}, key="k-1") for _ in range(3)]
    runner.drain()
    # THEN every answer is the first: 201 and the same post
    assert answers[0][0] == 201
    assert answers == [answers[0]] * 3
    # AND one post, one outbox record, one event in the view
    assert [p["id"] for p in scan(names.POSTS_TABLE)] == [answers[0][1]["id"]]
    assert [r["event_type"] for r in scan(names.OUTBOX_TABLE)] == ["PostCreated"]
    assert list(api.get("/posts")[1]) == [answers[0][1]["id"]]
    # AND the same body with its keys in another order and other spacing is the same request
    raw = b'{ "title" :  "once" }'
    response = api.client.http.post("/posts", headers=JSON | {idempotency.HEADER: "k-1"}, body=raw)
    assert (response.status_code, json.loads(response.body)) == answers[0]


def test_the_same_key_with_another_request_is_a_409_and_writes_nothing(api: Api) -> None:
    status, post = send(api, "/posts", {"title": "first"}, key="k-2")
    assert status == 201
    before = written()
    for path, body in (
        ("/posts", {"title": "second"}),
        ("/posts", {"title": "first", "extra": 1}),
        (f"/posts/{post['id']}/comments", {"content": "first"}),
    ):
        status, error = send(api, path, body, key="k-2")
        assert status == 409, (path, body, error)
        assert error["error"]["code"] == "idempotency_key_reused"
    assert written() == before


def test_a_retried_comment_with_the_same_key_creates_one_comment(
    api: Api, runner: EventSourceRunner
) -> None:
    _, post = api.post("/posts", {"title": "t"})
    status, first = send(api, f"/posts/{post['id']}/comments", {"content": "once"}, key="c-1")
    assert status == 201
    runner.drain()  # moderated meanwhile
    status, again = send(api, f"/posts/{post['id']}/comments", {"content": "once"}, key="c-1")
    # THEN the retry answers the same created comment, as first answered, and wrote nothing
    assert status == 201
    assert again == first == [{"id": first[0]["id"], "status": "pending", "content": "once"}]
    assert len(scan(names.COMMENTS_TABLE)) == 1
    assert sorted(r["event_type"] for r in scan(names.OUTBOX_TABLE)) == [
        "CommentCreated",
        "CommentModerated",
        "CommentUpdated",
        "PostCreated",
    ]
    # AND on another post the key is another request
    _, other = api.post("/posts", {"title": "other"})
    status, error = send(api, f"/posts/{other['id']}/comments", {"content": "once"}, key="c-1")
    assert (status, error["error"]["code"]) == (409, "idempotency_key_reused")


def test_a_key_for_a_comment_on_a_missing_post_is_not_taken(api: Api) -> None:
    status, error = send(api, "/posts/nope/comments", {"content": "x"}, key="c-2")
    assert (status, error["error"]["code"]) == (404, "unknown_post")
    assert scan(names.IDEMPOTENCY_TABLE) == []
    status, _ = send(api, "/posts", {"title": "a post, with the same key"}, key="c-2")
    assert status == 201


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256])
def test_a_malformed_key_is_a_400_and_writes_nothing(api: Api, key: str) -> None:
    response = api.client.http.post(
        "/posts", headers=JSON | {idempotency.HEADER: key}, body=b'{"title": "t"}'
    )
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "invalid_idempotency_key"
    assert written() == {names.POSTS_TABLE: 0, names.COMMENTS_TABLE: 0, names.OUTBOX_TABLE: 0}


def test_a_concurrent_request_holding_the_key_is_a_409(api: Api) -> None:
    """DynamoDB cancels a transaction that meets another on the key's item (TransactionConflict):
    the request was not done and may be retried."""
    with failing("dynamodb", "TransactWriteItems", transaction_conflict(3), times=1):
        status, error = send(api, "/posts", {"title": "t"}, key="k-3")
    assert (status, error["error"]["code"]) == (409, "idempotency_key_in_use")
    assert written()[names.POSTS_TABLE] == 0
    status, _ = send(api, "/posts", {"title": "t"}, key="k-3")
    assert status == 201


def test_an_expired_key_is_a_new_request(api: Api) -> None:
    status, first = send(api, "/posts", {"title": "old"}, key="k-4")
    assert status == 201
    # GIVEN the key's record past its time to live, not yet deleted (DynamoDB deletes late)
    aws.client("dynamodb").update_item(
        TableName=names.resource(PREFIX, names.IDEMPOTENCY_TABLE),
        Key={names.IDEMPOTENCY_KEY: {"S": "k-4"}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": names.IDEMPOTENCY_TTL_ATTRIBUTE},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    # WHEN the key is used again, even with another body
    status, second = send(api, "/posts", {"title": "new"}, key="k-4")
    # THEN it is a new request
    assert status == 201
    assert second["id"] != first["id"]
    assert written()[names.POSTS_TABLE] == 2


def test_a_key_is_kept_for_a_day(api: Api) -> None:
    before = int(time.time())
    send(api, "/posts", {"title": "t"}, key="k-5")
    [record] = scan(names.IDEMPOTENCY_TABLE)
    expires = int(record[names.IDEMPOTENCY_TTL_ATTRIBUTE])
    assert before + idempotency.RETENTION_SECONDS <= expires <= int(time.time()) + 86_400


# ---- ETags --------------------------------------------------------------------------------


def test_reads_answer_304_to_their_own_etag_until_the_answer_changes(
    api: Api, runner: EventSourceRunner
) -> None:
    _, post = api.post("/posts", {"title": "t"})
    runner.drain()
    for path in ("/posts", f"/posts/{post['id']}", "/posts?limit=1"):
        first = api.client.http.get(path)
        etag = first.headers["ETag"]
        assert first.status_code == 200
        again = api.client.http.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.body, again.headers["ETag"]) == (304, b"", etag)
        weak = api.client.http.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        assert api.client.http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    # WHEN the post gets a comment, the old tags no longer hold
    etags = {p: api.client.http.get(p).headers["ETag"] for p in ("/posts", f"/posts/{post['id']}")}
    api.post(f"/posts/{post['id']}/comments", {"content": "news"})
    runner.drain()
    for path, etag in etags.items():
        changed = api.client.http.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag


def test_the_etag_covers_the_link_to_the_next_page() -> None:
    """The same posts with and without a next page (an older post projected late) are two
    answers: a client holding the first must not keep it when a Link appears."""
    request = Request(
        {
            "headers": {},
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "requestContext": {"httpMethod": "GET", "resourcePath": "/posts"},
            "body": None,
            "isBase64Encoded": False,
            "stageVariables": None,
        }
    )
    alone = json_with_etag(request, {"p": 1})
    linked = json_with_etag(request, {"p": 1}, {"Link": '<posts?after=x>; rel="next"'})
    assert alone.headers["ETag"] != linked.headers["ETag"]
    assert linked.headers["Link"] == '<posts?after=x>; rel="next"'


# ---- CORS preflights ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/posts", "GET, POST, OPTIONS"),
        ("/posts/p1", "GET, OPTIONS"),
        ("/posts/p1/comments", "POST, OPTIONS"),
    ],
)
def test_a_preflight_allows_the_configured_origin_only(api: Api, path: str, methods: str) -> None:
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    allowed = api.client.http.request(
        "OPTIONS", path, headers={"Origin": ALLOWED, **asks}, body=b""
    )
    assert allowed.status_code == 204
    assert allowed.headers["Allow"] == methods
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert allowed.headers["Access-Control-Allow-Methods"] == methods
    assert allowed.headers["Access-Control-Allow-Headers"] == CORS_ALLOW_HEADERS
    for origin in ("https://evil.example", "https://client.example.evil", "null"):
        refused = api.client.http.request(
            "OPTIONS", path, headers={"Origin": origin, **asks}, body=b""
        )
        assert refused.status_code == 204
        assert refused.headers["Allow"] == methods
        assert not any(h.lower().startswith("access-control-") for h in refused.headers)


# ---- the OpenAPI document -----------------------------------------------------------------


def test_the_served_document_is_the_generated_one_and_the_committed_copy(api: Api) -> None:
    from emulator.template import ROOT

    response = api.client.http.get("/openapi.json")
    assert response.status_code == 200
    served = json.loads(response.body)
    assert served == openapi.document()
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == openapi.rendered(), (
        "docs/openapi.json is stale: `.venv/bin/python -m functions.openapi > docs/openapi.json`"
    )


def test_the_document_covers_every_public_route_and_nothing_else() -> None:
    import app

    documented = {
        (path, method.upper()) for path, op in openapi.document()["paths"].items() for method in op
    }
    routes = {
        (path, method)
        for path, by_method in app.app.routes.items()
        for method in by_method
        if method != "OPTIONS" and not path.startswith(("/ops", "/static")) and path != "/"
    }
    assert routes == documented
    assert openapi.document()["openapi"].startswith("3.1")
