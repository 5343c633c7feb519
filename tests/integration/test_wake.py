"""emulator.wake: a route's write wakes the runner's stream pollers, and nothing else changes."""

import logging
import socket
import threading
import time

import pytest

from emulator import wake
from emulator.local import free_port
from emulator.wake import WakeListener


def wait_for(rung: list[int], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(rung) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_every_ring_wakes_once_and_stop_ends_the_listener() -> None:
    # GIVEN a listener
    rung: list[int] = []
    port = free_port()
    listener = WakeListener(port, lambda: rung.append(1))
    assert listener.start()
    # WHEN three writes ring it
    for _ in range(3):
        wake.ring(port)
    wait_for(rung, 3)
    listener.stop()
    # THEN it woke three times, and stopped, it leaves no thread and frees the port
    assert rung == [1, 1, 1]
    assert "wake-listener" not in [t.name for t in threading.enumerate()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((wake.HOST, port))


def test_a_ring_nobody_hears_is_not_an_error() -> None:
    wake.ring(free_port())  # nothing listens: the shard's next look finds the write


def test_a_taken_port_leaves_the_pollers_to_their_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the port taken by another listener
    port = free_port()
    first = WakeListener(port, lambda: None)
    assert first.start()
    try:
        # WHEN a second listener starts on it
        with caplog.at_level(logging.WARNING, logger="emulator.wake"):
            started = WakeListener(port, lambda: None).start()
    finally:
        first.stop()
    # THEN it says so and does not start: the shards still poll every interval
    assert started is False
    assert "will not wake the stream pollers" in caplog.text
