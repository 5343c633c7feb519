"""Acceptance 5: bad HTTP input gets a 4xx JSON error that names the problem; nothing is written."""

import json

import pytest

from functions import names
from tests.conftest import Api
from tests.helpers import scan

BAD_POSTS = [
    ("{not json", 400, "invalid_json", "not valid JSON"),
    ("", 400, "invalid_json", "not valid JSON"),
    ("[1, 2]", 400, "invalid_body", "JSON object"),
    ({}, 422, "invalid_input", "title: Field required"),
    ({"title": ""}, 422, "invalid_input", "title: String should have at least 1 character"),
    ({"title": "   "}, 422, "invalid_input", "title: String should have at least 1 character"),
    ({"title": None}, 422, "invalid_input", "title: Input should be a valid string"),
    ({"title": 42}, 422, "invalid_input", "title: Input should be a valid string"),
    ({"title": ["a"]}, 422, "invalid_input", "title: Input should be a valid string"),
    ({"title": "x" * 201}, 422, "invalid_input", "at most 200 characters"),
    ("x" * 70_000, 413, "body_too_large", "over 65536 bytes"),
]
BAD_COMMENTS = [
    ("{", 400, "invalid_json", "not valid JSON"),
    ({"content": None}, 422, "invalid_input", "content: Input should be a valid string"),
    ({"content": ""}, 422, "invalid_input", "content: String should have at least 1 character"),
    ({"content": {"a": 1}}, 422, "invalid_input", "content: Input should be a valid string"),
    ({"content": "x" * 2001}, 422, "invalid_input", "at most 2000 characters"),
    ({"text": "hello"}, 422, "invalid_input", "content: Field required"),
]


def assert_nothing_written() -> None:
    for table in (names.POSTS_TABLE, names.COMMENTS_TABLE, names.OUTBOX_TABLE):
        assert scan(table) == [], table


@pytest.mark.parametrize(("body", "status", "code", "says"), BAD_POSTS)
def test_bad_post_is_rejected_with_a_json_error(
    api: Api, body: object, status: int, code: str, says: str
) -> None:
    got_status, error = api.post("/posts", body)
    assert (got_status, error["error"]["code"]) == (status, code)
    assert says in error["error"]["message"]
    assert_nothing_written()


@pytest.mark.parametrize(("body", "status", "code", "says"), BAD_COMMENTS)
def test_bad_comment_is_rejected_with_a_json_error(
    api: Api, body: object, status: int, code: str, says: str
) -> None:
    # GIVEN a post (whose own records are the only ones allowed to exist)
    _, post = api.post("/posts", {"title": "t"})
    outbox_before = scan(names.OUTBOX_TABLE)
    got_status, error = api.post(f"/posts/{post['id']}/comments", body)
    assert (got_status, error["error"]["code"]) == (status, code)
    assert says in error["error"]["message"]
    assert scan(names.COMMENTS_TABLE) == []
    assert scan(names.OUTBOX_TABLE) == outbox_before


def test_unknown_post_comment_is_404(api: Api) -> None:
    status, error = api.post("/posts/missing/comments", {"content": "hi"})
    assert (status, error["error"]["code"]) == (404, "unknown_post")
    assert "missing" in error["error"]["message"]
    assert_nothing_written()


@pytest.mark.parametrize("post_id", ["x" * 3000, "a%20b", "%00"])
def test_a_path_id_no_post_could_have_is_a_json_404(api: Api, post_id: str) -> None:
    status, error = api.post(f"/posts/{post_id}/comments", {"content": "hi"})
    assert (status, error["error"]["code"]) == (404, "unknown_post")
    status, error = api.get(f"/posts/{post_id}")
    assert (status, error["error"]["code"]) == (404, "unknown_post")
    assert_nothing_written()


NOT_JSON = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain;application/json",  # Chalice's own check would take this one for JSON
    "*/*",
    "application/json-patch+json",
    None,  # no Content-Type at all (a script's Blob body): Chalice would assume JSON
]


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize(
    ("path", "body"),
    [("/posts", '{"title": "hello"}'), ("/posts/{}/comments", '{"content": "hi"}')],
)
def test_a_write_not_sent_as_json_is_a_415_and_writes_nothing(
    api: Api, content_type: str | None, path: str, body: str
) -> None:
    """What a form or a script of another site can send without a CORS preflight is refused,
    even with a valid JSON body."""
    _, post = api.post("/posts", {"title": "t"})
    before = {table: scan(table) for table in (names.POSTS_TABLE, names.COMMENTS_TABLE)}
    outbox_before = scan(names.OUTBOX_TABLE)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = api.client.http.post(path.format(post["id"]), headers=headers, body=body)
    assert response.status_code == 415
    assert json.loads(response.body)["error"]["code"] == "unsupported_media_type"
    assert {table: scan(table) for table in before} == before
    assert scan(names.OUTBOX_TABLE) == outbox_before
