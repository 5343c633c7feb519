"""``blog --stack``: the same commands operate a deployed stack (here, the one on MiniStack).

Pausing disables the consumer's event source mapping, as an operator does on AWS; catch-up
runs in the command's process against the stack's tables, with the settings of the stack's own
functions. A stack that is missing, or not this project's, is refused and nothing changes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from emulator import ministack
from tests.ministack.conftest import STACK, Lane, eventually


def blog(lane: Lane, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The ``blog`` command as a user runs it, with the three lines deploy-local prints."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {
        "AWS_ENDPOINT_URL": lane.endpoint,
        "AWS_DEFAULT_REGION": ministack.REGION,
        **ministack.CREDENTIALS,
    }
    return subprocess.run(  # noqa: S603 (our own command, fixed arguments)
        [str(Path(sys.executable).parent / "blog"), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_status_answers_against_the_stack_and_names_every_consumer(lane: Lane) -> None:
    result = blog(lane, "--stack", STACK, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert [c["consumer"] for c in status["consumers"]] == ["moderation", "comments", "query"]
    for row in status["consumers"]:
        assert (row["subscribed"], row["paused"]) == (True, False), row
        assert row["archive_head"] == status["archive_head"]
        assert row["lag"] == row["archive_head"] - row["watermark"]


def test_a_moderation_outage_through_the_blog_command(lane: Lane) -> None:
    # GIVEN moderation paused with the blog command: its event source mapping is disabled
    paused = blog(lane, "--stack", STACK, "outage", "start", "moderation", "--mode", "pause")
    assert paused.returncode == 0, paused.stderr
    assert lane.consumers.is_paused("moderation_consumer")
    # AND a comment written meanwhile, which stays pending
    _, post = lane.post("/posts", {"title": "Operated"})
    lane.post(f"/posts/{post['id']}/comments", {"content": "an orange"})
    eventually(
        lambda: lane.get(f"/posts/{post['id']}")[1].get("comments") or None, what="the comment"
    )
    assert lane.get(f"/posts/{post['id']}")[1]["comments"][0]["status"] == "pending"
    # WHEN the outage ends with the blog command
    ended = blog(lane, "--stack", STACK, "outage", "end", "moderation", "--json")
    # THEN catch-up decided it with the stack's own banned words, and the mapping is enabled
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["catch_up"]["recovered"] >= 1
    assert not lane.consumers.is_paused("moderation_consumer")
    eventually(
        lambda: lane.get(f"/posts/{post['id']}")[1]["comments"][0]["status"] == "rejected" or None,
        what="the decision",
    )


def test_a_stack_that_does_not_exist_is_refused_and_nothing_changes(lane: Lane) -> None:
    result = blog(lane, "--stack", "no-such-stack", "outage", "start", "query", "--mode", "pause")
    assert result.returncode == 2
    assert "no stack named 'no-such-stack'" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not lane.consumers.is_paused("query_consumer")


def test_a_stack_that_is_not_this_projects_is_refused(lane: Lane) -> None:
    other = "not-a-blog"
    lane.client("cloudformation").create_stack(
        StackName=other,
        TemplateBody=json.dumps(
            {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
        ),
    )
    result = blog(lane, "--stack", other, "status")
    assert result.returncode == 2
    assert f"stack {other!r} is not this blog's" in result.stderr
