"""On the `make dev` stack: once DynamoDB's TTL has deleted every archive item that carries
one, `blog rebuild query` still shows every post (nothing expires before it is in S3)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack import blog, create_post

TITLES = ("first of a quiet week", "second", "third")
CEILING_SECONDS = 300
"""However loaded the machine, three posts archived later than this means something broke."""


def posts(stack: LocalStack) -> Any:
    with urllib.request.urlopen(f"{stack.url}/posts?limit=200", timeout=30) as response:  # noqa: S310 (loopback)
        return json.load(response)


def archive_head(stack: LocalStack) -> int:
    status = json.loads(blog(stack, "status", "--json").stdout)
    return max(int(c["archive_head"]) for c in status["consumers"])


def expire_every_ttl_item(stack: LocalStack) -> int:
    """What DynamoDB's TTL does, sooner or later, to the local stack's tables."""
    script = "from emulator import aws_time; print(aws_time.expire_items())"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        env={
            **os.environ,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{stack.aws_port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.strip())


def test_rebuild_keeps_every_post_once_ttl_deleted_all_it_may(local_stack: LocalStack) -> None:
    # GIVEN a quiet blog: three posts, archived (far fewer than a bucket)
    before = archive_head(local_stack)
    for title in TITLES:
        create_post(local_stack, title)
    deadline = time.monotonic() + CEILING_SECONDS
    while archive_head(local_stack) < before + len(TITLES):
        assert time.monotonic() < deadline, "the posts were never archived"
        time.sleep(0.2)
    # WHEN DynamoDB deletes every archive item that carries a TTL, then the view is rebuilt
    expire_every_ttl_item(local_stack)
    rebuilt = blog(local_stack, "rebuild", "query")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # THEN every post is still there
    view = posts(local_stack)
    assert set(TITLES) <= {post["title"] for post in view.values()}, view
