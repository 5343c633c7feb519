"""``chalice local``, with a server that takes a client hanging up as the client leaving.

A browser drops connections it no longer needs (a poll it superseded, a page it left). The
socket then fails under chalice's server with ``BrokenPipeError`` or ``ConnectionResetError``,
and ``socketserver`` prints a traceback for it: noise that looks like a crash. This server
logs one debug line for a disconnect and leaves every other error's traceback as it was.

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

from emulator.template import ROOT

logger = logging.getLogger("emulator.chalice_server")
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class DisconnectTolerantServer(local.ThreadedHTTPServer):
    """chalice's threaded server; a client that hung up is a normal end of its request."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            logger.debug("client %s hung up: %r", client_address, error)
            return
        super().handle_error(request, client_address)


def create_server(app: Chalice, config: Config, host: str, port: int) -> local.LocalDevServer:
    """What ``chalice.local.create_local_server`` builds, with the tolerant server class."""
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app, config, host, port, server_cls=DisconnectTolerantServer)


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
    server = create_server(config.chalice_app, config, arguments.host, arguments.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
