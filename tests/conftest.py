"""Shared fixtures: moto in-process, the infra template deployed into it, the real app.

The environment is set before ``app`` is imported: Chalice evaluates queue names and the stream
ARN in the decorators at import.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from emulator import moto_patches, stack
from emulator.config import stage_environment
from emulator.control import LocalConsumers
from emulator.local import build_runner
from emulator.moto_env import use_emulator
from emulator.runner import EventSourceRunner
from emulator.template import ROOT

use_emulator(stage_environment("test"))

from chalice.test import Client  # noqa: E402

import app  # noqa: E402
from functions import aws  # noqa: E402
from tests.helpers import PREFIX  # noqa: E402
from tools.package import package  # noqa: E402


@pytest.fixture
def moto() -> Iterator[None]:
    with moto_patches.applied(), mock_aws():
        aws.reset()
        yield
    aws.reset()


@pytest.fixture
def deployed(moto: None) -> stack.Stack:
    return stack.deploy(aws.client, PREFIX)


@pytest.fixture
def runner(deployed: stack.Stack) -> EventSourceRunner:
    return build_runner(app.app, aws.client, PREFIX, fast_retry=True)


@dataclass
class Api:
    """The HTTP API through ``chalice.test.Client``, with JSON in and out."""

    client: Client

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        response = self.client.http.post(
            path, headers={"Content-Type": "application/json"}, body=raw
        )
        return response.status_code, json.loads(response.body)

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.http.get(path)
        return response.status_code, json.loads(response.body)

    def every_post(self, limit: int = 200) -> tuple[int, dict[str, Any]]:
        """The whole view: ``GET /posts`` is one page, so follow its ``Link: rel="next"``."""
        posts: dict[str, Any] = {}
        path: str | None = f"/posts?limit={limit}"
        while path is not None:
            response = self.client.http.get(path)
            if response.status_code != 200:
                return response.status_code, posts
            posts |= json.loads(response.body)
            link = re.match(r'<([^>]+)>; rel="next"', response.headers.get("Link") or "")
            path = "/" + link.group(1).lstrip("/") if link else None
        return 200, posts


@pytest.fixture
def api(deployed: stack.Stack) -> Iterator[Api]:
    with Client(app.app, stage_name="test", project_dir=str(ROOT)) as client:
        yield Api(client)


@pytest.fixture
def consumers(runner: EventSourceRunner) -> LocalConsumers:
    return LocalConsumers(runner)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make package``'s template (about 10 s, once per run); the zip lies beside it."""
    return package(tmp_path_factory.mktemp("package"))
