"""The `make dev` stack for the benchmarks that measure it from outside, over HTTP.

``local_stack()`` starts ``python -m emulator dev`` (what ``make dev`` runs) on free loopback
ports with the emulator's own ``start_dev_stack``, waits for it with ``wait_for_http`` and stops
it with Ctrl+C (SIGINT, then SIGKILL) through ``stop_process_group``, whatever happens.
``stack_status()`` reads the running stack's ``blog status`` from this process.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.environment import scoped_environ
from benchmarks.machine import ROOT
from benchmarks.report import log
from tools.api_client import HttpApi


@dataclass(frozen=True)
class LocalStack:
    api: HttpApi
    aws_port: int
    log_path: Path
    pid: int
    """The emulator process (moto's server and the runner); ``chalice local`` is its child."""

    @property
    def url(self) -> str:
        return self.api.url


@contextmanager
def local_stack(startup_timeout: float | None = None, root: Path = ROOT) -> Iterator[LocalStack]:
    """``python -m emulator dev`` on free loopback ports; Ctrl+C (then SIGKILL) on the way out.

    ``root`` is the checkout whose code runs (a worktree of another commit, to compare). The
    start-up wait defaults to 120 s scaled by the load per core (at most 600 s): a loaded
    machine starts slowly, and a smoke test must not fail for that. The stack's log is kept
    (and its path logged) if it did not stop on Ctrl+C.
    """
    from emulator.local import start_dev_stack, stop_process_group, wait_for_http

    if startup_timeout is None:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        startup_timeout = min(600.0, 120.0 * max(1.0, load))
    with tempfile.NamedTemporaryFile(prefix="bench-stack-", suffix=".log", delete=False) as file:
        log_path = Path(file.name)
    with log_path.open("wb") as output:
        # chalice local logs every request: a file never fills up
        dev = start_dev_stack(stderr=output, root=root)
        clean = False
        try:
            wait_for_http(f"{dev.url}/posts", timeout=startup_timeout, process=dev.process)
            yield LocalStack(HttpApi(dev.url), dev.aws_port, log_path, dev.process.pid)
            clean = True
        finally:
            stop_process_group(dev.process, signal.SIGINT, wait=30)
            if clean and dev.process.returncode != -signal.SIGKILL:
                log_path.unlink(missing_ok=True)
            else:
                log(f"the stack's log is kept: {log_path}")


@contextmanager
def stack_status(stack: LocalStack) -> Iterator[Callable[[], Any]]:
    """``ops.status`` of the running stack, as ``blog status`` reads it. Within the block this
    process's AWS clients (``functions.aws``) point at the stack; the environment is restored
    after."""
    from emulator.config import stage_environment
    from emulator.local import STAGE, endpoint
    from emulator.moto_env import use_emulator

    with scoped_environ():
        use_emulator(stage_environment(STAGE), endpoint(stack.aws_port))
        from emulator.control import RemoteConsumers, control_url
        from functions import aws
        from operations import ops

        aws.reset()
        consumers = RemoteConsumers(control_url(stack.aws_port))
        try:
            yield lambda: ops.status(consumers)
        finally:
            aws.reset()


def create_post(stack: LocalStack, title: str) -> str:
    """``POST /posts``; the new post's id. ``RuntimeError`` if the API refused it."""
    status, post = stack.api.post("/posts", {"title": title})
    if status != 201:
        raise RuntimeError(f"POST /posts answered {status}: {post}")
    return str(post["id"])


def shown(stack: LocalStack, post_id: str) -> dict[str, Any] | None:
    """``GET /posts/{id}``: the post as the view shows it, or None while it is not there."""
    status, post = stack.api.get(f"/posts/{post_id}")
    if status == 404:
        return None
    if status != 200:
        raise RuntimeError(f"GET /posts/{post_id} answered {status}: {post}")
    return dict(post)
