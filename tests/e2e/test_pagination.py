"""GET /posts is one bounded page, newest first, with a Link to the next.

Through the HTTP API (``chalice.test.Client``), with posts and comments written through it and
projected by the real pipeline on moto.
"""

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest

from emulator.runner import EventSourceRunner
from functions import aws
from functions.query import store
from functions.query.cursor import Cursor
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.e2e.test_subscriptions import resume_without_catch_up

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def page(api: Api, path: str) -> tuple[int, Any, str | None]:
    """Status, body and the next page's path (from the Link header) of one GET."""
    response = api.client.http.get(path)
    link = response.headers.get("Link") or response.headers.get("link")
    if link is None:
        return response.status_code, json.loads(response.body), None
    match = LINK.match(link)
    assert match, link
    return response.status_code, json.loads(response.body), urljoin(path, match.group(1))


def walk(api: Api, path: str) -> list[list[str]]:
    """Every page's post ids, following the Link headers."""
    pages: list[list[str]] = []
    next_path: str | None = path
    while next_path is not None:
        status, body, next_path = page(api, next_path)
        assert status == 200, body
        pages.append(list(body))
    return pages


def write_posts(api: Api, runner: EventSourceRunner, count: int, tag: str) -> list[str]:
    ids = []
    for index in range(count):
        _, post = api.post("/posts", {"title": f"{tag} {index}"})
        ids.append(post["id"])
    runner.drain()
    return ids


def test_the_first_page_holds_the_50_newest_and_the_links_walk_every_post_once(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN 53 posts, the newest with a comment
    ids = write_posts(api, runner, 53, "post")
    api.post(f"/posts/{ids[-1]}/comments", {"content": "Lovely weather"})
    runner.drain()
    # WHEN the posts are read with the default limit, then the Link followed
    status, first, next_path = page(api, "/posts")
    # THEN the first page is the 50 newest, newest first, in the seed's body format
    assert status == 200
    assert list(first) == sorted(ids, reverse=True)[:50]
    assert first[ids[-1]] == {
        "id": ids[-1],
        "title": "post 52",
        "comments": [
            {
                "id": first[ids[-1]]["comments"][0]["id"],
                "content": "Lovely weather",
                "status": "approved",
            }
        ],
    }
    assert next_path is not None
    assert "limit=50" in next_path
    # AND the next page holds the 3 oldest, with no further Link
    status, rest, last = page(api, next_path)
    assert (status, list(rest), last) == (200, sorted(ids, reverse=True)[50:], None)


def test_following_links_visits_each_post_once_while_new_posts_arrive(
    api: Api, runner: EventSourceRunner
) -> None:
    ids = write_posts(api, runner, 7, "old")
    seen: list[str] = []
    arrived: list[str] = []
    next_path: str | None = "/posts?limit=2"
    while next_path is not None:
        status, body, next_path = page(api, next_path)
        assert status == 200
        seen += list(body)
        arrived += write_posts(api, runner, 1, "new")  # a newer post after every page
    # THEN the walk saw the posts it started with, each once, newest first
    assert seen == sorted(ids, reverse=True)
    # AND a walk now sees those and the newer ones, each once
    pages = walk(api, "/posts?limit=3")
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert [p for one in pages for p in one] == sorted(ids + arrived, reverse=True)


@pytest.mark.parametrize("limit", ["0", "201", "-3", "ten", "2.5", ""])
def test_a_limit_outside_1_to_200_or_not_a_number_is_a_400(api: Api, limit: str) -> None:
    status, body, _ = page(api, f"/posts?limit={limit}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"
    assert body["error"]["details"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "after",
    [
        "garbage",
        "eyJ2IjoxfQ",
        Cursor.after_post("019ad2f0c1a2b3c4d5e6f7a8b9c0").encode()[:-4],
        Cursor.after_post("019ad2f0c1a2b3c4d5e6f7a8b9c0")
        .model_copy(update={"after": "ffffffffffffffffffffffffffff"})
        .encode(),
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400(api: Api, after: str) -> None:
    status, body, _ = page(api, f"/posts?after={after}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"
    assert body["error"]["details"] == [
        {"field": "after", "problem": "the cursor is not one this API gave out"}
    ]


@pytest.fixture
def dynamodb_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    client = aws.client("dynamodb")
    client.meta.events.register("provide-client-params.dynamodb", record)
    yield calls
    client.meta.events.unregister("provide-client-params.dynamodb", record)


def test_one_post_is_read_from_its_own_partition_only(
    api: Api, runner: EventSourceRunner, dynamodb_calls: list[tuple[str, dict[str, Any]]]
) -> None:
    [first, second] = write_posts(api, runner, 2, "post")
    api.post(f"/posts/{first}/comments", {"content": "Lovely weather"})
    runner.drain()
    dynamodb_calls.clear()
    status, body = api.get(f"/posts/{first}")
    assert status == 200
    assert [c["content"] for c in body["comments"]] == ["Lovely weather"]
    # THEN it read the pointer and queried that post's partition: nothing else
    assert [name for name, _ in dynamodb_calls] == ["GetItem", "Query"]
    _, query = dynamodb_calls[1]
    assert "IndexName" not in query
    assert query["ExpressionAttributeValues"][":view"] == {"S": f"v1/post/{first}"}
    assert api.get(f"/posts/{second}")[1]["comments"] == []


def test_the_tests_whole_view_reader_follows_every_page(
    api: Api, runner: EventSourceRunner
) -> None:
    """``Api.every_post`` (what the chaos oracle compares) is the whole view, not one page."""
    for index in range(5):
        api.post("/posts", {"title": f"paged {index}"})
    runner.drain()
    status, view = api.every_post(limit=2)
    assert status == 200
    assert view == oracle_view()
    assert len(view) == 5


def test_a_live_batch_puts_each_listing_bucket_in_the_directory_once(
    api: Api, runner: EventSourceRunner, dynamodb_calls: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN posts written while the view's consumer was paused, so they arrive as one batch
    runner.pause("query_consumer")
    posts = [api.post("/posts", {"title": f"batched {i}"})[1]["id"] for i in range(6)]
    runner.drain()
    dynamodb_calls.clear()
    # WHEN the live path applies the batch
    resume_without_catch_up(runner, "query_consumer")
    runner.drain()
    # THEN the directory got one write per bucket the posts fall in, not one per post
    directory_writes = [
        params["Item"][store.SORT]["S"]
        for name, params in dynamodb_calls
        if name == "PutItem" and params["Item"][store.PARTITION]["S"].endswith("/buckets")
    ]
    assert sorted(directory_writes) == sorted({store.bucket(post) for post in posts})
    # AND every post is listed
    assert sorted(post for page in walk(api, "/posts") for post in page) == sorted(posts)
