"""The page's routes, and the local operations endpoints (``operations/ops_api.py``).

The operations endpoints are exercised as ``chalice local`` runs them: through a Chalice app that
registers their Blueprint, with the runner behind a ``ControlServer`` on a free port that they
reach through ``RemoteConsumers`` (``AWS_PORT`` points one below it), on the stack deployed into
moto. ``tests/conftest.py`` imports ``app`` with the ``test`` stage, which has no operations
endpoints; whether a stage has them is checked by importing ``app`` in a fresh interpreter with
that stage's environment.
"""

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.test import Client

import app
from emulator.config import stage_environment
from emulator.control import ControlServer, LocalConsumers
from emulator.runner import EventSourceRunner
from emulator.stack import Stack
from emulator.template import ROOT
from functions import names
from operations import ops, ops_api
from tests.conftest import Api

LOCAL_OPS = Chalice(app_name="blog-ops-probe")
"""The operations endpoints alone. Registered once: Chalice consumes a Blueprint's route
arguments when it registers them (``methods`` is popped), so a second app would get them wrong."""
LOCAL_OPS.register_blueprint(ops_api.bp)

OPS_ROUTES = {
    "/ops/status",
    "/ops/outage/{consumer}/start",
    "/ops/outage/{consumer}/end",
    "/ops/rebuild/{consumer}",
    "/ops/sweep",
}


@pytest.fixture
def ops_api_client(runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The operations endpoints, with the runner's control API where ``AWS_PORT + 1`` says."""
    server = ControlServer(LocalConsumers(runner), port=0)
    server.start()
    control_port = int(server.url.rsplit(":", 1)[1])
    monkeypatch.setenv("AWS_PORT", str(control_port - 1))
    try:
        with Client(LOCAL_OPS, stage_name="test", project_dir=str(ROOT)) as client:
            yield Api(client)
    finally:
        ops_api.rebuilds.join(timeout=60)
        server.stop()


def row_of(status: dict[str, Any], consumer: str = "query") -> dict[str, Any]:
    row: dict[str, Any] = next(c for c in status["consumers"] if c["consumer"] == consumer)
    return row


def query_row(status: dict[str, Any]) -> dict[str, Any]:
    return row_of(status)


def test_status_shows_each_consumer_and_the_outbox(
    ops_api_client: Api, api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a post with a comment, delivered everywhere, and the scheduled catch-ups run
    _, post = api.post("/posts", {"title": "Counted"})
    api.post(f"/posts/{post['id']}/comments", {"content": "Counted too"})
    runner.drain()
    for consumer in names.CONSUMERS:
        runner.fire(f"{consumer}_catch_up")
    # WHEN the page asks for the status
    code, status = ops_api_client.get("/ops/status")
    # THEN every consumer is there, live, its watermark at the archive head
    assert code == 200
    assert [c["consumer"] for c in status["consumers"]] == list(names.CONSUMERS)
    assert all(c["subscribed"] and not c["paused"] for c in status["consumers"])
    assert status["archive_head"] == 4  # the post, the comment, its decision and its update
    for row in status["consumers"]:
        assert (row["watermark"], row["archive_head"], row["lag"]) == (4, 4, 0), row
    assert status["unsent_outbox"] == 0
    assert status["oldest_unsent_age_seconds"] is None


@pytest.mark.parametrize("mode", ops.MODES)
@pytest.mark.parametrize("consumer", names.CONSUMERS)
def test_an_outage_started_and_ended_through_the_endpoints(
    ops_api_client: Api, api: Api, runner: EventSourceRunner, consumer: str, mode: str
) -> None:
    # GIVEN a consumer taken down through the endpoint
    code, started = ops_api_client.post(f"/ops/outage/{consumer}/start", {"mode": mode})
    assert (code, started) == (200, {"consumer": consumer, "mode": mode, "outage": "started"})
    _, status = ops_api_client.get("/ops/status")
    down = row_of(status, consumer)
    assert (down["subscribed"], down["paused"]) == (mode != "unsubscribe", mode != "unsubscribe")
    # AND a post and a comment written meanwhile, which it misses
    _, post = api.post("/posts", {"title": f"During a {mode}"})
    api.post(f"/posts/{post['id']}/comments", {"content": "an orange"})
    runner.drain()
    view = api.get("/posts")[1]
    if consumer == "query":
        assert post["id"] not in view
    else:
        assert view[post["id"]]["comments"][0]["status"] == "pending"
    # WHEN the outage ends through the endpoint
    code, ended = ops_api_client.post(f"/ops/outage/{consumer}/end", {})
    # THEN it caught up from the archive, and the consumer is back
    assert code == 200
    assert ended["report"]["consumer"] == consumer
    assert ended["report"]["recovered"] >= 1
    assert ended["report"]["watermark_after"] == ended["report"]["head"]
    runner.drain()
    shown = api.get("/posts")[1][post["id"]]
    assert shown["title"] == f"During a {mode}"
    assert shown["comments"][0]["status"] == "rejected"
    up = row_of(ops_api_client.get("/ops/status")[1], consumer)
    assert (up["subscribed"], up["paused"]) == (True, False)


def test_a_second_purge_within_a_minute_is_refused_and_changes_nothing(
    ops_api_client: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a purge outage, started and ended
    assert ops_api_client.post("/ops/outage/query/start", {"mode": "purge"})[0] == 200
    assert ops_api_client.post("/ops/outage/query/end", {})[0] == 200
    # WHEN a second purge is asked for within 60 s
    code, answer = ops_api_client.post("/ops/outage/query/start", {"mode": "purge"})
    # THEN it is refused with the reason, and the consumer is not left paused
    assert (code, answer["error"]["code"]) == (409, "purge_refused")
    assert "one purge a minute: nothing was changed" in answer["error"]["message"]
    assert query_row(ops_api_client.get("/ops/status")[1])["paused"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [({"mode": "sideways"}, "mode"), ({}, "mode"), ({"mode": "pause", "extra": 1}, "extra")],
)
def test_a_bad_outage_body_is_a_422_and_changes_nothing(
    ops_api_client: Api, runner: EventSourceRunner, body: dict[str, Any], field: str
) -> None:
    code, answer = ops_api_client.post("/ops/outage/query/start", body)
    assert code == 422
    assert answer["error"]["code"] == "invalid_input"
    assert [d["field"] for d in answer["error"]["details"]] == [field]
    assert not any(s.paused for s in LocalConsumers(runner).describe().values())


def test_a_body_that_is_not_json_is_a_400(ops_api_client: Api) -> None:
    code, answer = ops_api_client.post("/ops/outage/query/start", "mode=pause")
    assert (code, answer["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ops/outage/nobody/start"),
        ("POST", "/ops/outage/nobody/end"),
        ("POST", "/ops/rebuild/nobody"),
        ("GET", "/ops/rebuild/nobody"),
    ],
)
def test_an_unknown_consumer_is_a_404(
    ops_api_client: Api, runner: EventSourceRunner, method: str, path: str
) -> None:
    if method == "POST":
        code, answer = ops_api_client.post(path, {"mode": "pause"})
    else:
        code, answer = ops_api_client.get(path)
    assert code == 404
    assert answer["error"]["code"] == "unknown_consumer"
    assert "moderation, comments, query" in answer["error"]["message"]
    assert not any(s.paused for s in LocalConsumers(runner).describe().values())


@pytest.mark.parametrize("consumer", ["moderation", "comments"])
def test_only_the_query_view_is_rebuilt(ops_api_client: Api, consumer: str) -> None:
    code, answer = ops_api_client.post(f"/ops/rebuild/{consumer}", {})
    assert (code, answer["error"]["code"]) == (409, "not_rebuildable")
    assert "recovers by catch-up" in answer["error"]["message"]


def test_a_rebuild_runs_in_the_background_and_reports_its_progress(
    ops_api_client: Api, api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a post with a comment in the view
    _, post = api.post("/posts", {"title": "Rebuilt"})
    api.post(f"/posts/{post['id']}/comments", {"content": "Still here"})
    runner.drain()
    head = ops_api_client.get("/ops/status")[1]["archive_head"]
    # WHEN a rebuild is started
    code, started = ops_api_client.post("/ops/rebuild/query", {})
    # THEN it is accepted at once, and finishes with every position done
    assert code == 202
    assert started["running"] is True
    ops_api.rebuilds.join(timeout=60)
    code, progress = ops_api_client.get("/ops/rebuild/query")
    assert code == 200
    assert progress["running"] is False
    assert progress["error"] is None
    assert progress["done"] == progress["total"] == head
    assert progress["report"]["new_version"] == "v2"
    assert progress["report"]["events"] == head
    comments = api.get(f"/posts/{post['id']}")[1]["comments"]
    assert [(c["content"], c["status"]) for c in comments] == [("Still here", "approved")]


def test_a_second_rebuild_waits_for_the_first_and_a_failure_is_reported(
    ops_api_client: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def failing_rebuild(progress: Any = None) -> Any:
        progress(1, 4)
        release.wait(timeout=30)
        raise RuntimeError("the archive is on fire")

    monkeypatch.setattr(ops, "rebuild", failing_rebuild)
    assert ops_api_client.post("/ops/rebuild/query", {})[0] == 202
    code, answer = ops_api_client.post("/ops/rebuild/query", {})
    assert (code, answer["error"]["code"]) == (409, "rebuild_running")
    release.set()
    ops_api.rebuilds.join(timeout=30)
    _, progress = ops_api_client.get("/ops/rebuild/query")
    assert progress["running"] is False
    assert progress["error"] == "the archive is on fire"
    assert (progress["done"], progress["total"]) == (1, 4)


def test_the_sweep_fires_the_outbox_sweeper(ops_api_client: Api, runner: EventSourceRunner) -> None:
    code, answer = ops_api_client.post("/ops/sweep", {})
    assert (code, answer) == (200, {"fired": "outbox_sweeper"})
    assert LocalConsumers(runner).describe()["outbox_sweeper"].invocations == 1


def test_a_stack_that_is_not_running_is_a_503(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("AWS_PORT", str(closed - 1))
    with Client(LOCAL_OPS, stage_name="test", project_dir=str(ROOT)) as client:
        code, answer = Api(client).get("/ops/status")
    assert code == 503
    assert answer["error"]["code"] == "stack_unavailable"
    assert "make dev" in answer["error"]["message"]


# ---- the page -------------------------------------------------------------------------------


@pytest.fixture
def page_api() -> Iterator[Api]:
    """The real app's routes; serving the page needs no AWS."""
    with Client(app.app, stage_name="test", project_dir=str(ROOT)) as client:
        yield Api(client)


def test_the_page_is_served_at_the_root(page_api: Api) -> None:
    response = page_api.client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.body.decode()
    assert '<script src="static/app.js" defer></script>' in page
    assert '<link rel="stylesheet" href="static/app.css">' in page


@pytest.mark.parametrize(
    ("name", "content_type", "marker"),
    [
        ("app.js", "text/javascript; charset=utf-8", '"use strict";'),
        ("app.css", "text/css; charset=utf-8", ":root"),
        ("index.html", "text/html; charset=utf-8", "<!doctype html>"),
    ],
)
def test_the_page_files_have_their_content_types(
    page_api: Api, name: str, content_type: str, marker: str
) -> None:
    response = page_api.client.http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert marker in response.body.decode()


@pytest.mark.parametrize(
    "name", ["nope.js", "blueprint.py", "..%2Fblueprint.py", "%2Fetc%2Fpasswd"]
)
def test_only_the_page_files_are_served(page_api: Api, name: str) -> None:
    code, answer = page_api.get(f"/static/{name}")
    assert code == 404
    assert answer["error"]["code"] == "unknown_file"


def test_the_page_never_renders_data_as_html() -> None:
    script = (ROOT / "functions" / "web" / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


# ---- which stage has the operations endpoints -----------------------------------------------

PROBE = """
import json, sys
import app
local = ("emulator", "operations")
modules = sorted(m for m in sys.modules if m.split(".")[0] in local)
print(json.dumps({"routes": sorted(app.app.routes), "local_only": modules}))
"""


def import_app(stage: str) -> dict[str, list[str]]:
    """``app`` imported in a fresh interpreter with ``stage``'s environment alone."""
    stage_variables = {key for name in ("dev", "local", "test") for key in stage_environment(name)}
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in stage_variables and not k.startswith(("AWS_", "BLOG_"))
    }
    environment.update(stage_environment(stage), AWS_DEFAULT_REGION="us-east-1")
    result = subprocess.run(  # noqa: S603 (our own interpreter, a fixed script)
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return answer


def test_a_deployed_stage_has_the_page_but_no_ops_endpoints_no_emulator_no_operations() -> None:
    imported = import_app("dev")
    assert {"/", "/static/{name}"} <= set(imported["routes"])
    assert [route for route in imported["routes"] if route.startswith("/ops")] == []
    assert imported["local_only"] == []
    assert "BLOG_LOCAL_OPS" not in stage_environment("dev")


def test_the_local_stage_has_the_ops_endpoints() -> None:
    imported = import_app("local")
    assert {r for r in imported["routes"] if r.startswith("/ops")} == OPS_ROUTES
    assert "operations.ops_api" in imported["local_only"]
    assert stage_environment("local")["BLOG_LOCAL_OPS"] == "1"
    assert "BLOG_LOCAL_OPS" not in stage_environment("test")
