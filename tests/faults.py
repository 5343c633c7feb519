"""Fault injection at the AWS client: a botocore hook that makes chosen calls fail.

The call fails before it leaves the client, as it would with the service unreachable; every
other call, and every other hop, is real.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from functions import aws


@contextmanager
def failing(
    service: str,
    operation: str,
    error: Exception,
    times: int | None = None,
    when: Callable[[dict[str, Any]], bool] = lambda params: True,
) -> Iterator[list[dict[str, Any]]]:
    """Make ``service.operation`` raise ``error`` (``times`` times, or always) while open.

    Yields the list of the failed calls' parameters.
    """
    failed: list[dict[str, Any]] = []
    event = f"provide-client-params.{service}.{operation}"  # the call's own parameters

    def fail(params: dict[str, Any], **_: Any) -> None:
        if when(params) and (times is None or len(failed) < times):
            failed.append(params)
            raise error

    client = aws.client(service)
    client.meta.events.register(event, fail)
    try:
        yield failed
    finally:
        client.meta.events.unregister(event, fail)
