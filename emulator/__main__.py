"""``python -m emulator dev|serve|api``: the local stack (docs/local-stack.md)."""

import argparse
import logging
import os

from emulator.control import CONTROL_PORT_OFFSET
from emulator.local import (
    Emulator,
    chalice_local,
    stop_process_group,
    wait_for_http,
    wait_for_interrupt,
)


def _port(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"{variable} must be a TCP port number, not {value!r}")
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument(
        "mode",
        choices=["dev", "serve", "api"],
        help="dev: everything; serve: moto + stack + runner; api: chalice local only",
    )
    mode = parser.parse_args().mode
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("emulator").setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    aws_port, port = _port("AWS_PORT", 5000), _port("PORT", 8000)
    if port in (aws_port, aws_port + CONTROL_PORT_OFFSET) or aws_port + CONTROL_PORT_OFFSET > 65535:
        raise SystemExit(f"PORT {port} clashes with AWS_PORT {aws_port} and its control API (+1)")
    log = logging.getLogger("emulator")

    emulator = Emulator(aws_port) if mode in ("dev", "serve") else None
    api = None
    try:
        if emulator is not None:
            emulator.start()
            log.info("emulated AWS on %s", emulator.endpoint)
        if mode in ("dev", "api"):
            api = chalice_local(port, aws_port)
            wait_for_http(f"http://127.0.0.1:{port}/posts")
            log.info("blog API on http://127.0.0.1:%d (Ctrl+C stops everything)", port)
        wait_for_interrupt()
    finally:
        if api is not None:
            stop_process_group(api)
        if emulator is not None:
            emulator.stop()
        log.info("stopped")


if __name__ == "__main__":
    main()
