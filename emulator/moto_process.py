"""moto's server in a process of its own: ``python -m emulator.moto_process --port N``.

The runner executes every Lambda handler on threads of the emulator's process. With moto's
server in that process too, the server side of each AWS call and the client side of every
handler take turns on one interpreter lock, and the whole stack runs on one core. In its own
process, moto's server runs beside them on another core, as AWS runs beside Lambda.

The moto patches (``emulator/moto_patches.py``: the fixes, and the speed patches unless
``BLOG_MOTO_SPEED_PATCHES=off``) are applied here, where moto's backends live. It stops on
SIGINT or SIGTERM, and when the process that started it is gone.
"""

import argparse
import logging
import os
import signal
import threading


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port number: {value!r}")
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.moto_process", description=__doc__)
    parser.add_argument("--port", type=_port, required=True, help="listen on 127.0.0.1:PORT")
    port = parser.parse_args().port
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log

    from emulator import moto_patches, moto_serving

    moto_patches.apply()
    server = moto_serving.server("127.0.0.1", port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    while not stop.is_set() and os.getppid() == parent:  # an emulator killed leaves no orphan
        stop.wait(1)
    server.shutdown()


if __name__ == "__main__":
    main()
