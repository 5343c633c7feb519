"""Acceptance 6: the README's curl lines perform the seed scenario on the `make dev` stack.

Runs the README's seed block with bash against ``python -m emulator dev`` (what ``make dev``
runs after installing), started by the ``local_stack`` fixture (``tests/e2e/conftest.py``),
which stops it with Ctrl+C (SIGINT) and checks that no process of it is left.
"""

import json
import os
import pty
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

from emulator.config import stage_environment
from emulator.local import STAGE, endpoint
from emulator.template import ROOT
from functions import names
from functions.dynamo import to_item
from functions.events import PostCreated, PostData
from functions.ids import new_id
from functions.outbox import OutboxRecord
from tests.e2e.conftest import LocalStack
from tools.api_client import HttpApi

MARKER = "<!-- seed-scenario:"


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


def test_readme_curl_lines_perform_the_seed_scenario(local_stack: LocalStack) -> None:
    result = subprocess.run(  # noqa: S603
        ["/bin/bash", "-euo", "pipefail", "-c", readme_seed_block()],
        env={**os.environ, "BLOG": local_stack.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *_, post = json_documents(result.stdout)
    # in the order written; a rejected comment's text is not served (docs/api.md)
    shown = [(c.get("content"), c["status"]) for c in post["comments"]]
    assert shown == [("Lovely weather", "approved"), (None, "rejected")]
    assert "I love orange" not in json.dumps(post)


def blog(stack: LocalStack, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The ``blog`` command, as installed by ``make`` into the virtual environment."""
    return subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "blog"), *arguments],
        env={**os.environ, "AWS_PORT": str(stack.aws_port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def blog_on_a_terminal(stack: LocalStack, *arguments: str) -> tuple[int, str, str]:
    """``blog`` with its stderr on a pseudo-terminal, as a person runs it: exit code, stdout
    and what the terminal showed."""
    terminal, secondary = pty.openpty()
    try:
        result = subprocess.run(  # noqa: S603
            [str(Path(sys.executable).parent / "blog"), *arguments],
            env={**os.environ, "AWS_PORT": str(stack.aws_port)},
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(secondary)
    shown = b""
    try:
        while chunk := os.read(terminal, 65536):
            shown += chunk
    except OSError:  # the terminal's other end is closed: everything has been read
        pass
    finally:
        os.close(terminal)
    return result.returncode, result.stdout, shown.decode()


def create_post(stack: LocalStack, title: str) -> str:
    status, post = HttpApi(stack.url, timeout=30).post("/posts", {"title": title})
    assert status == 201, post
    return str(post["id"])


def walk_links(stack: LocalStack) -> list[list[str]]:
    """The post ids of each page of ``GET /posts``, following ``Link: rel="next"`` as a
    browser would: relative to the URL of the page that gave it."""
    api = HttpApi(stack.url, timeout=30)
    pages: list[list[str]] = []
    url: str | None = f"{stack.url}/posts"
    while url is not None:
        page = api.request("GET", url.removeprefix(stack.url))
        assert page.status == 200, page.body
        pages.append(list(page.json()))
        link = page.next_link()
        url = urllib.parse.urljoin(url, link) if link else None
    return pages


def test_a_few_hundred_posts_are_paged_and_the_links_walk_each_once_newest_first(
    local_stack: LocalStack,
) -> None:
    # GIVEN 260 posts written through the stack's HTTP API, four at a time
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda n: create_post(local_stack, f"paged {n}"), range(260)))
    # WHEN the stack's consumers have projected them (the walk is retried until they have)
    deadline = time.monotonic() + 300
    pages = walk_links(local_stack)
    while ids - {p for page in pages for p in page}:
        assert time.monotonic() < deadline, "the posts did not all reach the view in 300 s"
        time.sleep(1)
        pages = walk_links(local_stack)
    # THEN each page is bounded by the default limit, and the walk visits every post once,
    # newest first
    walked = [p for page in pages for p in page]
    assert max(len(page) for page in pages) == 50
    assert len(pages) >= 6
    assert len(walked) == len(set(walked))
    assert walked == sorted(walked, reverse=True)
    assert ids <= set(walked)


def test_blog_command_runs_an_outage_and_a_rebuild(local_stack: LocalStack) -> None:
    # GIVEN the stack, with the query consumer paused by the blog command
    started = blog(local_stack, "outage", "start", "query", "--mode", "pause")
    assert started.returncode == 0, started.stderr
    status = json.loads(blog(local_stack, "status", "--json").stdout)
    query = next(c for c in status["consumers"] if c["consumer"] == "query")
    assert query["paused"] is True
    # WHEN a post is written during the outage and the outage ends
    create_post(local_stack, "written during a CLI outage")
    ended = blog(local_stack, "outage", "end", "query", "--json")
    assert ended.returncode == 0, ended.stderr
    report = json.loads(ended.stdout)["catch_up"]
    # THEN catch-up recovered it from the archive (no progress bar where stderr is a pipe)
    assert report["recovered"] >= 1
    assert "\r" not in ended.stderr
    # AND the rebuild, run on a terminal, shows its progress there and its report on stdout
    code, stdout, terminal = blog_on_a_terminal(local_stack, "rebuild", "query", "--json")
    assert code == 0, terminal
    assert "100% (" in terminal
    rebuilt = json.loads(stdout)
    assert (rebuilt["active"], rebuilt["building"]) == ("v2", None)
    assert rebuilt["done"] == rebuilt["total"] >= report["head"]


def test_blog_command_explains_a_refused_second_purge(local_stack: LocalStack) -> None:
    # GIVEN a purge outage, started and ended
    for phase in (["start", "query", "--mode", "purge"], ["end", "query"]):
        done = blog(local_stack, "outage", *phase)
        assert done.returncode == 0, done.stderr
    # WHEN a second purge is asked for within 60 s
    refused = blog(local_stack, "outage", "start", "query", "--mode", "purge")
    # THEN the command says why, not that the stack is down, and the consumer runs on
    assert refused.returncode == 1
    assert "SQS allows one purge a minute: nothing was changed" in refused.stderr
    assert "make dev" not in refused.stderr
    status = json.loads(blog(local_stack, "status", "--json").stdout)
    assert not next(c for c in status["consumers"] if c["consumer"] == "query")["paused"]


def test_blog_command_rejects_bad_arguments_clearly(local_stack: LocalStack) -> None:
    bad = blog(local_stack, "replay", "query", "--from-position", "zero")
    assert bad.returncode == 2
    assert "from_position: Input should be a valid integer" in bad.stderr


def write_outbox_record(stack: LocalStack, payload: dict[str, Any]) -> None:
    """An outbox record as a newer producer would write it, into the stack's own outbox."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint(stack.aws_port),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    prefix = stage_environment(STAGE)[names.PREFIX_VARIABLE]
    record = OutboxRecord.new(PostCreated.of(PostData(id=payload["aggregate_id"], title="x")))
    record = record.model_copy(
        update={"event_id": payload["event_id"], "payload": json.dumps(payload)}
    )
    client.put_item(
        TableName=names.resource(prefix, names.OUTBOX_TABLE),
        Item=to_item(record.model_dump(exclude_none=True)),
    )


def get_post(stack: LocalStack, post_id: str) -> Any:
    """``GET /posts/{id}``'s body, or None while it is 404."""
    try:
        with urllib.request.urlopen(f"{stack.url}/posts/{post_id}", timeout=30) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        return None


def test_a_newer_producers_records_reach_the_view_or_are_parked_never_passed_over(
    local_stack: LocalStack,
) -> None:
    # GIVEN an outbox record holding a v1 PostCreated with a field this code does not know
    post_id = new_id()
    added = PostCreated.of(PostData(id=post_id, title="a newer producer's post"))
    payload = added.model_dump(mode="json")
    write_outbox_record(local_stack, {**payload, "data": {**payload["data"], "subtitle": "new"}})
    # THEN it reaches the view
    deadline = time.monotonic() + 120
    while (shown := get_post(local_stack, post_id)) is None:
        assert time.monotonic() < deadline, "the post never reached the view"
        time.sleep(0.5)
    assert shown["title"] == "a newer producer's post"
    # GIVEN an outbox record with a version no code here reads
    future = PostCreated.of(PostData(id=new_id(), title="from the future"))
    write_outbox_record(local_stack, {**future.model_dump(mode="json"), "version": 99})
    # THEN `blog status --json` reports it parked for query (the live path parks it)
    while True:
        status = json.loads(blog(local_stack, "status", "--json").stdout)
        query = next(c for c in status["consumers"] if c["consumer"] == "query")
        if query["parked"]:
            break
        assert time.monotonic() < deadline, f"never parked: {query}"
        time.sleep(0.5)
    assert query["parked"] == 1
    # AND `blog parked query` lists it, and after `blog catch-up query` query's watermark
    # stays below its position
    [parked] = json.loads(blog(local_stack, "parked", "query", "--json").stdout)
    assert (parked["event_id"], parked["parked"]) == (future.event_id, True)
    caught_up = blog(local_stack, "catch-up", "query", "--json")
    assert caught_up.returncode == 0, caught_up.stderr
    # (stdout is the one JSON answer: the catch-up's log line about the event went to stderr)
    assert json.loads(caught_up.stdout)["watermark_after"] < parked["position"]
    assert "unreadable archived event" in caught_up.stderr
    status = json.loads(blog(local_stack, "status", "--json").stdout)
    query = next(c for c in status["consumers"] if c["consumer"] == "query")
    assert query["watermark"] < parked["position"] <= query["archive_head"]
    assert (query["parked"], query["lag"]) == (1, 1)
    listed = blog(local_stack, "parked")
    assert "version 99 is newer" in listed.stdout
