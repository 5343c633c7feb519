"""The packaged stack on MiniStack, deployed once per run by ``make deploy-local``'s own code.

``lane`` runs ``python -m emulator.deploy_local`` (what ``make deploy-local`` runs after
packaging) on a free loopback port with the run's package, reads the three lines it prints,
and at the end stops it with Ctrl+C (SIGINT) and checks that no process of it is left and that
its ``TMPDIR`` is gone. If MiniStack cannot start or the stack cannot deploy, every test of the
lane fails with what it printed: nothing is skipped.

MiniStack lacks stream failure handling and the purge rule: moto and the runner cover those
(tests/e2e). Schedules cannot be fired on demand, so tests invoke the scheduled function.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from emulator import ministack
from emulator.deploy_local import client_factory
from emulator.local import free_port
from emulator.runner import ClientFactory
from emulator.template import ROOT
from functions import names
from functions.settings import VARIABLES
from operations import deployed
from tools.api_client import HttpApi

STACK = "blog-ministack"
DEPLOY_TIMEOUT = 300
T = TypeVar("T")


@dataclass(frozen=True)
class Lane:
    url: str
    """The API's stage URL, ending with ``/``."""
    endpoint: str
    client: ClientFactory
    resources: deployed.Resources
    consumers: deployed.StackConsumers

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return HttpApi(self.url, timeout=120).post(path, body)

    def get(self, path: str) -> tuple[int, Any]:
        return HttpApi(self.url, timeout=120).get(path)

    def queue_depth(self, url: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def eventually(check: Callable[[], T | None], timeout: float = 120, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what} (last: {value!r})")
        time.sleep(0.5)


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    for line in stream:
        into.append(line)


def _printed(process: subprocess.Popen[bytes], errors: list[bytes]) -> list[str]:
    """The three lines deploy-local prints once the stack is up; fails with its stderr if not."""
    assert process.stdout is not None
    lines: list[str] = []
    while len(lines) < 3:
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            time.sleep(0.5)
            pytest.fail(
                f"deploy-local exited with {process.returncode} before deploying:\n"
                + b"".join(errors).decode(errors="replace")[-6000:]
            )
        lines.append(line.decode().strip())
    return lines


@pytest.fixture(scope="session")
def lane(packaged: Path) -> Iterator[Lane]:
    port = free_port()
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in VARIABLES
    }
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "emulator.deploy_local",
            "--port",
            str(port),
            "--stack",
            STACK,
            "--template",
            str(packaged),
        ],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=_collect, args=(process.stderr, errors), daemon=True)
    reader.start()
    timer = threading.Timer(DEPLOY_TIMEOUT, lambda: os.killpg(process.pid, signal.SIGINT))
    timer.start()
    try:
        url_line, endpoint_line, status_line = _printed(process, errors)
        timer.cancel()
        assert url_line.startswith("API: ")
        endpoint = endpoint_line.removeprefix("AWS_ENDPOINT_URL=")
        assert status_line.endswith(f"blog --stack {STACK} status")
        client = client_factory(endpoint)
        resources = deployed.find(client, STACK)
        _prepare(client, resources)
        yield Lane(
            url=url_line.removeprefix("API: "),
            endpoint=endpoint,
            client=client,
            resources=resources,
            consumers=deployed.StackConsumers(client, resources),
        )
    finally:
        timer.cancel()
        os.killpg(process.pid, signal.SIGINT)  # Ctrl+C
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # leave nothing running, then fail
            process.wait()
            raise
        reader.join(timeout=10)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of deploy-local or MiniStack is left
    left = sorted(ministack.scratch_root().glob(ministack.scratch_prefix(port) + "*"))
    assert left == [], f"deploy-local left {left} behind"
    assert process.returncode == 0, b"".join(errors).decode(errors="replace")[-4000:]


def _prepare(client: ClientFactory, resources: deployed.Resources) -> None:
    """The catch-up schedules are off: tests invoke the functions (or run ``blog``), so a
    scheduled run can't race their counts."""
    for consumer in names.CONSUMERS:
        function = f"{consumer.title()}CatchUp"
        client("events").disable_rule(Name=resources.physical_ids[f"{function}{function}Event"])
