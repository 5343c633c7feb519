"""The view's chunked rebuild run inside the stack on MiniStack: 20,000 archived events, the
``query_rebuild`` function killed once midway by its own timeout, then ``blog --stack NAME
rebuild query`` resuming it to the switch; the view it built equals one folded afresh."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import ministack
from functions import archive, aws, ids, names, settings
from functions.events import PostCreated, PostData
from functions.query import projection, recovery, store
from functions.subscriptions import follower
from operations import deployed
from tests.helpers import archive_events
from tests.ministack.conftest import STACK, Lane
from tests.ministack.test_blog_command import blog

EVENTS = 20_000
REBUILD_TIMEOUT = 2400
"""Seconds the command may take: MiniStack's Lambda applies some tens of events a second."""


@pytest.fixture
def on_the_stack(lane: Lane, monkeypatch: pytest.MonkeyPatch) -> Iterator[settings.Settings]:
    """This process's AWS clients pointed at the stack on MiniStack, with its functions' own
    settings (not the test stage's: its ``ARCHIVE_SEGMENT_SIZE`` of 10 would put the archived
    records in buckets the functions never read)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", lane.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", ministack.REGION)
    for variable, value in ministack.CREDENTIALS.items():
        monkeypatch.setenv(variable, value)
    for variable, setting in deployed.settings_environment(lane.client, lane.resources).items():
        if setting is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, setting)
    aws.reset()
    yield settings.load()
    aws.reset()


def archive_posts(config: settings.Settings, count: int) -> None:
    archive_events(
        config,
        [PostCreated.of(PostData(id=ids.new_id(), title=f"post {n}")) for n in range(count)],
    )


def fresh_view(config: settings.Settings) -> list[dict[str, Any]]:
    """The view folded in memory from the whole archive, as rows."""
    head = archive.head(config).position
    events = (follower.readable(a) for a in archive.history(config, head))
    rows = projection.fold(e for e in events if e is not None).values()
    return sorted((r.model_dump() for r in rows), key=lambda r: (r["post_id"], str(r)))


def rows_of(config: settings.Settings, version: str) -> list[Any]:
    """Every row of ``version``, by a scan of the table (not through the listing index)."""
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=config.table(names.VIEW_TABLE),
            FilterExpression="begins_with(#view, :post)",
            ExpressionAttributeNames={"#view": names.VIEW_KEY[0]},
            ExpressionAttributeValues={":post": {"S": f"{version}/post/"}},
        )
    )
    return [store.row_of_item(item) for page in pages for item in page["Items"]]


def test_a_rebuild_of_20000_events_killed_midway_resumes_and_equals_a_fresh_view(
    lane: Lane, on_the_stack: settings.Settings
) -> None:
    config = on_the_stack
    # GIVEN 20,000 more events in the archive
    archive_posts(config, EVENTS)
    total = archive.head(config).position
    assert total >= EVENTS
    function = lane.resources.function("query_rebuild")
    functions = lane.client("lambda")
    # WHEN the rebuild function starts a rebuild with 3 s to live (a step of 2,000 positions
    # takes longer on MiniStack), and is killed by it
    functions.update_function_configuration(FunctionName=function, Timeout=3)
    try:
        start = {**deployed.scheduled_event(lane.resources), "detail": {"start": True}}
        answer = functions.invoke(FunctionName=function, Payload=json.dumps(start).encode())
        assert answer.get("FunctionError"), answer["Payload"].read()
        assert "timed out" in answer["Payload"].read().decode()
    finally:
        functions.update_function_configuration(FunctionName=function, Timeout=60)
    # THEN the rebuild is under way, part done, and reads stay on the old version
    crashed = recovery.rebuild_progress(config)
    assert crashed.building is not None
    assert crashed.done < crashed.total
    building = crashed.building
    # WHEN the operator runs the rebuild command
    result = blog(lane, "--stack", STACK, "rebuild", "query", "--json", timeout=REBUILD_TIMEOUT)
    # THEN it resumed the same version to the switch
    assert result.returncode == 0, result.stderr
    rebuilt = json.loads(result.stdout)
    assert (rebuilt["active"], rebuilt["building"]) == (building, None)
    assert rebuilt["done"] == rebuilt["total"] >= total
    # AND the view it built equals the view folded afresh from the same archive
    built = sorted(
        (r.model_dump() for r in rows_of(config, building)), key=lambda r: (r["post_id"], str(r))
    )
    assert len(built) >= EVENTS
    assert built == fresh_view(config)
