"""moto's server for the local stack, and the speed patch of moto's request dispatch.

``server()`` is moto's threaded werkzeug server, as moto's own ``ThreadedMotoServer`` builds it.
Its speed patch ``dispatch-cache`` (what it buys: ``benchmarks/results/SPEED_PATCHES.md``)
remembers moto's service for each host (moto lists its package and tries some hundred URL
patterns per request) and the actions of each response class, and draws a request id in one
call. tests/integration/test_moto_serving.py shows it answers as moto does.
"""

import functools
import string
from typing import Any

from moto.core import responses
from moto.core.utils import method_names_from_class
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from emulator.moto_patches import Patch, Wrap, register

_LOOKUP = "method_names_from_class"  # moto.core.responses imports it by name
_REQUEST_ID = "gen_amzn_requestid_long"  # the same
_ALPHABET = string.ascii_letters + string.digits


def _request_id(headers: dict[str, Any] | None = None) -> str:
    """moto's request id (52 letters and digits from its seedable random), in one draw."""
    request_id = "".join(mock_random.choices(_ALPHABET, k=52))
    if isinstance(headers, dict):
        headers["x-amzn-requestid"] = request_id
    return request_id


def _caching_dispatch(backend_for_host: Any) -> Any:
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_backend_by_host", {})
        if host not in cache:
            cache[host] = backend_for_host(self, host)
        return cache[host]

    return get_backend_for_host


def server(host: str, port: int) -> BaseWSGIServer:
    """moto's application on werkzeug's threaded server, as moto's own server runs it."""
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


register(
    Patch(
        "dispatch-cache",
        "speed",
        lambda: [
            (DomainDispatcherApplication, "get_backend_for_host", Wrap(_caching_dispatch)),
            (responses, _LOOKUP, functools.cache(method_names_from_class)),
            (responses, _REQUEST_ID, _request_id),
        ],
    )
)
