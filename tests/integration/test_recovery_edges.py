"""The view's rebuild and drop at their edges (mutants that survived `make mutants`).

Through the real pipeline on moto: posts and comments written over HTTP, delivered by the
event-source runner, then a rebuild and the background drop of the retired version.
"""

from typing import Any

import pytest

from emulator.runner import EventSourceRunner
from functions import archive, settings
from functions.query import recovery, store
from functions.query.service import SUBSCRIPTION
from functions.subscriptions import checkpoint
from tests.conftest import Api


def test_dropping_a_retired_version_deletes_its_rows_and_its_checkpoint(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN a view (v1) with a checkpoint, after posts and comments and a catch-up
    for index in range(2):
        _, post = api.post("/posts", {"title": f"post {index}"})
        api.post(f"/posts/{post['id']}/comments", {"content": f"comment {index}"})
    runner.drain()
    config = settings.load()
    recovery.catch_up(config)
    head = archive.head(config).position
    assert checkpoint.watermark(config, SUBSCRIPTION, "v1") == head
    # AND a rebuild that switched reads to v2 and retired v1
    assert recovery.rebuild(config).retired == ["v1"]
    # WHEN the retired version is dropped
    assert recovery.drop_retired(config) == ["v1"]
    # THEN its rows and its checkpoint are gone, and v2's are whole
    assert store.version_rows(config, "v1") == []
    assert checkpoint.watermark(config, SUBSCRIPTION, "v1") == 0
    assert checkpoint.seen(config, SUBSCRIPTION, "v1", 0, head) == set()
    assert checkpoint.watermark(config, SUBSCRIPTION, "v2") == head
    assert len(api.get("/posts")[1]) == 2


def test_a_rebuild_leaves_a_young_hole_to_a_later_catch_up(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a publisher that died holding a position, then a post after it
    config = settings.load()
    [hole] = archive.allocate(config, 1)
    api.post("/posts", {"title": "after the hole"})
    runner.drain()
    # WHEN the view is rebuilt while the hole is younger than an hour's grace
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    report = recovery.rebuild(settings.load())
    # THEN the new version's watermark stops below the hole, which is left pending
    assert checkpoint.watermark(config, SUBSCRIPTION, report.new_version) == hole - 1
    assert (report.catch_up.holes_pending, report.catch_up.holes_skipped) == (1, 0)
    # AND once the hole is old, a catch-up skips it and the watermark reaches the head
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "0")
    assert recovery.catch_up(settings.load()).watermark_after == archive.head(config).position
    assert [p["title"] for p in api.get("/posts")[1].values()] == ["after the hole"]


def test_a_rebuild_counts_old_holes_at_both_ends_of_the_history_into_its_watermark(
    api: Api, runner: EventSourceRunner
) -> None:
    # GIVEN old holes at the first and at the last position (the test stage's grace is 0 s)
    config = settings.load()
    archive.allocate(config, 1)
    api.post("/posts", {"title": "between the holes"})
    runner.drain()
    archive.allocate(config, 1)
    # WHEN the view is rebuilt
    report = recovery.rebuild(config)
    # THEN its watermark covers both holes before its catch-up: that catch-up had nothing to do
    head = archive.head(config).position
    assert (report.catch_up.watermark_before, report.catch_up.behind) == (head, 0)
    assert report.catch_up.holes_skipped == 0


def test_reads_stay_on_the_active_version_while_a_second_rebuild_builds(
    api: Api, runner: EventSourceRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a view already rebuilt once (v2 active)
    api.post("/posts", {"title": "rebuilt twice"})
    runner.drain()
    assert recovery.rebuild(settings.load()).new_version == "v2"
    # AND a watch on the pointer while the next rebuild catches its new version up
    during: list[store.Pointer] = []
    catch_up = recovery.catch_up

    def watched(config: settings.Settings, version: str | None = None) -> Any:
        during.append(store.pointer(config))
        return catch_up(config, version)

    monkeypatch.setattr(recovery, "catch_up", watched)
    # WHEN the view is rebuilt again
    report = recovery.rebuild(settings.load())
    # THEN reads stayed on v2 while v3 was built, and switched to v3 after
    assert during == [store.Pointer(active="v2", building="v3")]
    assert store.pointer(settings.load()) == store.Pointer(active="v3")
    assert report.retired == ["v2"]
