"""The one client for the blog's HTTP API, shared by tests, ``load/`` and ``benchmarks/``.

JSON in; status, headers and body out. Two ways to reach the API, one interface:

- ``HttpApi(url)``: over HTTP (the `make dev` stack, API Gateway on MiniStack), one connection
  per request (``Connection: close``), a timeout on each;
- ``InProcessApi(client)``: through ``chalice.test.Client``, in this process (no socket, no
  timeout); ``client`` stays at hand for requests the client would never build.

Every answer is a ``Response``, whatever its status: an error status is not an exception.
A connection refused, reset or timed out raises ``OSError`` (``TimeoutError`` for the last).
Standard library only.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
"""``GET /posts``'s ``Link`` header to the next page."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, its name in any case; None if absent."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        """The body as JSON; None for an empty body."""
        return json.loads(self.body) if self.body else None

    def next_link(self) -> str | None:
        """The target of ``Link: <...>; rel="next"``, as the API wrote it; None on the last page."""
        link = NEXT_LINK.match(self.header("Link") or "")
        return link.group(1) if link else None


class ApiClient:
    """The blog's API; a subclass says how a request reaches it (``_send``)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Response:
        raise NotImplementedError

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """``method path``; ``body`` as JSON (``str`` or ``bytes`` are sent as they are)."""
        sent = dict(headers or {})
        data: bytes | None = None
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        return self._send(method, path, sent, data, self.timeout if timeout is None else timeout)

    def get(self, path: str, *, timeout: float | None = None) -> tuple[int, Any]:
        """(status, JSON body)."""
        response = self.request("GET", path, timeout=timeout)
        return response.status, response.json()

    def post(self, path: str, body: Any, *, timeout: float | None = None) -> tuple[int, Any]:
        """(status, JSON body)."""
        response = self.request("POST", path, body, timeout=timeout)
        return response.status, response.json()

    def every_post(self, limit: int = 200) -> tuple[int, dict[str, Any]]:
        """The whole view: ``GET /posts`` is one page, so follow its ``Link: rel="next"``.

        (200, every post by id), or the first status other than 200 with the posts read so far.
        """
        posts: dict[str, Any] = {}
        path: str | None = f"/posts?limit={limit}"
        while path is not None:
            response = self.request("GET", path)
            if response.status != 200:
                return response.status, posts
            posts |= response.json()
            link = response.next_link()
            path = "/" + link.lstrip("/") if link else None
        return 200, posts


class HttpApi(ApiClient):
    """The API at ``url`` (``http://host:port`` and any base path, such as a stage's)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__(timeout)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._base = parts.path.rstrip("/")

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Response:
        connection = (
            http.client.HTTPSConnection(self._netloc, timeout=timeout)
            if self._scheme == "https"
            else http.client.HTTPConnection(self._netloc, timeout=timeout)
        )
        try:
            connection.request(
                method,
                self._base + "/" + path.lstrip("/") if path else self._base or "/",
                body=body,
                headers={"Connection": "close", **headers},
            )
            answer = connection.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()


class InProcessApi(ApiClient):
    """The API through ``chalice.test.Client`` (``client``), in this process."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Response:
        answer = self.client.http.request(method, path, headers=headers, body=body or b"")
        return Response(answer.status_code, dict(answer.headers), answer.body or b"")
