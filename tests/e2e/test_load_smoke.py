"""The load generator, in small: 5 seconds of writes through a query outage.

``python -m load.generator`` runs against the `make dev` stack started by ``local_stack``
(``tests/e2e/conftest.py``), pauses the query consumer for two of its five seconds, and must
report every write found in the view afterwards; its report must agree with the view, read
independently. Nothing here bounds time or throughput: on a loaded machine the generator may
write less, and that is not a failure (rates are measured in ``benchmarks/``).
``make load`` runs the full minute (load/README.md).
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from emulator.template import ROOT
from load.generator import TokenBucket, plan_of
from tests.e2e.conftest import LocalStack
from tools.api_client import HttpApi

RATE, SECONDS = 8, 5


def test_five_seconds_of_load_through_an_outage_lose_nothing(local_stack: LocalStack) -> None:
    result = subprocess.run(  # noqa: S603 (our interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "load.generator",
            "--url",
            local_stack.url,
            "--aws-port",
            str(local_stack.aws_port),
            "--rate",
            str(RATE),
            "--seconds",
            str(SECONDS),
            "--outage-at",
            "1",
            "--outage-for",
            "2",
            "--outage-mode",
            "pause",
            "--sample-every",
            "0.25",
            "--converge-timeout",
            "300",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=600,  # a hung generator, not a slow one
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    summary = json.loads(result.stdout)
    # nothing lost: every post and comment written is in the view, with its verdict
    assert (summary["lost"], summary["not_moderated"], summary["converged"]) == (0, 0, True)
    assert summary["errors"] == {}
    assert summary["writes"] == summary["posts"] + summary["comments"] >= 1
    # the report is right: the view, read here, holds exactly what it says it wrote
    status, view = HttpApi(local_stack.url, timeout=60).get("/posts")
    assert status == 200, view
    comments = [c for post in view.values() for c in post["comments"]]
    assert (len(view), len(comments)) == (summary["posts"], summary["comments"])
    for comment in comments:  # only an approved comment's text is served (docs/api.md)
        assert comment["status"] in ("approved", "rejected"), comment
        assert ("content" in comment) == (comment["status"] == "approved"), comment
        assert "orange" not in comment.get("content", ""), comment
    # the outage happened in order, and catch-up found no holes and nothing unreadable
    outage = summary["outage"]
    assert outage["mode"] == "pause"
    assert outage["started_at_s"] < outage["ended_at_s"]
    report = outage["catch_up"]  # what query missed, recovered from the archive
    assert (report["holes_skipped"], report["unreadable"]) == (0, 0)
    assert summary["largest_backlog"] >= summary["largest_queue_depth"]


@pytest.mark.parametrize(
    "url", ["http://example.com:8000", "https://127.0.0.1:8000", "http://10.0.0.1", "file:///x"]
)
def test_the_generator_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(SystemExit, match=r"only http://127\.0\.0\.1"):
        plan_of(["--url", url])


@pytest.mark.parametrize(
    "arguments",
    [["--rate", "0"], ["--rate", "1000"], ["--seconds", "0"], ["--seconds", "100000"]],
)
def test_the_generator_is_bounded(arguments: list[str]) -> None:
    with pytest.raises(SystemExit, match="must be in"):
        plan_of(arguments)


def test_the_token_bucket_holds_the_rate() -> None:
    bucket, stop = TokenBucket(rate=50), threading.Event()
    deadline = time.monotonic() + 0.4
    taken = 0
    while bucket.take(deadline, stop):
        taken += 1
    assert 1 <= taken <= 23  # 50/s for 0.4 s plus the first: never more (fewer if starved)
