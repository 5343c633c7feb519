"""The view's rebuild in bounded steps, as the stack's ``query_rebuild`` function runs it: a
step that crashes midway loses nothing, the next resumes from the saved watermark, live writes
reach both versions meanwhile, and the result equals a view folded afresh. Through the real
pipeline on moto; the crash is a DynamoDB write failing at the client."""

from typing import Any

import pytest

from emulator import runner as runners
from emulator.aws_time import LambdaTimedOut
from emulator.runner import EventSourceRunner
from functions import settings
from functions.query import recovery, store
from tests.conftest import Api
from tests.faults import failing
from tests.helpers import scheduled_event


def seed(api: Api, runner: EventSourceRunner, posts: int) -> None:
    for i in range(posts):
        _, post = api.post("/posts", {"title": f"post {i}"})
        api.post(f"/posts/{post['id']}/comments", {"content": f"comment on {i}"})
    runner.drain()
    runner.fire("archive_segmenter")  # part of the history is read from S3 segments
    runner.drain()


def nth_call(n: int) -> Any:
    calls = {"count": 0}

    def when(_: dict[str, Any]) -> bool:
        calls["count"] += 1
        return calls["count"] == n

    return when


def test_a_rebuild_crashed_midway_resumes_and_ends_equal_to_a_fresh_view(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a history of posts and comments, and the view they made
    seed(api, runner, 12)
    config = settings.load()
    _, before = api.every_post()
    assert len(before) == 12
    # WHEN a chunked rebuild starts, and its third step dies on a write midway (its Lambda
    # reached its timeout: a handler's own failure would be held, not end the step)
    started = recovery.start_rebuild(config)
    assert (started.active, started.building, started.done) == ("v1", "v2", 0)
    steps = [recovery.rebuild_step(config, limit=7), recovery.rebuild_step(config, limit=7)]
    crash = LambdaTimedOut("QueryRebuild")
    with (
        failing("dynamodb", "PutItem", crash, when=nth_call(4)) as failed,
        pytest.raises(LambdaTimedOut),
    ):
        recovery.rebuild_step(config, limit=7)
    assert failed
    # THEN the crash left the rebuild where its last saved watermark says, reads still on v1
    resumed_at = recovery.rebuild_progress(config)
    assert resumed_at.building == "v2"
    assert steps[-1].done <= resumed_at.done < resumed_at.total
    assert store.pointer(config).active == "v1"
    # AND a post written while it is rebuilding reaches both versions
    _, during = api.post("/posts", {"title": "written while rebuilding"})
    runner.drain()
    # WHEN the steps go on
    while not (progress := recovery.rebuild_step(config, limit=7)).finished:
        steps.append(progress)
    # THEN each step moved on, reads switched to v2, and the view is the one before, plus the post
    assert [s.done for s in steps] == sorted(s.done for s in steps)
    assert store.pointer(config) == store.Pointer(active="v2")
    code, after = api.every_post()
    assert code == 200
    assert after == {**before, during["id"]: after[during["id"]]}
    # AND it equals a view folded afresh from the whole archive in one go
    assert recovery.rebuild(config).new_version == "v3"
    assert api.every_post() == (200, after)


def test_the_function_starts_a_rebuild_and_its_schedule_finishes_it(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a history, and steps of 5 positions
    seed(api, runner, 6)
    monkeypatch.setattr(recovery, "STEP", 5)
    _, before = api.every_post()
    # WHEN the function is asked to start (one step per invocation without a Lambda context)
    handler = runners.resolve_handler("functions.query.blueprint.rebuild")
    first = handler(scheduled_event(start=True), None)
    assert first["building"] == "v2"
    # THEN its schedule carries it to the switch, and after that has nothing to do
    runs = 0
    while store.pointer(settings.load()).building is not None and runs < 100:
        runner.fire("query_rebuild")
        runs += 1
    assert runs >= 1  # (the runner gives a Lambda context: a run steps until it is done)
    assert store.pointer(settings.load()) == store.Pointer(active="v2")
    assert api.every_post() == (200, before)
    idle = handler(scheduled_event(), None)
    assert (idle["active"], idle["building"]) == ("v2", None)


def test_an_unknown_request_is_refused(deployed: Any) -> None:
    handler = runners.resolve_handler("functions.query.blueprint.rebuild")
    with pytest.raises(Exception, match="start_now"):
        handler(scheduled_event(start_now=True), None)
    assert store.pointer(settings.load()).building is None
