"""A nudge from ``chalice local`` to the runner's stream pollers: a route has just written.

An idle stream shard looks for new records every ``interval`` (50 ms) in ``make dev``, so a
write made through the API waited 25 ms on average before the publisher saw it, once per hop
through the pipeline. The runner already wakes its shards itself after a queue's batch (a
consumer's handler may have written to its outbox); a route's write happens in ``chalice
local``'s process, so after every request that may write (any method but ``GET``, ``HEAD`` and
``OPTIONS``) that process sends one UDP datagram to the emulator's process, at the control
API's port number, and the shards look at once.

Only when to look changes, never which records are read or their order (a shard that looks
sooner may take smaller batches): a datagram lost, or sent while nothing listens, costs the
wait it would have saved, and the shard still looks every ``interval``. On AWS
nothing of this exists: Lambda's pollers look at each shard about four times a second.
"""

import logging
import socket
import threading
from collections.abc import Callable

logger = logging.getLogger("emulator.wake")

HOST = "127.0.0.1"
_SIGNAL = b"written"
_LOOK_FOR_STOP_SECONDS = 0.2
_sender: socket.socket | None = None
_sender_lock = threading.Lock()


def ring(port: int) -> None:
    """Tell the listener on ``port``, if any, that a write was made (never blocks or raises)."""
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        sender = _sender
    try:
        sender.sendto(_SIGNAL, (HOST, port))
    except OSError:  # nobody listens, or the buffer is full: the next look finds the write
        logger.debug("no wake sent to port %d", port, exc_info=True)


class WakeListener:
    """Calls ``wake`` for every datagram received on 127.0.0.1:``port`` (UDP), on a thread."""

    def __init__(self, port: int, wake: Callable[[], None]) -> None:
        self._port, self._wake = port, wake
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> bool:
        """Listen; ``False`` (and a warning) if the port is taken: the shards then only poll."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            listener.bind((HOST, self._port))
        except OSError as error:
            listener.close()
            logger.warning("writes will not wake the stream pollers: %s", error)
            return False
        listener.settimeout(_LOOK_FOR_STOP_SECONDS)
        self._socket = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="wake-listener", daemon=True)
        self._thread.start()
        return True

    def _listen(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                self._socket.recv(64)
            except TimeoutError:
                continue
            self._wake()

    def stop(self) -> None:
        if self._socket is None or self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._socket.close()
        self._socket = self._thread = None
