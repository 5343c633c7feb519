"""The control API of the local stack: pause, resume and fire the runner's sources from outside.

In ``make dev`` the event-source runner lives in the emulator process, while operators work from
another process (a CLI, a test, ``curl``). This small JSON API, served by the emulator on
127.0.0.1 at ``AWS_PORT + 1``, lets them pause and resume a source as disabling and enabling an
event source mapping does on AWS, run a schedule now, and read each source's counters.

``Consumers`` is the one interface for both sides: ``LocalConsumers`` wraps the runner in its own
process and ``RemoteConsumers`` calls the API over HTTP. A pause takes effect from the runner's
next poll; a batch already being delivered finishes, as on AWS.
"""

import functools
import json
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from emulator.runner import EventSourceRunner

logger = logging.getLogger("emulator.control")

CONTROL_PORT_OFFSET = 1
HOST = "127.0.0.1"
TIMEOUT_SECONDS = 5.0
_ACTION = re.compile(r"/sources/([^/]+)/(pause|resume|fire)")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def control_url(aws_port: int) -> str:
    """The control API of the stack whose emulated AWS is on ``aws_port``: at AWS_PORT + 1."""
    return f"http://{HOST}:{aws_port + CONTROL_PORT_OFFSET}"


class SourceState(BaseModel):
    """One source of the runner: whether it is paused and what it has done since it started."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str  # "sqs", "dynamodb-stream" or "schedule"
    paused: bool
    invocations: int
    records: int
    failures: int


_STATE = TypeAdapter(SourceState)
_STATES = TypeAdapter(dict[str, SourceState])
T = TypeVar("T")


class Consumers(Protocol):
    """The runner's sources, in this process or another. An unknown name raises ``KeyError``."""

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def is_paused(self, name: str) -> bool: ...

    def fire(self, name: str) -> None:
        """Run a schedule now; ``ValueError`` if the source is not a schedule."""

    def describe(self) -> dict[str, SourceState]: ...


class LocalConsumers:
    """``Consumers`` over an ``EventSourceRunner`` in this process."""

    def __init__(self, runner: EventSourceRunner) -> None:
        self._runner = runner

    def pause(self, name: str) -> None:
        self._runner.pause(name)

    def resume(self, name: str) -> None:
        self._runner.resume(name)

    def is_paused(self, name: str) -> bool:
        return self._runner.sources[name].paused

    def fire(self, name: str) -> None:
        # The runner would poll a queue or stream too, even a paused one: only schedules fire.
        kind = self._runner.sources[name].kind
        if kind != "schedule":
            raise ValueError(f"{name!r} is a {kind} source, not a schedule: only schedules fire")
        self._runner.fire(name)

    def describe(self) -> dict[str, SourceState]:
        return {
            name: SourceState(
                name=name,
                kind=source.kind,
                paused=source.paused,
                invocations=source.stats.invocations,
                records=source.stats.records,
                failures=source.stats.failures,
            )
            for name, source in self._runner.sources.items()
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    """The routes. Every answer, error or not, is JSON."""

    timeout = TIMEOUT_SECONDS  # a client that connects and says nothing does not hold a thread

    def __init__(self, consumers: LocalConsumers, *args: Any) -> None:
        self._consumers = consumers  # before super().__init__, which handles the request
        super().__init__(*args)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own rejections (a malformed request line, an unknown verb) as JSON."""
        self.close_connection = True
        status = HTTPStatus(code)
        self._send(status, _error(status.name.lower(), message or status.phrase))

    def _dispatch(self) -> None:
        self._discard_body()
        allow: str | None = None
        try:
            status, body, allow = self._route(urllib.parse.urlsplit(self.path).path)
        except Exception:
            logger.exception("control API: %s %s failed", self.command, self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body = _error("internal_error", "the control API failed; see the emulator's log")
        self._send(status, body, allow)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _route(self, path: str) -> tuple[HTTPStatus, Any, str | None]:
        if path == "/sources":
            if self.command != "GET":
                return self._not_allowed("GET")
            states = self._consumers.describe()
            return HTTPStatus.OK, {n: s.model_dump() for n, s in states.items()}, None
        match = _ACTION.fullmatch(path)
        if match is None:
            message = f"no route {path}: GET /sources, POST /sources/<name>/pause|resume|fire"
            return HTTPStatus.NOT_FOUND, _error("unknown_route", message), None
        if self.command != "POST":
            return self._not_allowed("POST")
        name, action = urllib.parse.unquote(match.group(1)), match.group(2)
        c = self._consumers
        known = c.describe()
        if name not in known:
            message = f"no source named {name!r}; the sources are: {', '.join(known) or 'none'}"
            return HTTPStatus.NOT_FOUND, _error("unknown_source", message), None
        run = {"pause": c.pause, "resume": c.resume, "fire": c.fire}[action]
        try:
            run(name)
        except ValueError as error:
            return HTTPStatus.CONFLICT, _error("not_a_schedule", str(error)), None
        return HTTPStatus.OK, c.describe()[name].model_dump(), None

    def _not_allowed(self, allow: str) -> tuple[HTTPStatus, Any, str]:
        message = f"{self.command} is not allowed on {self.path}: use {allow}"
        return HTTPStatus.METHOD_NOT_ALLOWED, _error("method_not_allowed", message), allow

    def _discard_body(self) -> None:
        """Read any body sent (no route takes one), so closing the socket cannot reset it."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= 64 * 1024:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _send(self, status: int, body: Any, allow: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if allow is not None:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class ControlServer:
    """The control API over ``consumers``, on 127.0.0.1:``port`` (0: any free port)."""

    def __init__(self, consumers: LocalConsumers, port: int) -> None:
        self._consumers, self._port = consumers, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._port if self._server is None else self._server.server_address[1]
        return f"http://{HOST}:{port}"

    def start(self) -> None:
        self._server = ThreadingHTTPServer(
            (HOST, self._port), functools.partial(_Handler, self._consumers)
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name="control-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = self._thread = None


class ControlUnavailable(RuntimeError):
    """Nothing answers at the control API's URL: the local stack is not running."""


class ControlError(RuntimeError):
    """The control API answered with an error that has no better exception (a 405, a 500)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    @classmethod
    def of(cls, request: urllib.request.Request, error: urllib.error.HTTPError) -> "ControlError":
        try:
            detail = json.loads(error.read())["error"]
            return cls(error.code, str(detail["code"]), str(detail["message"]))
        except (ValueError, TypeError, KeyError):
            message = f"{request.method} {request.full_url}: {error.reason}"
            return cls(error.code, "unexpected_answer", message)


class RemoteConsumers:
    """``Consumers`` over the control API of a local stack in another process."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
            raise ValueError(f"the control API is plain HTTP on loopback only, not {url}")
        self.url, self._timeout = url.rstrip("/"), timeout

    def pause(self, name: str) -> None:
        self._post(name, "pause")

    def resume(self, name: str) -> None:
        self._post(name, "resume")

    def is_paused(self, name: str) -> bool:
        return self.describe()[name].paused

    def fire(self, name: str) -> None:
        self._post(name, "fire")

    def describe(self) -> dict[str, SourceState]:
        return self._call("GET", "/sources", _STATES)

    def _post(self, name: str, action: str) -> None:
        path = f"/sources/{urllib.parse.quote(name, safe='')}/{action}"
        try:
            self._call("POST", path, _STATE)
        except ControlError as error:
            if error.code == "unknown_source":
                unknown = KeyError(name)
                unknown.add_note(error.message)
                raise unknown from None
            if error.code == "not_a_schedule":
                raise ValueError(error.message) from None
            raise

    def _call(self, method: str, path: str, answer: TypeAdapter[T]) -> T:
        # S310: the URL is http://<loopback>, checked in __init__
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            raise ControlError.of(request, error) from None
        except OSError as error:  # refused or unreachable, or silent past the timeout
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise ControlUnavailable(
                    f"the local stack at {self.url} did not answer {method} {path} within "
                    f"{self._timeout:g} s; it may still take effect"
                ) from error
            raise ControlUnavailable(
                f"the local stack is not running at {self.url} ({reason}): "
                "start it with `make dev` (or `make emulator`)"
            ) from error
        try:
            return answer.validate_json(body)
        except ValidationError as error:  # something else listens there
            raise ControlError(
                status, "unexpected_answer", f"{request.full_url}: {error}"
            ) from None
