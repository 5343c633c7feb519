"""moto's server for the local stack, and the speed patches of its request path.

``server()`` is moto's threaded werkzeug server. Its speed patches (what each buys:
``benchmarks/results/SPEED_PATCHES.md``): ``keep-alive`` serves with ``KeepAliveHandler``
(HTTP/1.1 kept-alive connections, the request body read whole, one send per answer, a plain
header block read without the email package) instead of werkzeug's one connection per request;
``flask-bypass`` answers a ``POST`` without an ``Origin`` (every call botocore makes) from moto's
view directly, adding the one header flask-cors would, instead of through Flask;
``dispatch-cache`` remembers moto's service for each host and the actions of each response
class, and draws a request id in one call; ``get-records`` writes stream records as JSON with
moto's DynamoDB encoder instead of walking the API model. tests/integration/test_moto_serving.py
shows each answers as moto does.
"""

import email.parser
import functools
import http.client
import io
import logging
import re
import string
import sys
from collections.abc import Iterable
from http import HTTPStatus
from http.client import HTTPMessage
from typing import Any

from botocore.exceptions import ClientError
from flask import Flask, Response
from moto.core import responses
from moto.core.utils import convert_to_flask_response, method_names_from_class
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.moto_api import recorder
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import (
    BackendRequest,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import BadRequestKeyError, HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from emulator.moto_patches import Patch, Wrap, register

_LOG = logging.getLogger(__name__)
_LOOKUP = "method_names_from_class"  # moto.core.responses imports it by name
_REQUEST_ID = "gen_amzn_requestid_long"  # the same
_ALPHABET = string.ascii_letters + string.digits
_FRAMING = ("content-length", "connection", "transfer-encoding")
_ALLOW_ORIGIN = "Access-Control-Allow-Origin"
_MAXLINE, _MAXHEADERS = http.client._MAXLINE, http.client._MAXHEADERS  # type: ignore[attr-defined]
# A header line the email package would store as it is: a token, a colon, no fold, no defect.
_PLAIN_HEADER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n\Z")


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
            status, headers, payload = _answer(self.server.app, environ)
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

    def parse_request(self) -> bool:
        """http.server's parse, reading a plain header block without the email package.

        ``http.client.parse_headers`` runs every request's headers through the email package's
        feed parser, a tenth of moto's time for a small call. A request line of the form
        ``METHOD /path HTTP/1.1`` followed by ``Name: value`` lines is read directly into the
        same ``HTTPMessage``; any other request line goes to http.server's own parse, and any
        other header block (folded lines, no colon) to the email package, as before.
        """
        words = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] != "HTTP/1.1" or words[1].startswith("//"):
            return bool(super().parse_request())
        self.command, self.path, self.request_version = words
        self.requestline = " ".join(words)
        self.close_connection = False
        lines = _header_lines(self.rfile)
        if isinstance(lines, tuple):  # too long, or too many
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, *lines)
            self.close_connection = True
            return False
        self.headers = _headers(lines, self.MessageClass)
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        if self.headers.get("Expect", "").lower() == "100-continue":
            return bool(self.handle_expect_100())
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: the stack's own logs say what happened, one line per request is noise."""


def _header_lines(rfile: Any) -> list[bytes] | tuple[str, str]:
    """The header block's lines, or what http.server answers when one of http.client's limits
    is passed."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            return "Line too long", str(http.client.LineTooLong("header line"))
        lines.append(line)
        if len(lines) > _MAXHEADERS:
            return "Too many headers", f"got more than {_MAXHEADERS} headers"
        if line in (b"\r\n", b"\n", b""):
            return lines


def _headers(lines: list[bytes], message_class: type[HTTPMessage]) -> HTTPMessage:
    text = [line.decode("iso-8859-1") for line in lines[:-1]]
    if not all(_PLAIN_HEADER.match(line) for line in text):
        return email.parser.Parser(_class=message_class).parsestr("".join(text) + "\r\n")
    message = message_class()
    for line in text:
        name, value = line.split(":", 1)
        message[name] = value.lstrip(" \t").rstrip("\r\n")
    return message


def _call(app: Any, environ: dict[str, Any]) -> "_Answer":
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


_Answer = tuple[str, list[tuple[str, str]], bytes]


def _direct_answer(app: Any, environ: dict[str, Any]) -> _Answer:
    """moto's answer: run directly for a ``POST`` without an ``Origin``, else through Flask.

    The direct path finds the view Flask would (the backend's URL map), runs what moto's view
    runs (``convert_to_flask_response``), builds the same response, and adds the one header
    flask-cors adds to a request without an ``Origin`` (when moto installed it, and unless the
    answer has it already, as flask-cors does).
    """
    found = _direct_view(app, environ) if isinstance(app, DomainDispatcherApplication) else None
    if found is None:
        return _call(app, environ)
    view, cors = found
    request = BackendRequest(environ)
    try:
        recorder._record_request(request)
        result = view.callback(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    except BadRequestKeyError:  # Flask in debug mode, as moto runs it, lets this one through
        raise
    except HTTPException as exc:  # what Flask answers for any other, then processes as a response
        response = Response.force_type(exc, environ)  # type: ignore[arg-type]
    else:
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response = Response(response=content, status=status, headers=headers)
    if cors and not response.headers.get(_ALLOW_ORIGIN):
        response.headers.add(_ALLOW_ORIGIN, "*")
    return _call(response, environ)


def _direct_view(
    dispatcher: DomainDispatcherApplication, environ: dict[str, Any]
) -> tuple[convert_to_flask_response, bool] | None:
    if (
        environ.get("REQUEST_METHOD") != "POST"
        or "HTTP_ORIGIN" in environ
        or "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK" in environ
    ):
        return None
    return _view(dispatcher.get_application(environ), environ.get("PATH_INFO", "/"))


@functools.lru_cache(maxsize=1024)
def _view(app: Flask, path: str) -> tuple[convert_to_flask_response, bool] | None:
    """The view Flask would run for a POST to ``path`` (moto's rules match on path alone), and
    whether flask-cors would process its answer; ``None`` where only Flask will do."""
    if getattr(app, "service", None) == "moto_api":  # its dashboard renders Flask templates
        return None
    try:
        endpoint, _ = app.url_map.bind("moto").match(path, method="POST")
    except HTTPException:  # no rule, or a redirect: Flask's answer
        return None
    view = app.view_functions.get(endpoint)
    if not isinstance(view, convert_to_flask_response):
        return None
    hooks = [hook.__name__ for hook in app.after_request_funcs.get(None, [])]
    if app.before_request_funcs or hooks not in ([], ["cors_after_request"]):
        return None  # a hook the direct path would not run
    return view, bool(hooks)


def _get_records(self: DynamoDBStreamsHandler) -> str:
    limit = self._get_param("Limit")
    result = self.backend.get_records(self._get_param("ShardIterator"), limit or 1000)
    return dynamo_json_dump(result)  # moto's own encoder: times, and binary values nested in maps


def _request_id(headers: dict[str, Any] | None = None) -> str:
    """moto's request id (52 letters and digits from its seedable random), in one draw."""
    request_id = "".join(mock_random.choices(_ALPHABET, k=52))
    if isinstance(headers, dict):
        headers["x-amzn-requestid"] = request_id
    return request_id


_answer = _call
"""How ``KeepAliveHandler`` answers: through Flask, or (``flask-bypass``) directly."""
_handler: type[MotoRequestHandler] = MotoRequestHandler
"""moto's own request handler, or (``keep-alive``) ``KeepAliveHandler``."""


def _caching_dispatch(backend_for_host: Any) -> Any:
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_backend_by_host", {})
        if host not in cache:
            cache[host] = backend_for_host(self, host)
        return cache[host]

    return get_backend_for_host


def server(host: str, port: int) -> BaseWSGIServer:
    """moto's application on a threaded server (a thread per connection), with the request
    handler the patches chose."""
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=_handler)


_MODULE = sys.modules[__name__]
register(Patch("keep-alive", "speed", lambda: [(_MODULE, "_handler", KeepAliveHandler)]))
register(Patch("flask-bypass", "speed", lambda: [(_MODULE, "_answer", _direct_answer)]))
register(
    Patch(
        "dispatch-cache",
        "speed",
        lambda: [
            (DomainDispatcherApplication, "get_backend_for_host", Wrap(_caching_dispatch)),
            (responses, _LOOKUP, functools.cache(method_names_from_class)),
            (responses, _REQUEST_ID, _request_id),
        ],
    )
)
register(
    Patch("get-records", "speed", lambda: [(DynamoDBStreamsHandler, "get_records", _get_records)])
)
