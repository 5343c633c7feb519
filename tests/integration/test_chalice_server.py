"""A client that hangs up is not an error worth a traceback.

A browser drops requests it no longer needs; under plain ``chalice local`` each one printed a
``BrokenPipeError`` / ``ConnectionResetError`` traceback, which failed the stack fixture's
no-traceback check. ``emulator.chalice_server`` (what ``make dev`` runs) takes it calmly.
"""

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.control import CONTROL_PORT_OFFSET
from emulator.local import free_port, wait_for_http
from emulator.template import ROOT
from emulator.wake import WakeListener
from tools.api_client import HttpApi

DROPS = 10
SERVERS = {
    "plain chalice local": [
        str(Path(sys.executable).parent / "chalice"),
        "local",
        "--no-autoreload",
    ],
    "emulator.chalice_server": [sys.executable, "-m", "emulator.chalice_server"],
}


def hang_up_mid_request(port: int) -> None:
    """Send a whole request, then reset the connection before the answer is written."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def stderr_after_dropped_requests(command: list[str]) -> str:
    """Serve the page, drop ``DROPS`` requests, serve it again; what the server printed."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
        [*command, "--stage", "local", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=120)
        for _ in range(DROPS):
            hang_up_mid_request(port)
        page = HttpApi(f"http://127.0.0.1:{port}", timeout=30).request("GET", "/")
        assert page.status == 200  # the server goes on serving
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    return stderr


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_a_dropped_connection_prints_no_traceback(name: str) -> None:
    stderr = stderr_after_dropped_requests(SERVERS[name])
    if name == "plain chalice local":
        # the scenario does provoke the traceback this fixes
        assert "Connection reset by peer" in stderr or "Broken pipe" in stderr, stderr[-2000:]
    else:
        assert "Traceback" not in stderr, stderr[-2000:]
        assert stderr.count('"GET / HTTP/1.1" 200') >= 1


def test_a_request_that_may_write_wakes_the_runner_and_a_read_does_not() -> None:
    # GIVEN a wake listener at the port `make dev`'s runner would use, and the server told so
    rung: list[int] = []
    listener_port = free_port()
    listener = WakeListener(listener_port, lambda: rung.append(1))
    assert listener.start()
    port = free_port()
    environment = {**os.environ, "AWS_PORT": str(listener_port - CONTROL_PORT_OFFSET)}
    server = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
        [*SERVERS["emulator.chalice_server"], "--stage", "local", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=120)
        # WHEN it serves reads, then a write (refused as invalid: a write all the same)
        api = HttpApi(f"http://127.0.0.1:{port}", timeout=30)
        for _ in range(3):
            assert api.request("GET", "/").status == 200
        time.sleep(0.5)
        reads = len(rung)
        assert api.request("POST", "/posts", {}).status == 422
        deadline = time.monotonic() + 10
        while not rung and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.terminate()
        server.communicate(timeout=30)
        listener.stop()
    # THEN the reads woke nothing and the write woke the runner once
    assert reads == 0
    assert rung == [1]
