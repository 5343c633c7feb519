"""moto's server, fit to carry a stack's load: kept-alive connections and a cached dispatch.

Every AWS call of the local stack goes through moto's threaded server, so its cost per request
is the floor under the stack's latency and the ceiling on its throughput. Three of its costs
are not AWS's and are mended here (see tests/integration/test_moto_serving.py):

**A connection and a thread per request.** Werkzeug's development server answers every request
with ``Connection: close``: each AWS call opens a TCP connection, and the server starts a thread
for it and, after the response, waits up to 10 ms for a request body nobody sends. AWS keeps
connections alive, and botocore pools them. ``KeepAliveHandler`` reads the request body whole
(``Content-Length``) before the application runs, so nothing is left to drain, writes the status
line, headers and body in one send with Nagle's algorithm off, and keeps the connection for the
next request unless the client asked to close it or sent a body it cannot delimit (chunked).

**The dispatch.** moto's server finds the service of every request by listing its own package
directory and trying some hundred URL patterns on the host it infers from the signature; the
answer depends only on that host, so ``apply()`` remembers it.

**The action's lookup.** moto lists a response class's methods (``inspect.getmembers``) on every
request to check that the action exists; a class's methods do not change while serving, so the
list is computed once per class.

**GetRecords.** moto builds each stream record already in DynamoDB's JSON form, then runs it
through its generic response serializer, which walks the API model for every attribute value:
about 2 ms a record, so the stream read was the dearest call of a write's path and its cost
grew with the batch. ``apply()`` writes the records as JSON directly, with moto's DynamoDB
encoder (the record's time as epoch seconds, binary values base64-encoded once).
"""

import functools
import io
import logging
from collections.abc import Iterable
from typing import Any

from moto.core import responses
from moto.core.utils import method_names_from_class
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

_LOG = logging.getLogger(__name__)
_LOOKUP = "method_names_from_class"  # moto.core.responses imports it by name
_FRAMING = ("content-length", "connection", "transfer-encoding")
_originals: dict[str, Any] = {}


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, with HTTP/1.1 keep-alive and one send per response."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = b"" if chunked else self.rfile.read(int(self.headers.get("Content-Length") or 0))
        environ = self.make_environ()  # a chunked body stays werkzeug's DechunkedInput
        if not chunked:
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            status, headers, payload = _call(self.server.app, environ)
        except Exception:
            _LOG.exception("moto failed on %s %s", self.command, self.path)
            status, headers, payload = "500 INTERNAL SERVER ERROR", [], b"Internal Server Error"
            self.close_connection = True
        keep = not (chunked or self.close_connection)
        head = [f"{self.protocol_version} {status}"]
        if self.command == "HEAD":  # the length of what a GET would return, and no body
            head += [f"{k}: {v}" for k, v in headers if k.lower() != "connection"]
            payload = b""
        else:
            head += [f"{k}: {v}" for k, v in headers if k.lower() not in _FRAMING]
            head.append(f"Content-Length: {len(payload)}")
        head.append(f"Connection: {'keep-alive' if keep else 'close'}")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        self.wfile.flush()
        self.close_connection = not keep

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: the stack's own logs say what happened, one line per request is noise."""


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI application to completion: its status, headers and whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    result: Iterable[bytes] = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], started[1], b"".join(chunks)


def server(host: str, port: int) -> BaseWSGIServer:
    """moto's application behind the kept-alive handler, threaded (one thread per connection)."""
    apply()
    return make_server(
        host,
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=KeepAliveHandler,
    )


def _get_records(self: DynamoDBStreamsHandler) -> str:
    limit = self._get_param("Limit")
    result = self.backend.get_records(self._get_param("ShardIterator"), limit or 1000)
    return dynamo_json_dump(result)  # moto's own encoder: times, and binary values nested in maps


def apply() -> None:
    """Cache moto's dispatch and action lookup; write stream records directly (idempotent)."""
    if _originals:
        return
    _originals["get_backend_for_host"] = DomainDispatcherApplication.get_backend_for_host
    _originals[_LOOKUP] = getattr(responses, _LOOKUP)
    _originals["get_records"] = DynamoDBStreamsHandler.get_records
    backend_for_host = _originals["get_backend_for_host"]

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_backend_by_host", {})
        if host not in cache:
            cache[host] = backend_for_host(self, host)
        return cache[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    setattr(responses, _LOOKUP, functools.cache(method_names_from_class))
    DynamoDBStreamsHandler.get_records = _get_records  # type: ignore[assignment,method-assign]


def remove() -> None:
    """Restore moto's own dispatch and action lookup (a no-op if not applied)."""
    if not _originals:
        return
    DomainDispatcherApplication.get_backend_for_host = _originals.pop("get_backend_for_host")  # type: ignore[method-assign]
    setattr(responses, _LOOKUP, _originals.pop(_LOOKUP))
    DynamoDBStreamsHandler.get_records = _originals.pop("get_records")  # type: ignore[method-assign]
