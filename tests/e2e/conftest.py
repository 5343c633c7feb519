"""The `make dev` stack for end-to-end tests that need a real one (curl lines, the browser).

``local_stack`` starts ``python -m emulator dev`` (what ``make dev`` runs after installing) on
free loopback ports in its own process group, once per test module; it stops it with Ctrl+C
(SIGINT) and checks that no process of it is left and that nothing logged a traceback.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from emulator.local import free_aws_port, free_port, wait_for_http
from emulator.template import ROOT
from functions import names


@dataclass(frozen=True)
class LocalStack:
    url: str
    aws_port: int


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    """Read the stack's stderr as it comes (chalice local logs every request there), so a full
    pipe never blocks it."""
    for line in stream:
        into.append(line)


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    port = free_port()
    aws_port = free_aws_port(avoid=port)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(PORT=str(port), AWS_PORT=str(aws_port))
    stack = subprocess.Popen(
        [sys.executable, "-m", "emulator", "dev"],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert stack.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=_collect, args=(stack.stderr, errors), daemon=True)
    reader.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/posts", timeout=90)
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
    assert b"Traceback" not in log, log.decode(errors="replace")[-2000:]


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
