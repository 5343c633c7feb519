"""The local stack's operations over HTTP, for the web page's operations panel.

Routes (all JSON, errors as ``{"error": {"code", "message", "details"?}}``):

- ``GET /ops/status``: each consumer (subscribed, paused, queue and DLQ depth, watermark vs
  archive head) and the unsent outbox records with the age of the oldest;
- ``POST /ops/outage/{consumer}/start`` with ``{"mode": "pause" | "unsubscribe" | "purge"}``;
- ``POST /ops/outage/{consumer}/end``: resubscribe, catch up from the archive, resume;
- ``POST /ops/rebuild/{consumer}``: start a blue/green rebuild in the background (202);
- ``GET /ops/rebuild/{consumer}``: its progress ``{running, done, total, report | error}``;
- ``POST /ops/sweep``: run the outbox sweeper now.

They exist only in the ``local`` stage: ``app.py`` registers this Blueprint when
``BLOG_LOCAL_OPS=1`` (set by that stage in ``.chalice/config.json``), with a lazy import, so a
deployed package never imports ``operations`` or ``emulator``. They run in ``chalice local``'s
process and reach the event-source runner through its control API on ``AWS_PORT + 1``
(``AWS_PORT`` is passed by the launcher; default 5000, as for the ``blog`` command).
"""

import logging
import os
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict

from emulator.control import ControlError, ControlUnavailable, RemoteConsumers, control_url
from functions import names
from functions.http import ANY_CONTENT_TYPE, JSON_HEADERS, HttpError, json_errors, parse_body
from operations import ops

bp = Blueprint(__name__)
logger = logging.getLogger("operations.ops_api")

AWS_PORT_VARIABLE = "AWS_PORT"
DEFAULT_AWS_PORT = 5000
SWEEPER = "outbox_sweeper"


class OutageStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ops.Mode


class RebuildProgress(BaseModel):
    consumer: str
    running: bool = False
    done: int = 0
    total: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None


def consumers() -> RemoteConsumers:
    """The runner's sources, through the control API of the stack on ``AWS_PORT``."""
    raw = os.environ.get(AWS_PORT_VARIABLE, str(DEFAULT_AWS_PORT))
    if not raw.isdigit() or not 0 < int(raw) < 65535:
        raise HttpError(500, "bad_configuration", f"{AWS_PORT_VARIABLE} is not a port: {raw!r}")
    return RemoteConsumers(control_url(int(raw)))


def known(consumer: str) -> str:
    """``consumer`` if it exists; 404 if not."""
    if consumer not in names.CONSUMERS:
        raise HttpError(
            404,
            "unknown_consumer",
            f"no consumer {consumer!r}; the consumers are: {', '.join(names.CONSUMERS)}",
        )
    return consumer


def rebuildable(consumer: str) -> str:
    """``consumer`` if it has a view to rebuild: 404 if unknown, 409 if it has none."""
    if known(consumer) != ops.REBUILDABLE:
        raise HttpError(
            409,
            "not_rebuildable",
            f"only the {ops.REBUILDABLE} view is rebuilt; {consumer} recovers by catch-up",
        )
    return consumer


class Rebuilds:
    """Rebuilds running in background threads of this process, one at a time per consumer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: dict[str, RebuildProgress] = {}
        self._threads: dict[str, threading.Thread] = {}

    def get(self, consumer: str) -> RebuildProgress:
        with self._lock:
            current = self._progress.get(consumer, RebuildProgress(consumer=consumer))
            return current.model_copy()

    def start(self, consumer: str) -> RebuildProgress:
        with self._lock:
            if consumer in self._progress and self._progress[consumer].running:
                raise HttpError(409, "rebuild_running", f"{consumer} is already being rebuilt")
            self._progress[consumer] = RebuildProgress(
                consumer=consumer, running=True, started_at=time.time()
            )
            thread = threading.Thread(
                target=self._run, args=(consumer,), name=f"rebuild-{consumer}", daemon=True
            )
            self._threads[consumer] = thread
            thread.start()
            return self._progress[consumer].model_copy()

    def join(self, timeout: float | None = None) -> None:
        """Wait for every rebuild started so far (tests)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _update(self, consumer: str, **changes: Any) -> None:
        with self._lock:
            self._progress[consumer] = self._progress[consumer].model_copy(update=changes)

    def _run(self, consumer: str) -> None:
        def progress(done: int, total: int) -> None:
            self._update(consumer, done=done, total=total)

        try:
            report = ops.rebuild(progress)
        except Exception as error:
            logger.exception("rebuild of %s failed", consumer)
            self._update(consumer, running=False, finished_at=time.time(), error=str(error))
        else:
            self._update(
                consumer, running=False, finished_at=time.time(), report=report.model_dump()
            )


rebuilds = Rebuilds()


def _stack_error(error: Exception) -> HttpError | None:
    """What an operation raises, as a JSON error the page can show."""
    if isinstance(error, ControlUnavailable):
        return HttpError(503, "stack_unavailable", str(error))
    if isinstance(error, ops.PurgeRefused):
        return HttpError(409, "purge_refused", str(error))
    if isinstance(error, ControlError | BotoCoreError | ClientError):
        logger.warning("operation failed: %s", error)
        return HttpError(502, "upstream_error", f"the local stack failed: {error}")
    return None


ops_errors = json_errors(translate=_stack_error)


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=JSON_HEADERS)


@bp.route("/ops/status", methods=["GET"], cors=True, content_types=ANY_CONTENT_TYPE)
@ops_errors
def ops_status() -> Any:
    return ops.status(consumers()).model_dump()


@bp.route("/ops/outage/{consumer}/start", methods=["POST"], cors=True)
@ops_errors
def ops_outage_start(consumer: str) -> Any:
    body = parse_body(bp.current_request, OutageStart)
    ops.outage_start(consumers(), known(consumer), body.mode)
    return {"consumer": consumer, "mode": body.mode, "outage": "started"}


@bp.route("/ops/outage/{consumer}/end", methods=["POST"], cors=True)
@ops_errors
def ops_outage_end(consumer: str) -> Any:
    report = ops.outage_end(consumers(), known(consumer))
    return {"consumer": consumer, "outage": "ended", "report": report.model_dump()}


@bp.route("/ops/rebuild/{consumer}", methods=["POST"], cors=True)
@ops_errors
def ops_rebuild_start(consumer: str) -> Any:
    return _json(rebuilds.start(rebuildable(consumer)).model_dump(), status=202)


@bp.route("/ops/rebuild/{consumer}", methods=["GET"], cors=True, content_types=ANY_CONTENT_TYPE)
@ops_errors
def ops_rebuild_progress(consumer: str) -> Any:
    return rebuilds.get(rebuildable(consumer)).model_dump()


@bp.route("/ops/sweep", methods=["POST"], cors=True)
@ops_errors
def ops_sweep() -> Any:
    consumers().fire(SWEEPER)
    return {"fired": SWEEPER}
