"""The control API pauses, resumes and fires the runner's sources from another process.

A throwaway app registers a probe on the stack's query queue and a one-minute schedule. A
``ControlServer`` serves its runner on a free port and every test drives it over HTTP through
``RemoteConsumers``, as an operator's CLI does against ``make dev``.
"""

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.app import Blueprint, Chalice, CloudWatchEvent, Rate, SQSEvent

from emulator.control import (
    Consumers,
    ControlError,
    ControlServer,
    ControlUnavailable,
    LocalConsumers,
    RemoteConsumers,
    SourceState,
    control_url,
)
from emulator.runner import EventSourceRunner
from emulator.stack import Stack
from functions import aws, names
from tests.helpers import PREFIX, queue_url

queues = Blueprint(__name__)
schedules = Blueprint(__name__)
delivered: list[str] = []
ticks: list[str] = []


@queues.on_sqs_message(queue=names.queue(PREFIX, "query"), batch_size=10, name="queue_probe")
def on_message(event: SQSEvent) -> None:
    delivered.extend(record.body for record in event)


@schedules.schedule(Rate(1, unit=Rate.MINUTES), name="tick")
def tick(event: CloudWatchEvent) -> None:
    ticks.append(event.detail_type)


@dataclass
class Controlled:
    runner: EventSourceRunner
    url: str
    remote: Consumers  # annotated with the Protocol: mypy checks RemoteConsumers against it


def serve(app: Chalice, client: Any) -> Iterator[Controlled]:
    delivered.clear()
    ticks.clear()
    runner = EventSourceRunner(app, client, "us-east-1")
    server = ControlServer(LocalConsumers(runner), port=0)
    server.start()
    try:
        yield Controlled(runner, server.url, RemoteConsumers(server.url))
    finally:
        server.stop()


@pytest.fixture
def on_stack(deployed: Stack) -> Iterator[Controlled]:
    """The probe queue and the schedule, on the stack deployed into moto."""
    app = Chalice("control-probe")
    app.register_blueprint(queues)
    app.register_blueprint(schedules)
    yield from serve(app, aws.client)


def no_aws(service: str) -> Any:
    raise AssertionError(f"a schedule needs no {service} client")


@pytest.fixture
def scheduled() -> Iterator[Controlled]:
    """The schedule alone: no AWS needed."""
    app = Chalice("control-tick")
    app.register_blueprint(schedules)
    yield from serve(app, no_aws)


def send(body: str) -> None:
    aws.client("sqs").send_message(
        QueueUrl=queue_url(names.queue(PREFIX, "query")), MessageBody=body
    )


def raw(method: str, url: str) -> tuple[int, dict[str, str], Any]:
    """A request the client would never send: status, headers and the JSON body."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 (a loopback test server)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_paused_queue_is_not_polled_until_it_is_resumed(on_stack: Controlled) -> None:
    # GIVEN the probe queue paused through the control API, and a message on it
    on_stack.remote.pause("queue_probe")
    send("hello")
    # WHEN the runner polls everything it may
    # THEN nothing is delivered
    assert on_stack.runner.drain() == 0
    assert delivered == []
    # WHEN the queue is resumed
    on_stack.remote.resume("queue_probe")
    # THEN the message is delivered
    assert on_stack.runner.drain() == 1
    assert delivered == ["hello"]


def test_describe_shows_the_pause_and_the_counters(on_stack: Controlled) -> None:
    # GIVEN one message delivered, then the probe queue paused
    send("hello")
    on_stack.runner.drain()
    on_stack.remote.pause("queue_probe")
    # WHEN an operator describes the sources
    states = on_stack.remote.describe()
    # THEN the queue is paused with its counters, and the schedule runs untouched
    assert states == {
        "queue_probe": SourceState(
            name="queue_probe", kind="sqs", paused=True, invocations=1, records=1, failures=0
        ),
        "tick": SourceState(
            name="tick", kind="schedule", paused=False, invocations=0, records=0, failures=0
        ),
    }
    assert on_stack.remote.is_paused("queue_probe")
    assert not on_stack.remote.is_paused("tick")
    # AND the runner's own process sees the same
    local: Consumers = LocalConsumers(on_stack.runner)
    assert local.describe() == states
    assert local.is_paused("queue_probe")


def test_fire_runs_a_schedule_now(scheduled: Controlled) -> None:
    # WHEN an operator fires the schedule
    scheduled.remote.fire("tick")
    # THEN its handler ran once, with a scheduled event
    assert ticks == ["Scheduled Event"]
    assert scheduled.remote.describe()["tick"].invocations == 1


def test_only_a_schedule_fires(on_stack: Controlled) -> None:
    # GIVEN a paused queue with a message
    on_stack.remote.pause("queue_probe")
    send("hello")
    # WHEN an operator fires the queue
    # THEN it is refused, and the paused queue was not polled
    with pytest.raises(ValueError, match="not a schedule"):
        on_stack.remote.fire("queue_probe")
    assert delivered == []
    assert on_stack.remote.describe()["queue_probe"].invocations == 0


@pytest.mark.parametrize("action", ["pause", "resume", "fire", "is_paused"])
def test_an_unknown_source_is_a_key_error(scheduled: Controlled, action: str) -> None:
    # WHEN an operator names a source the app does not have
    with pytest.raises(KeyError) as raised:
        getattr(scheduled.remote, action)("nope")
    # THEN the error names it (and, from the server, the sources there are)
    assert raised.value.args == ("nope",)
    if action != "is_paused":
        assert raised.value.__notes__ == ["no source named 'nope'; the sources are: tick"]


def test_an_unreachable_control_api_says_how_to_start_the_stack() -> None:
    # GIVEN a control server that has stopped: nothing listens on its port
    server = ControlServer(LocalConsumers(EventSourceRunner(Chalice("none"), no_aws, "x")), 0)
    server.start()
    url = server.url
    server.stop()
    # WHEN an operator asks it anything
    # THEN the error says the stack is not running there and how to start it
    with pytest.raises(ControlUnavailable, match="make dev") as raised:
        RemoteConsumers(url).pause("tick")
    assert f"the local stack is not running at {url}" in str(raised.value)


def test_a_silent_control_api_is_a_timeout_not_a_stopped_stack() -> None:
    # GIVEN a port that accepts connections and never answers
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        # WHEN an operator asks it anything
        # THEN the error says it did not answer in time, not that the stack is stopped
        with pytest.raises(ControlUnavailable, match=r"did not answer POST .* within 0.2 s"):
            RemoteConsumers(url, timeout=0.2).resume("tick")


def test_the_control_api_is_next_to_emulated_aws() -> None:
    assert control_url(5000) == "http://127.0.0.1:5001"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/sources/tick/pause", 405, "method_not_allowed"),
        ("DELETE", "/sources/tick/fire", 405, "method_not_allowed"),
        ("POST", "/sources", 405, "method_not_allowed"),
        ("GET", "/nowhere", 404, "unknown_route"),
        ("POST", "/sources/tick/explode", 404, "unknown_route"),
        ("BREW", "/sources", 501, "not_implemented"),
    ],
)
def test_a_malformed_request_is_a_json_error(
    scheduled: Controlled,
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    status: int,
    code: str,
) -> None:
    # WHEN a client sends a request no route takes
    answer_status, headers, body = raw(method, scheduled.url + path)
    # THEN the answer is a JSON error, and a 405 says which method is allowed
    assert (answer_status, body["error"]["code"]) == (status, code)
    assert headers["Content-Type"] == "application/json"
    assert ("Allow" in headers) == (status == 405)
    # AND the source was left alone, and nothing was written to stderr
    assert ticks == []
    assert capsys.readouterr().err == ""


def test_a_failure_is_logged_and_answered_as_json_without_a_traceback(
    scheduled: Controlled, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a runner that fails
    def boom(name: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(scheduled.runner, "fire", boom)
    # WHEN an operator fires the schedule
    with pytest.raises(ControlError) as raised:
        scheduled.remote.fire("tick")
    # THEN the answer is a JSON 500 that names no internals, and the traceback is in the log
    assert (raised.value.status, raised.value.code) == (500, "internal_error")
    assert "boom" not in str(raised.value)
    assert "RuntimeError: boom" in caplog.text
