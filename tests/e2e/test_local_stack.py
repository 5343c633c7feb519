"""Acceptance 6: the README's curl lines perform the seed scenario on the `make dev` stack.

Starts ``python -m emulator dev`` (what ``make dev`` runs after installing) on free loopback
ports, runs the README's seed block with bash, then stops the stack with Ctrl+C (SIGINT) and
checks that no process of it is left.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.local import wait_for_http
from emulator.template import ROOT

MARKER = "<!-- seed-scenario:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def readme_seed_block() -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(MARKER) :]
    match = re.search(r"```bash\n(.*?)```", after, re.DOTALL)
    assert match is not None, "the README's seed-scenario block is missing"
    return match.group(1)


def json_documents(text: str) -> list[Any]:
    """The JSON documents curl printed one after another."""
    decoder, documents, index = json.JSONDecoder(), list[Any](), 0
    while index < len(text.rstrip()):
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
        while index < len(text) and text[index].isspace():
            index += 1
    return documents


@pytest.fixture
def local_stack() -> Iterator[str]:
    port, aws_port = free_port(), free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(PORT=str(port), AWS_PORT=str(aws_port))
    stack = subprocess.Popen(
        [sys.executable, "-m", "emulator", "dev"],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/posts", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl+C
        try:
            stack.wait(timeout=30)
        finally:
            _, errors = stack.communicate()
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.pid, 0)  # nothing of the stack's process group is left
    assert b"Traceback" not in errors, errors.decode()[-2000:]


def test_readme_curl_lines_perform_the_seed_scenario(local_stack: str) -> None:
    result = subprocess.run(  # noqa: S603
        ["/bin/bash", "-euo", "pipefail", "-c", readme_seed_block()],
        env={**os.environ, "BLOG": local_stack},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *_, post = json_documents(result.stdout)
    statuses = {c["content"]: c["status"] for c in post["comments"]}
    assert statuses == {"Lovely weather": "approved", "I love orange": "rejected"}
