"""Every route, fuzzed with hypothesis: bodies, headers and paths.

Bodies: raw bytes, text with null bytes and any unicode, lone surrogates, JSON of any shape,
objects with the right keys and wrong values, nesting thousands of levels deep, and bodies
around and over the 64 KiB limit (up to about 110 KB). Headers: every accepted content type
with its variants, any Accept header, any extra header. Paths: any text in the id segment,
raw and percent-encoded.

Whatever comes in: no 5xx; every answer of the API is JSON; every rejection is the documented
``{"error": {"code", "message", "details"?}}``; a rejected request writes nothing (the posts,
comments and outbox tables are compared before and after), an accepted one writes exactly its
item and its outbox record. And a body that is valid (any unicode text within the bounds, with
any accepted content type, with or without extra keys) must be accepted with 201 and reach the
view once the pipeline is drained: an API refusing every write would fail.

Writes take only ``application/json`` (anything else is a 415 that writes nothing: docs/api.md).

The fuzzer found one gap, now closed: Chalice answered 415 ``{"Code", "Message"}`` itself for a
Content-Type outside a route's list, even ``text/plain`` on a ``GET``. Reads now take any
content type, and the ``chalice_errors_as_ours`` middleware gives Chalice's own refusals the
documented body; the last two tests pin both.
"""

import json
import os
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emulator.runner import EventSourceRunner
from functions import names
from functions.commands import MAX_CONTENT, MAX_TITLE
from functions.http import ACCEPTED_CONTENT_TYPES
from tests.conftest import Api
from tests.helpers import scan

EXAMPLES = os.environ.get("FUZZ_EXAMPLES")
"""Examples per test: 60 with a fixed seed in `make test`; more, random, with FUZZ_EXAMPLES."""
FUZZ = settings(
    max_examples=int(EXAMPLES) if EXAMPLES else 60,
    deadline=None,
    derandomize=EXAMPLES is None,  # the same examples every run of `make test`
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the stack is shared by the examples, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
ACCEPTANCE = settings(FUZZ, max_examples=int(EXAMPLES) if EXAMPLES else 20)
"""Fewer in `make test`: each example drains the whole pipeline (about 0.4 s)."""
WRITTEN = (names.POSTS_TABLE, names.COMMENTS_TABLE, names.OUTBOX_TABLE)
EXISTING = "<an existing post>"
"""Stands for the id of a post the test created, in the path strategies."""

# -- bodies ---------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: json.dumps writes NaN, Infinity
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    json_values
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300)
    | st.text(min_size=1, max_size=20).map(lambda s: f"{s}\x00{s}")
    | st.integers(150, 2_100).map(lambda n: "é" * n)  # around the 200 and 2,000 limits
    | st.sampled_from(["", " ", "\t\n", "\u00a0", "\u200b", "\x00"])
)
objects = st.fixed_dictionaries(
    {},
    optional={
        "title": field_values,
        "content": field_values,
        "id": field_values,
        "status": field_values,
        "postId": field_values,
    },
).map(json.dumps)


def nested(depth: int, shape: str) -> str:
    if shape == "array":
        return "[" * depth + "]" * depth
    if shape == "object":
        return '{"a":' * depth + "1" + "}" * depth
    inner = "[" * depth + "]" * depth
    return f'{{"title": {inner}, "content": {inner}}}'


deep = st.builds(nested, st.integers(500, 30_000), st.sampled_from(["array", "object", "field"]))
huge = st.builds(
    lambda n, field: json.dumps({field: "x" * n}),
    st.integers(60_000, 110_000),
    st.sampled_from(["title", "content", "other"]),
) | st.integers(60_000, 110_000).map(lambda n: "x" * n)
surrogates = st.sampled_from(
    ['{"title": "\\ud800"}', '{"content": "\\udfff"}', '"\\ud83d"', '{"\\ud800": 1}']
)
nearly_valid = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=200), "content": st.text(min_size=1, max_size=300)},
    optional={"extra": json_values},
).map(json.dumps)
"""Right keys, any unicode (null bytes, whitespace only, ...): both accepted and refused."""
texts = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    json_values.map(json.dumps),
    objects,
    nearly_valid,
    nearly_valid,
    deep,
    huge,
    surrogates,
)
bodies = st.binary(max_size=2_000) | texts.map(
    lambda text: text.encode("utf-8", errors="surrogatepass")
)


def within(limit: int) -> st.SearchStrategy[str]:
    """Any text of 1 to ``limit`` characters that neither begins nor ends with a blank.

    Python's idea of a blank (``str.isspace``) is wider than pydantic's (Unicode White_Space:
    it keeps U+001C..U+001F), so the ends avoid both and the stored text is known.
    """
    return st.text(min_size=1, max_size=limit).filter(
        lambda t: not t[0].isspace() and not t[-1].isspace()
    )


def valid_body(field: str, limit: int) -> st.SearchStrategy[tuple[str, bytes]]:
    """(the text as stored, the body): the field, maybe blanks around it, maybe extra keys."""
    blanks = st.text(alphabet=" \t\n\u00a0\u3000", max_size=3)
    return st.builds(
        lambda before, text, after, extra: (
            text,
            json.dumps({field: before + text + after, **extra}).encode(),
        ),
        blanks,
        within(limit),
        blanks,
        st.dictionaries(st.sampled_from(["extra", "id", "status"]), json_values, max_size=2),
    )


valid_headers = st.sampled_from(
    [*ACCEPTED_CONTENT_TYPES, "application/json; charset=utf-8", "APPLICATION/JSON"]
).map(lambda content_type: {"Content-Type": content_type})

# -- headers and paths ---------------------------------------------------------------------

content_types = st.sampled_from(
    [
        *ACCEPTED_CONTENT_TYPES,
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/json;charset=latin-1",
        "text/plain; charset=utf-16",
        "application/x-www-form-urlencoded; charset=utf-8",
        "*/*",
    ]
)
extra_headers = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
        lambda name: name != "content-type"
    ),
    st.text(max_size=200),
    max_size=3,
)
accept = st.sampled_from(["application/json", "*/*", "image/png", "text/html", "", "\x00"])
headers = st.builds(
    lambda content_type, more, accepts: {
        **more,
        **({"Content-Type": content_type} if content_type else {}),
        **({"Accept": accepts} if accepts is not None else {}),
    },
    st.none() | content_types,
    extra_headers,
    st.none() | accept,
)
any_content_type = st.text(max_size=60) | content_types
no_separator = st.text().filter(lambda s: not set(s) & set("/?#"))
segments = (
    st.just(EXISTING)  # about half the time: the route's own checks, past the path
    | st.just(EXISTING)
    | st.just(EXISTING)
    | no_separator
    | st.text().map(lambda s: urllib.parse.quote(s, safe=""))
    | st.sampled_from(["", ".", "..", "%00", "%2F", "a" * 64, "a" * 65, "x" * 3_000])
)


@pytest.fixture
def post_id(api: Api, runner: EventSourceRunner) -> str:
    status, post = api.post("/posts", {"title": "the post the fuzzer comments on"})
    assert status == 201
    runner.drain()  # in the view too
    return str(post["id"])


def written() -> dict[str, int]:
    return {table: len(scan(table)) for table in WRITTEN}


def request(api: Api, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    """Send it; check the answer is below 500, JSON, and a rejection has the documented shape."""
    response = api.client.http.request(method, path, headers=headers, body=body)
    assert response.status_code < 500, (method, path, headers, body[:200], response.body)
    event(f"{method} {response.status_code}")
    answer = json.loads(response.body)
    if response.status_code >= 400:
        assert_documented_error(answer)
    return response.status_code, answer


def assert_documented_error(answer: Any) -> None:
    assert set(answer) == {"error"}, answer
    error = answer["error"]
    assert isinstance(error["code"], str), answer
    assert error["code"], answer
    assert isinstance(error["message"], str), answer
    assert error["message"], answer
    assert set(error) <= {"code", "message", "details"}, answer


def assert_writes(before: dict[str, int], status: int, table: str) -> None:
    after = written()
    if status == 201:
        expected = {**before, table: before[table] + 1}
        expected[names.OUTBOX_TABLE] += 1
        assert after == expected, "an accepted write stores its item and its outbox record"
    else:
        assert after == before, f"a rejected request ({status}) wrote something"


def the_path(template: str, segment: str, post_id: str) -> str:
    return template.format(post_id if segment == EXISTING else segment)


@FUZZ
@given(body=bodies, headers=headers)
def test_create_post_with_any_body_and_headers(api: Api, body: bytes, headers: dict[str, str]):
    before = written()
    status, answer = request(api, "POST", "/posts", headers, body)
    assert status in (201, 400, 413, 415, 422), answer
    if status == 201 or status in (400, 413, 422):  # the body was looked at: sent as JSON
        assert headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"
    if status == 201:
        assert set(answer) == {"id", "title"}
    assert_writes(before, status, names.POSTS_TABLE)


@FUZZ
@given(segment=segments, body=bodies, headers=headers)
def test_create_comment_with_any_path_body_and_headers(
    api: Api, post_id: str, segment: str, body: bytes, headers: dict[str, str]
):
    before = written()
    path = the_path("/posts/{}/comments", segment, post_id)
    status, answer = request(api, "POST", path, headers, body)
    assert status in (201, 400, 404, 413, 415, 422), answer
    if status == 201:
        assert isinstance(answer, list)
        assert answer[-1]["status"] == "pending"
    assert_writes(before, status, names.COMMENTS_TABLE)


@ACCEPTANCE
@given(valid=valid_body("title", MAX_TITLE), headers=valid_headers)
def test_a_valid_post_is_accepted_and_reaches_the_view(
    api: Api, runner: EventSourceRunner, valid: tuple[str, bytes], headers: dict[str, str]
):
    title, body = valid
    status, answer = request(api, "POST", "/posts", headers, body)
    assert status == 201, answer
    assert answer["title"] == title
    runner.drain()
    status, shown = api.get(f"/posts/{answer['id']}")
    assert (status, shown["title"], shown["comments"]) == (200, title, [])


@ACCEPTANCE
@given(valid=valid_body("content", MAX_CONTENT), headers=valid_headers)
def test_a_valid_comment_is_accepted_and_reaches_the_view(
    api: Api,
    runner: EventSourceRunner,
    post_id: str,
    valid: tuple[str, bytes],
    headers: dict[str, str],
):
    content, body = valid
    status, answer = request(api, "POST", f"/posts/{post_id}/comments", headers, body)
    assert status == 201, answer
    new = answer[-1]
    assert (new["content"], new["status"]) == (content, "pending")
    runner.drain()
    status, shown = api.get(f"/posts/{post_id}")
    [comment] = [c for c in shown["comments"] if c["id"] == new["id"]]
    assert comment["status"] in ("approved", "rejected")  # moderated, and the decision shown
    if comment["status"] == "approved":
        assert comment["content"] == content
    else:  # a rejected comment's text is never served
        assert "content" not in comment


@FUZZ
@given(segment=segments, body=bodies, headers=headers)
def test_read_routes_with_any_path_body_and_headers(
    api: Api, post_id: str, segment: str, body: bytes, headers: dict[str, str]
):
    before = written()
    status, listing = request(api, "GET", "/posts", headers, body)
    assert status == 200
    assert isinstance(listing, dict)
    status, answer = request(api, "GET", the_path("/posts/{}", segment, post_id), headers, body)
    if segment == EXISTING:
        assert status == 200
        assert answer["id"] == post_id
    else:
        assert status in (200, 404), answer  # "" is the listing: API Gateway drops the slash
    assert written() == before


@FUZZ
@given(name=segments, headers=headers)
def test_web_routes_with_any_file_name(api: Api, post_id: str, name: str, headers: dict[str, str]):
    page = api.client.http.request("GET", "/", headers=headers, body=b"")
    assert page.status_code == 200
    path = "/static/" + (post_id if name == EXISTING else name)
    response = api.client.http.request("GET", path, headers=headers, body=b"")
    if name == "":  # "/static/" is "/static", which no route serves: API Gateway answers
        assert response.status_code == 403
        return
    assert response.status_code in (200, 404), response.body
    if response.status_code != 200:
        assert_documented_error(json.loads(response.body))


@FUZZ
@given(content_type=any_content_type, body=bodies)
def test_any_content_type_is_refused_as_json_and_writes_nothing(
    api: Api, post_id: str, content_type: str, body: bytes
):
    for path, table in (("/posts", names.POSTS_TABLE), (f"/posts/{post_id}/comments", "")):
        before = written()
        response = api.client.http.request(
            "POST", path, headers={"Content-Type": content_type}, body=body
        )
        assert response.status_code < 500
        answer = json.loads(response.body)
        if response.status_code >= 400:
            assert_documented_error(answer)
        assert_writes(before, response.status_code, table or names.COMMENTS_TABLE)


def test_a_post_with_an_unsupported_content_type_gets_the_documented_error(api: Api) -> None:
    before = written()
    for content_type in ("image/png", "application/octet-stream", "x"):
        response = api.client.http.post(
            "/posts", headers={"Content-Type": content_type}, body=b'{"title": "hello"}'
        )
        assert response.status_code == 415
        answer = json.loads(response.body)
        assert_documented_error(answer)
        assert answer["error"]["code"] == "unsupported_media_type"
    assert written() == before


def test_a_method_no_route_has_gets_the_documented_error(api: Api) -> None:
    response = api.client.http.request("PUT", "/posts", headers={}, body=b"{}")
    assert response.status_code == 405
    answer = json.loads(response.body)
    assert_documented_error(answer)
    assert answer["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST", "OPTIONS"}


def test_a_read_with_a_text_plain_content_type_is_answered(api: Api) -> None:
    """A GET has no body, so its Content-Type is no reason to refuse it."""
    for path in ("/posts", "/", "/static/app.js"):
        response = api.client.http.get(path, headers={"Content-Type": "text/plain"})
        assert response.status_code == 200, path
    response = api.client.http.get("/posts/p1", headers={"Content-Type": "image/png"})
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "unknown_post"
