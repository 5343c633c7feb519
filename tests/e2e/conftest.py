"""The `make dev` stack for end-to-end tests that need a real one (curl lines, the browser).

``local_stack`` starts ``python -m emulator dev`` (what ``make dev`` runs after installing) on
free loopback ports in its own process group, once per test module; it stops it with Ctrl+C
(SIGINT) and checks that no process of it is left and that nothing logged a traceback.

Start-up takes a few seconds on an idle machine and much longer on a loaded one, so the
fixture waits in proportion to the machine (``startup_budget``) while the stack is alive, and
a stack that died or never answered fails with the end of its stderr.
"""

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from emulator.local import start_dev_stack
from functions import names
from tools.api_client import HttpApi


@dataclass(frozen=True)
class LocalStack:
    url: str
    aws_port: int


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    """Read the stack's stderr as it comes (chalice local logs every request there), so a full
    pipe never blocks it."""
    for line in stream:
        into.append(line)


STARTUP_SECONDS = 60
"""Start-up time allowed on an idle machine (it takes 5 to 10 s there)."""
STARTUP_CEILING = 600
"""However loaded the machine, a stack that has not answered by then is broken."""


def startup_budget() -> float:
    """``STARTUP_SECONDS`` scaled by how oversubscribed the CPUs are now (load per core)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(STARTUP_CEILING, STARTUP_SECONDS * max(1.0, load))


def _tail(errors: list[bytes], size: int = 4000) -> str:
    return b"".join(errors).decode(errors="replace")[-size:]


def wait_until_serving(stack: subprocess.Popen[bytes], url: str, errors: list[bytes]) -> None:
    """Wait for ``url`` to answer while the stack is alive, for the current ``startup_budget``.

    The budget is measured again on every try, so load that arrives during start-up extends it.
    """
    started = time.monotonic()
    while time.monotonic() - started < startup_budget():
        if stack.poll() is not None:
            pytest.fail(
                f"the stack exited with {stack.returncode} while starting:\n{_tail(errors)}"
            )
        try:
            HttpApi(url, timeout=5).request("GET", "")  # any answer will do
            return
        except OSError:
            time.sleep(0.5)
    waited = time.monotonic() - started
    load = os.getloadavg()[0]
    pytest.fail(f"{url} did not answer in {waited:.0f} s (load {load:.1f}):\n{_tail(errors)}")


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    dev = start_dev_stack(stderr=subprocess.PIPE)
    stack, port, aws_port = dev.process, dev.port, dev.aws_port
    assert stack.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=_collect, args=(stack.stderr, errors), daemon=True)
    reader.start()
    try:
        wait_until_serving(stack, f"http://127.0.0.1:{port}/posts", errors)
        yield LocalStack(f"http://127.0.0.1:{port}", aws_port)
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl+C
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)  # leave nothing running, then fail
            stack.wait()
            raise
        finally:
            reader.join(timeout=10)
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.pid, 0)  # nothing of the stack's process group is left
    log = b"".join(errors)
    assert b"Traceback" not in log, _tail(errors)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def service_logs() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(consumer) for consumer in names.CONSUMERS]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
