"""boto3 clients, created lazily and cached per (service, endpoint, region).

Never at import: tests start moto first, and the local stack points ``AWS_ENDPOINT_URL`` at
the emulator before the first call. ``reset()`` forgets them (tests call it between mocks).
"""

import os
import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,  # the local runner calls from a thread per batch in flight
)
_LOCK = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    """One session for every client: each new one would parse botocore's endpoint data again."""
    return boto3.session.Session()


@cache
def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    with _LOCK:  # a session is not thread-safe; its clients are
        return _session().client(service, endpoint_url=endpoint, region_name=region, config=_CONFIG)


def client(service: str) -> Any:
    return _client(
        service,
        os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    )


def reset() -> None:
    _client.cache_clear()
    _session.cache_clear()
