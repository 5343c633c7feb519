"""Shared fixtures: moto in-process, the infra template deployed into it, the real app.

The environment is set before ``app`` is imported: Chalice evaluates queue names and the stream
ARN in the decorators at import.
"""

from collections.abc import Iterator
from pathlib import Path

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
from tools.api_client import InProcessApi  # noqa: E402
from tools.package import package  # noqa: E402

Api = InProcessApi
"""The HTTP API through ``chalice.test.Client``; ``api.client`` for raw requests."""


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
