"""The local stack: moto, the infra template deployed into it, the runner and chalice local."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.app import Chalice

from emulator import stack, template
from emulator.config import stage_environment
from emulator.control import CONTROL_PORT_OFFSET, ControlServer, LocalConsumers
from emulator.moto_env import EMULATOR_ENVIRONMENT, REGION, use_emulator
from emulator.runner import ClientFactory, EventSourceRunner
from emulator.template import ROOT
from emulator.wake import WakeListener
from functions import names
from functions.settings import VARIABLES as settings_variables

logger = logging.getLogger("emulator")
STAGE = "local"
RESUME_HOOKS = {f"{consumer}_consumer": f"{consumer}_catch_up" for consumer in names.CONSUMERS}
"""When a consumer resumes, it catches up from the archive at once."""


def stream_failure_sink(client: ClientFactory, prefix: str) -> Callable[[dict[str, Any]], None]:
    """The stream mapping's on-failure destination: the template's publisher-failures queue."""
    queue = names.resource(prefix, names.PUBLISHER_FAILURES_QUEUE)

    def send(failure: dict[str, Any]) -> None:
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(failure))

    return send


def sqs_concurrency(path: Path = template.FUNCTIONS) -> dict[str, int]:
    """Each function's SQS ``ScalingConfig.MaximumConcurrency``, by logical id, where set."""
    found: dict[str, int] = {}
    for logical, resource in template.load(path)["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            scaling = event.get("Properties", {}).get("ScalingConfig", {})
            if "MaximumConcurrency" in scaling:
                found[logical] = int(scaling["MaximumConcurrency"])
    return found


def build_runner(
    app: Chalice, client: ClientFactory, prefix: str, *, fast_retry: bool
) -> EventSourceRunner:
    """The runner for ``app``, with its event-source filters and SQS concurrency from
    ``infra/functions.yaml`` (the decorator's ``maximum_concurrency`` where the template sets
    none, the runner's default where neither does)."""
    from chalice.utils import to_cfn_resource_name  # here: it imports click (`blog` starts faster)

    filters, concurrency = template.event_filters(), sqs_concurrency()
    logical = {source.name: to_cfn_resource_name(source.name) for source in app.event_sources}
    return EventSourceRunner(
        app,
        client,
        REGION,
        fast_retry=fast_retry,
        on_stream_failure=stream_failure_sink(client, prefix),
        on_resume=RESUME_HOOKS,
        stream_filters={n: filters[id_] for n, id_ in logical.items() if id_ in filters},
        sqs_concurrency={n: concurrency[id_] for n, id_ in logical.items() if id_ in concurrency},
    )


def endpoint(aws_port: int) -> str:
    return f"http://127.0.0.1:{aws_port}"


class Emulator:
    """moto's server on 127.0.0.1 (a process of its own), the stack deployed into it, and the
    runner polling it."""

    def __init__(self, aws_port: int) -> None:
        self.endpoint = endpoint(aws_port)
        self._aws_port = aws_port
        use_emulator(stage_environment(STAGE), self.endpoint)
        self._server: subprocess.Popen[bytes] | None = None
        self.runner: EventSourceRunner | None = None
        self._control_port = aws_port + CONTROL_PORT_OFFSET
        self.control: ControlServer | None = None
        self.wake: WakeListener | None = None

    def start(self) -> None:
        from functions import aws, settings

        self._server = moto_server(self._aws_port)
        wait_for_http(self.endpoint, process=self._server)
        aws.reset()
        prefix = settings.load().prefix
        deployed = stack.deploy(aws.client, prefix)
        logger.info("stack %s deployed: %d resources", deployed.name, len(deployed.physical_ids))

        import app  # after the stage's environment is set: decorators read it at import

        self.runner = build_runner(app.app, aws.client, prefix, fast_retry=False)
        self.runner.start()
        logger.info("event-source runner polling: %s", ", ".join(self.runner.sources))
        self.control = ControlServer(LocalConsumers(self.runner), self._control_port)
        self.control.start()
        logger.info("control API on %s", self.control.url)
        self.wake = WakeListener(self._control_port, self.runner.wake_streams)
        if self.wake.start():
            logger.info("routes' writes wake the stream pollers (UDP port %d)", self._control_port)

    def stop(self) -> None:
        if self.wake is not None:
            self.wake.stop()
        if self.control is not None:
            self.control.stop()
        if self.runner is not None:
            self.runner.stop()
        if self._server is not None:
            stop_process_group(self._server)


def moto_server(aws_port: int) -> subprocess.Popen[bytes]:
    """moto's server (``emulator.moto_process``) in its own process group, on ``aws_port``."""
    return subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "emulator.moto_process", "--port", str(aws_port)],
        cwd=ROOT,
        start_new_session=True,
    )


def chalice_local(port: int, aws_port: int) -> subprocess.Popen[bytes]:
    """``chalice local --stage local`` in its own process group, pointed at the emulator.

    It runs through ``emulator.chalice_server``, whose server takes a client that hung up
    (a browser dropping a request) as a normal disconnect rather than printing a traceback.
    ``AWS_PORT`` tells the local operations endpoints (``operations/ops_api.py``) where the
    runner's control API is (``AWS_PORT + 1``).
    """
    inherited = {k: v for k, v in os.environ.items() if k not in settings_variables}
    environment = {
        **inherited,
        **EMULATOR_ENVIRONMENT,
        "AWS_ENDPOINT_URL": endpoint(aws_port),
        "AWS_PORT": str(aws_port),
    }
    return subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [
            sys.executable,
            "-m",
            "emulator.chalice_server",
            "--stage",
            STAGE,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
    )


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_aws_port(avoid: int) -> int:
    """A free port whose successor (the runner's control API) is free too."""
    while True:
        port = free_port()
        if port + 1 < 65536 and avoid not in (port, port + 1) and is_free(port + 1):
            return port


@dataclass(frozen=True)
class DevStack:
    """``python -m emulator dev`` started on free loopback ports, in its own process group."""

    process: subprocess.Popen[bytes]
    port: int
    aws_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_dev_stack(stderr: Any = subprocess.DEVNULL, root: Path = ROOT) -> DevStack:
    """What ``make dev`` runs, on free ports (PORT, and AWS_PORT with its successor free), with
    no AWS_ variable of the caller's; ``stderr`` as ``subprocess.Popen`` takes it.

    The caller waits for it (``wait_for_http(stack.url + "/posts", process=stack.process)``)
    and stops it (``stop_process_group``): each reports start-up failures its own way.
    """
    port = free_port()
    aws_port = free_aws_port(avoid=port)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(PORT=str(port), AWS_PORT=str(aws_port))
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "dev"],
        cwd=root,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return DevStack(process, port, aws_port)


def wait_for_http(
    url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``url`` answers; fail at once if ``process`` (the one serving it) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: its server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback only)
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def stop_process_group(
    process: subprocess.Popen[bytes], stop: signal.Signals = signal.SIGTERM, wait: float = 10
) -> None:
    """Send ``stop`` to the process group, and SIGKILL it if it has not ended ``wait`` s later."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, stop)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_interrupt() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1)
