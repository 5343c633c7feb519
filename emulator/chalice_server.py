"""``chalice local``, with a server that takes a client hanging up as the client leaving.

A browser drops connections it no longer needs (a poll it superseded, a page it left). The
socket then fails under chalice's server with ``BrokenPipeError`` or ``ConnectionResetError``,
and ``socketserver`` prints a traceback for it: noise that looks like a crash. This server
logs one debug line for a disconnect and leaves every other error's traceback as it was.

In ``make dev`` (``AWS_PORT`` set), a request that may have written (any method but ``GET``,
``HEAD`` and ``OPTIONS``) then wakes the runner's stream pollers (``emulator/wake.py``).

``python -m emulator.chalice_server --stage local --host H --port P`` is
``chalice local --stage local --host H --port P --no-autoreload``: the same configuration
(``.chalice/config.json``), the same request handler, the same threaded server otherwise.
It never reloads: the runner in the emulator process imports the same code and would not
reload with it, so one restart of `make dev` picks up changes everywhere at once.
"""

import argparse
import logging
import os
import sys
from typing import Any

from chalice import local
from chalice.app import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.validate import validate_routes

from emulator import wake
from emulator.control import CONTROL_PORT_OFFSET
from emulator.template import ROOT

logger = logging.getLogger("emulator.chalice_server")
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class DisconnectTolerantServer(local.ThreadedHTTPServer):
    """chalice's threaded server; a client that hung up is a normal end of its request."""

    wake_port: int | None = None  # where the runner listens for writes (emulator/wake.py)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            logger.debug("client %s hung up: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class WakingRequestHandler(local.ChaliceRequestHandler):
    """chalice's request handler; after a request that may have written, wakes the runner."""

    server: DisconnectTolerantServer

    def _handle_and_wake(self) -> None:
        self._generic_handle()
        if self.server.wake_port is not None:
            wake.ring(self.server.wake_port)

    do_POST = do_PUT = do_PATCH = do_DELETE = _handle_and_wake


def create_server(
    app: Chalice, config: Config, host: str, port: int, wake_port: int | None = None
) -> local.LocalDevServer:
    """What ``chalice.local.create_local_server`` builds, with the tolerant server class and,
    given ``wake_port``, a handler that wakes the runner's stream pollers after each write."""
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice
    server = local.LocalDevServer(
        app,
        config,
        host,
        port,
        handler_cls=WakingRequestHandler,
        server_cls=DisconnectTolerantServer,
    )
    server.server.wake_port = wake_port
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.chalice_server")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args(argv)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"  # as the chalice command sets it
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    os.chdir(ROOT)
    config = CLIFactory(str(ROOT), environ=os.environ).create_config_obj(
        chalice_stage_name=arguments.stage
    )
    validate_routes(config.chalice_app.routes)
    aws_port = os.environ.get("AWS_PORT")  # set by `make dev`: its runner listens beside it
    wake_port = int(aws_port) + CONTROL_PORT_OFFSET if aws_port else None
    server = create_server(config.chalice_app, config, arguments.host, arguments.port, wake_port)
    server.serve_forever()


if __name__ == "__main__":
    main()
