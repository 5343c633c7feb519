"""The seed scenario through every hop on moto.

HTTP (chalice.test.Client) -> DynamoDB transaction -> outbox stream -> publisher -> SNS ->
filtered SQS queues -> consumers -> query view, with the event-source runner playing Lambda.
"""

from emulator.runner import EventSourceRunner
from functions import names
from tests.conftest import Api
from tests.helpers import scan


def run_seed_scenario(api: Api, runner: EventSourceRunner) -> tuple[str, str, str]:
    """One post, one comment that passes moderation and one with the banned word."""
    status, post = api.post("/posts", {"title": "First post"})
    assert status == 201
    status, _ = api.post(f"/posts/{post['id']}/comments", {"content": "Lovely weather"})
    assert status == 201
    status, comments = api.post(f"/posts/{post['id']}/comments", {"content": "I love ORANGE."})
    assert status == 201
    runner.drain()
    return post["id"], comments[0]["id"], comments[1]["id"]


def test_seed_scenario_converges_through_every_hop(api: Api, runner: EventSourceRunner) -> None:
    # GIVEN the stack deployed from infra/ and the runner over the app's event sources
    # WHEN a post and two comments are created and every event source is drained
    post_id, approved_id, rejected_id = run_seed_scenario(api, runner)

    # THEN the query view shows both comments with their moderation results, and the text of
    # the approved one only: a rejected comment's text never leaves the server
    status, view = api.get("/posts")
    assert status == 200
    assert view == {
        post_id: {
            "id": post_id,
            "title": "First post",
            "comments": [
                {"id": approved_id, "content": "Lovely weather", "status": "approved"},
                {"id": rejected_id, "status": "rejected"},
            ],
        }
    }
    assert api.get(f"/posts/{post_id}") == (200, view[post_id])
    # AND the comments service holds the same statuses, each at its second version
    stored = {c["comment_id"]: (c["status"], c["comment_version"]) for c in scan("comments")}
    assert stored == {approved_id: ("approved", 2), rejected_id: ("rejected", 2)}
    # AND every event went through the outbox and was marked sent
    outbox = scan(names.OUTBOX_TABLE)
    assert sorted(r["event_type"] for r in outbox) == sorted(
        ["PostCreated"] + ["CommentCreated", "CommentModerated", "CommentUpdated"] * 2
    )
    assert all(record["sent"] for record in outbox)


def test_comment_creation_answers_with_the_posts_comments_as_pending(api: Api) -> None:
    _, post = api.post("/posts", {"title": "t"})
    status, comments = api.post(f"/posts/{post['id']}/comments", {"content": "hello"})
    assert status == 201
    assert [(c["content"], c["status"]) for c in comments] == [("hello", "pending")]
    # AND the next comment's answer holds the first one, pending, without its text: only the
    # author's own pending text comes back, in the answer to the request that sent it
    status, comments = api.post(f"/posts/{post['id']}/comments", {"content": "world"})
    assert status == 201
    assert [(c.get("content"), c["status"]) for c in comments] == [
        (None, "pending"),
        ("world", "pending"),
    ]


def test_unknown_post_is_404_and_writes_nothing(api: Api) -> None:
    status, body = api.post("/posts/nope/comments", {"content": "hello"})
    assert status == 404
    assert body["error"]["code"] == "unknown_post"
    assert scan(names.COMMENTS_TABLE) == []
    assert scan(names.OUTBOX_TABLE) == []
    assert api.get("/posts/nope")[0] == 404


ALLOWED = "https://client.example"
"""The origin the test stage allows (``CORS_ALLOWED_ORIGINS`` in .chalice/config.json)."""


def test_every_route_allows_cors_to_the_configured_origin_only(api: Api) -> None:
    _, post = api.post("/posts", {"title": "t"})
    json_body = {"Content-Type": "application/json"}
    for origin, allowed in ((ALLOWED, True), ("https://evil.example", False), (None, False)):
        headers = {} if origin is None else {"Origin": origin}
        requests = [
            api.client.http.get("/posts", headers=headers),
            api.client.http.get(f"/posts/{post['id']}", headers=headers),
            api.client.http.post("/posts", headers=headers | json_body, body='{"title": "x"}'),
            api.client.http.post(
                f"/posts/{post['id']}/comments",
                headers=headers | json_body,
                body='{"content": "x"}',
            ),
            api.client.http.post("/posts", headers=headers | json_body, body="{"),
            api.client.http.get("/", headers=headers),
            api.client.http.get("/openapi.json", headers=headers),
        ]
        for response in requests:
            assert response.headers["Vary"] == "Origin"
            if allowed:
                assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
                assert set(response.headers["Access-Control-Expose-Headers"].split(", ")) == {
                    "ETag",
                    "Link",
                }
            else:
                assert not any(h.lower().startswith("access-control-") for h in response.headers)


def test_the_publisher_runs_once_per_new_outbox_record(api: Api, runner: EventSourceRunner) -> None:
    """The stream mapping's INSERT-only filter (infra/functions.yaml), applied by the runner:
    marking a record sent changes it again, and that change invokes nothing."""
    publisher = runner.sources["outbox_publisher"]
    for index in range(3):
        api.post("/posts", {"title": f"one invocation {index}"})
        runner.drain()
    assert publisher.stats.invocations == 3
    assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
