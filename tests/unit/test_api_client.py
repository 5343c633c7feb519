"""The shared API client (``tools/api_client.py``) against a small stdlib server on loopback:
what it sends, what it gives back, and that an error status is an answer, not an exception."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from emulator.local import free_port
from tools.api_client import HttpApi

seen: list[dict[str, Any]] = []


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        answer: dict[str, Any]
        if self.path.endswith("/missing"):
            status, answer = 404, {"message": "no such post"}
        elif "after=2" in self.path:
            status, answer = 200, {"p3": {"id": "p3"}}
        elif self.path.startswith("/stage/posts?limit"):
            status, answer = 200, {"p1": {"id": "p1"}, "p2": {"id": "p2"}}
        else:
            status, answer = 201, {"echo": json.loads(body) if body else None}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if "limit" in self.path and "after" not in self.path:
            self.send_header("Link", '<posts?limit=2&after=2>; rel="next"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/stage/"
    server.shutdown()
    server.server_close()


def test_a_post_sends_json_under_the_base_path_and_gives_the_status_and_json_back(
    url: str,
) -> None:
    status, body = HttpApi(url).post("/posts", {"title": "Hello"})
    assert (status, body) == (201, {"echo": {"title": "Hello"}})
    [request] = seen
    assert (request["method"], request["path"]) == ("POST", "/stage/posts")
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"title": "Hello"}


def test_an_error_status_is_an_answer_with_its_body_not_an_exception(url: str) -> None:
    response = HttpApi(url).request("GET", "/posts/missing")
    assert response.status == 404
    assert response.json() == {"message": "no such post"}
    assert response.header("content-type") == "application/json"  # any case


def test_every_post_follows_the_next_links(url: str) -> None:
    status, posts = HttpApi(url).every_post(limit=2)
    assert (status, sorted(posts)) == (200, ["p1", "p2", "p3"])
    assert [r["path"] for r in seen] == ["/stage/posts?limit=2", "/stage/posts?limit=2&after=2"]


def test_a_closed_port_raises_connection_refused() -> None:
    with pytest.raises(ConnectionRefusedError):
        HttpApi(f"http://127.0.0.1:{free_port()}", timeout=2).get("/posts")


def test_only_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpApi("file:///etc/passwd")
