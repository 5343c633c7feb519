"""The stack in this process, as ``tests/conftest.py`` builds it, for the in-process benchmarks.

``in_process_stack()``: moto in-process (``mock_aws`` with the project's moto fix), the infra
template deployed into it, the event-source runner (``drain()``) and the HTTP API through
``chalice.test.Client``, with a realistic archive segment size (1,000). The process environment
is restored on exit, so a smoke test can run it inside pytest.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.environment import scoped_environ
from tools.api_client import InProcessApi

BENCH_ENVIRONMENT = {
    # The test stage's 10 positions per bucket would make every range read span many buckets;
    # production's default is 1,000.
    "ARCHIVE_SEGMENT_SIZE": "1000",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass
class InProcess:
    api: InProcessApi
    runner: Any  # emulator.runner.EventSourceRunner
    consumers: Any  # emulator.control.LocalConsumers
    output: Output
    """What the functions wrote to stdout (their log lines and metrics), counted, not kept."""

    @property
    def settings(self) -> Any:  # functions.settings.Settings, read now (as the code does)
        from functions import settings

        return settings.load()


@contextmanager
def in_process_stack(overrides: Mapping[str, str] | None = None) -> Iterator[InProcess]:
    """A fresh moto with the stack deployed, the runner (``drain()``) and the API."""
    from emulator.config import stage_environment
    from emulator.moto_env import use_emulator

    output = Output()
    with (
        scoped_environ(drop=("AWS_ENDPOINT_URL",)),
        _quiet_moto(),
        warnings.catch_warnings(),
        # the functions' metrics are log lines on stdout (CloudWatch embedded metric format)
        contextlib.redirect_stdout(output),
        _loggers_writing_to(output),
    ):
        use_emulator(stage_environment("test"))
        os.environ.update({**BENCH_ENVIRONMENT, **(overrides or {})})
        warnings.filterwarnings("ignore", "Tried to parse AWS", UserWarning)
        # After the environment: Chalice evaluates queue names and the stream ARN at import.
        from chalice.test import Client
        from moto import mock_aws

        import app
        from emulator import moto_patches, stack
        from emulator.control import LocalConsumers
        from emulator.local import build_runner
        from emulator.template import ROOT as PROJECT
        from functions import aws, settings

        with moto_patches.applied(), mock_aws():
            aws.reset()
            try:
                prefix = settings.load().prefix
                stack.deploy(aws.client, prefix)
                runner = build_runner(app.app, aws.client, prefix, fast_retry=True)
                with Client(app.app, stage_name="test", project_dir=str(PROJECT)) as client:
                    # The client applies the test stage's variables (segment size 10) around
                    # each request only; the routes never read the segment size.
                    yield InProcess(InProcessApi(client), runner, LocalConsumers(runner), output)
            finally:
                aws.reset()
                gc.unfreeze()


@contextmanager
def _loggers_writing_to(output: Output) -> Iterator[None]:
    """Point the log handlers a previous stack's ``Output`` holds at this one: a logger keeps
    the stdout it was built with (at the first import of the functions), so without this the
    lines of a second stack in the same process would be counted by the first."""
    moved = []
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and isinstance(handler.stream, Output):
                moved.append((handler, handler.setStream(output)))
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def settle_memory() -> None:
    """Collect garbage, then freeze what is alive (the seeded tables: millions of moto objects)
    out of the collector's sight, so that a full collection over them does not land in a timed
    region at random. ``in_process_stack`` unfreezes on exit."""
    gc.collect()
    gc.freeze()


class Output(io.TextIOBase):
    """A sink for the functions' stdout: the bytes written, and each CloudWatch metric its
    embedded-metric-format lines define (namespace, name and dimension values), kept apart."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.metrics: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        if '"_aws"' in text:
            for line in text.splitlines():
                self._metrics_of(line)
        return len(text)

    def _metrics_of(self, line: str) -> None:
        try:
            document = json.loads(line)
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            for dimensions in directive.get("Dimensions", [[]]):
                values = tuple(sorted((d, str(document.get(d))) for d in dimensions))
                for metric in directive.get("Metrics", []):
                    self.metrics.add((directive["Namespace"], metric["Name"], values))


@contextmanager
def _quiet_moto() -> Iterator[None]:
    """Hide moto's "No Moto CloudFormation support for ..." (logged at each stack describe)."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        moto_logger.setLevel(level)
