"""Catch-up and replay at their edges (mutants that survived `make mutants`).

A recording subscriber takes the place of a consumer's handler; the archive, the checkpoint
table and the follower are the real ones on moto. Events are archived the way the publisher
archives them (``archive.allocate`` then ``archive.record``); a position allocated and never
recorded is a hole, as a publisher that died leaves one. The test stage's hole grace is 0 s.
"""

import io
import json
import logging
import time
from dataclasses import dataclass, field

import pytest

from functions import archive, events, names, settings
from functions.events import CommentCreated, CommentData, Event, PostCreated, PostData
from functions.settings import Settings
from functions.subscriptions import checkpoint, follower
from functions.subscriptions.subscription import Subscription
from tests.helpers import archive_events


@dataclass
class Recorder:
    """A handler that records the post or comment id of each event it is handed, and where."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, _settings: Settings, event: Event, track: str) -> None:
        self.calls.append((event.aggregate_id, track))


def tap(recorder: Recorder, tracks: tuple[str, ...] = ("main",)) -> Subscription:
    """A subscriber to ``PostCreated`` with its checkpoint in the moderation table."""
    return Subscription(
        name="tap",
        table=names.MODERATION_TABLE,
        key=(names.MODERATION_KEY,),
        handlers={PostCreated: recorder},
        tracks=lambda _settings: list(tracks),
    )


def archived(events: list[Event | None]) -> None:
    """Archive ``events`` at consecutive positions (None: a hole)."""
    archive_events(settings.load(), events)


def post(title: str) -> PostCreated:
    return PostCreated.of(PostData(id=title, title=title))


def comment(comment_id: str) -> CommentCreated:
    data = {"id": comment_id, "postId": "p", "content": "hi", "status": "pending"}
    return CommentCreated.of(CommentData.model_validate(data | {"commentVersion": 1}))


# -- replay ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("deployed")
def test_replay_hands_the_track_asked_every_event_from_the_position_to_the_head() -> None:
    # GIVEN five posts in the archive, and a subscriber with two tracks
    recorder = Recorder()
    subscription = tap(recorder, tracks=("blue", "green"))
    archived([post(f"p{n}") for n in range(1, 6)])
    # WHEN the green track replays from position 3
    report = follower.replay(settings.load(), subscription, 3, track="green")
    # THEN positions 3 to 5, and only they, were handed to the green track, once each
    assert recorder.calls == [("p3", "green"), ("p4", "green"), ("p5", "green")]
    assert (report.track, report.head, report.behind, report.recovered) == ("green", 5, 3, 3)
    assert (report.holes_skipped, report.holes_pending, report.ignored) == (0, 0, 0)
    # AND the checkpoint did not move
    assert checkpoint.watermark(settings.load(), subscription, "green") == 0


@pytest.mark.usefixtures("deployed")
def test_replay_from_zero_starts_at_the_first_position_on_the_main_track() -> None:
    recorder = Recorder()
    archived([post("p1"), post("p2")])
    report = follower.replay(settings.load(), tap(recorder, ("blue", "green")), 0)
    assert recorder.calls == [("p1", "blue"), ("p2", "blue")]
    assert (report.track, report.behind, report.recovered) == ("blue", 2, 2)


@pytest.mark.usefixtures("deployed")
def test_replay_skips_holes_and_ignores_events_of_other_types_across_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a hole, two comments (not subscribed to) and posts, replayed in chunks of two
    monkeypatch.setattr(follower, "CHUNK", 2)
    recorder = Recorder()
    archived([post("p1"), None, comment("c1"), comment("c2"), post("p5"), post("p6")])
    # WHEN the subscriber replays from position 1
    report = follower.replay(settings.load(), tap(recorder), 1)
    # THEN each post once, in order; the hole skipped and the comments ignored, each counted
    assert recorder.calls == [("p1", "main"), ("p5", "main"), ("p6", "main")]
    assert (report.behind, report.recovered, report.ignored) == (6, 3, 2)
    assert (report.holes_skipped, report.holes_pending, report.unreadable) == (1, 0, 0)


# -- catch-up --------------------------------------------------------------------------------


@pytest.mark.usefixtures("deployed")
def test_catch_up_applies_what_live_missed_in_chunks_and_folds_every_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN five posts, of which the live path applied 2 and 4 (marked), in chunks of two
    monkeypatch.setattr(follower, "CHUNK", 2)
    recorder = Recorder()
    subscription = tap(recorder)
    config = settings.load()
    archived([post(f"p{n}") for n in range(1, 6)])
    checkpoint.mark(config, subscription, "main", [2, 4])
    progress: list[tuple[int, int]] = []
    # WHEN the subscriber catches up
    report = follower.catch_up(config, subscription, progress=lambda *p: progress.append(p))
    # THEN the three it missed, and only they, were applied, once each
    assert recorder.calls == [("p1", "main"), ("p3", "main"), ("p5", "main")]
    assert (report.behind, report.recovered, report.watermark_after, report.lag) == (3, 3, 5, 0)
    assert progress == [(2, 5), (4, 5), (5, 5)]
    # AND the watermark covers everything, with no mark left at or below it
    assert checkpoint.watermark(config, subscription, "main") == 5
    assert checkpoint.seen(config, subscription, "main", 0, 5) == set()
    # AND a second run finds nothing to do
    again = follower.catch_up(config, subscription)
    assert (again.watermark_before, again.behind, again.recovered) == (5, 0, 0)
    assert len(recorder.calls) == 3
    # AND a run from there counts its progress from its own watermark
    archived([post(f"p{n}") for n in range(6, 9)])
    progress.clear()
    follower.catch_up(config, subscription, progress=lambda *p: progress.append(p))
    assert progress == [(2, 3), (3, 3)]


@pytest.mark.usefixtures("deployed")
def test_a_young_hole_holds_the_watermark_and_what_is_applied_above_it_is_marked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a hole at 2 and one at 4, younger than an hour's grace, among posts at 1, 3 and 5
    recorder = Recorder()
    subscription = tap(recorder)
    archived([post("p1"), None, post("p3"), None, post("p5")])
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    # WHEN the subscriber catches up
    report = follower.catch_up(settings.load(), subscription)
    # THEN the watermark stops below the first hole; what lies above it is applied and marked
    assert (report.watermark_after, report.holes_pending, report.holes_skipped) == (1, 2, 0)
    # AND its lag is the events it has not applied: none (holes are no events; 3 and 5 are
    # applied and marked)
    assert (report.behind, report.recovered, report.lag) == (5, 3, 0)
    assert checkpoint.seen(settings.load(), subscription, "main", 0, 5) == {3, 5}
    # WHEN the holes are old enough, and the subscriber catches up again
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "0")
    again = follower.catch_up(settings.load(), subscription)
    # THEN the holes are skipped, nothing is applied twice, and the marks are folded
    assert (again.watermark_after, again.holes_skipped, again.recovered) == (5, 2, 0)
    assert recorder.calls == [("p1", "main"), ("p3", "main"), ("p5", "main")]
    assert checkpoint.seen(settings.load(), subscription, "main", 0, 5) == set()


@pytest.mark.usefixtures("deployed")
def test_the_scheduled_catch_up_publishes_the_lag_it_leaves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN posts at 1 and 3 around a hole younger than an hour's grace
    archived([post("p1"), None, post("p3")])
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    capsys.readouterr()
    # AND its log at INFO (the test stage logs at WARNING), into a buffer
    logged = io.StringIO()
    handler = follower.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    monkeypatch.setattr(handler, "stream", logged)
    level = follower.logger.log_level
    follower.logger.setLevel("INFO")
    # WHEN the scheduled catch-up runs
    try:
        result = follower.scheduled(tap(Recorder()))
    finally:
        follower.logger.setLevel(level)
    # THEN it returns its report, and publishes its lag (0: 3 is applied and marked, a hole is
    # no event) and its parked events (none), for this consumer
    assert (result["watermark_after"], result["head"], result["recovered"]) == (1, 3, 2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    metrics = [
        (name, m[name], m[names.CONSUMER_DIMENSION], m[names.METRIC_DIMENSION])
        for m in lines
        if "_aws" in m
        for name in (names.CONSUMER_LAG_METRIC, names.PARKED_EVENTS_METRIC)
        if name in m
    ]
    prefix = settings.load().prefix
    assert metrics == [
        (names.CONSUMER_LAG_METRIC, [0.0], "tap", prefix),
        (names.PARKED_EVENTS_METRIC, [0.0], "tap", prefix),
    ]
    definitions = [d for m in lines if "_aws" in m for d in m["_aws"]["CloudWatchMetrics"]]
    assert [d["Metrics"] for d in definitions] == [
        [{"Name": names.CONSUMER_LAG_METRIC, "Unit": "Count"}],
        [{"Name": names.PARKED_EVENTS_METRIC, "Unit": "Count"}],
    ]
    # AND it logs what it did, under the consumer's name
    [line] = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert line["message"] == "tap catch-up"
    assert (line["recovered"], line["holes_pending"], line["level"]) == (2, 1, "INFO")


@pytest.mark.usefixtures("deployed")
def test_every_unreadable_archived_event_is_parked_logged_and_never_passed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two archived records this code cannot read, around a post
    config = settings.load()
    positions = archive.allocate(config, 3)
    unreadable = {"event_id": "x", "event_type": "PostCreated", "payload": "not json"}
    archive.record(
        config,
        [
            archive.ArchivedEvent(position=positions[0], archived_at=time.time(), **unreadable),
            archive.ArchivedEvent(
                position=positions[1],
                event_id="p2",
                event_type="PostCreated",
                payload=post("p2").to_json(),
                archived_at=time.time(),
            ),
            archive.ArchivedEvent(position=positions[2], archived_at=time.time(), **unreadable),
        ],
    )
    recorder = Recorder()
    logged = io.StringIO()
    monkeypatch.setattr(follower.logger.registered_handler, "stream", logged)
    # WHEN the subscriber catches up
    report = follower.catch_up(config, tap(recorder))
    # THEN both are parked, the post is applied and marked, and the watermark stays below them
    assert (report.unreadable, report.recovered, report.watermark_after) == (2, 1, 0)
    assert (report.parked, report.lag) == (2, 2)
    assert recorder.calls == [("p2", "main")]
    subscription = tap(recorder)
    assert checkpoint.state(config, subscription, "main").held == {positions[0], positions[2]}
    assert checkpoint.seen(config, subscription, "main", 0, 3) == {positions[1]}
    parked = checkpoint.failures(config, subscription, "main", [positions[0], positions[2]])
    assert [(f.position, f.event_id, f.unreadable, f.parked, f.tries) for f in parked] == [
        (positions[0], "x", True, True, 1),
        (positions[2], "x", True, True, 1),
    ]
    # AND each is logged with its position, its event id and the reason
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert [(x["message"], x["position"], x["event_id"]) for x in lines] == [
        ("unreadable archived event", positions[0], "x"),
        ("unreadable archived event", positions[2], "x"),
    ]
    assert all("Invalid JSON" in x["reason"] for x in lines)


@dataclass
class Flaky(Recorder):
    """A recording handler that raises for the posts in ``failing`` while they are there."""

    failing: set[str] = field(default_factory=set)

    def __call__(self, _settings: Settings, event: Event, track: str) -> None:
        if event.aggregate_id in self.failing:
            raise RuntimeError(f"cannot apply {event.aggregate_id}")
        super().__call__(_settings, event, track)


@pytest.mark.usefixtures("deployed")
def test_a_failing_handler_is_parked_after_its_tries_and_never_wedges_the_catch_up() -> None:
    # GIVEN posts at 1 to 4, and a handler that fails on the second
    config = settings.load()
    handler = Flaky(failing={"p2"})
    subscription = tap(handler)
    archived([post(f"p{n}") for n in range(1, 5)])
    # WHEN the subscriber catches up, once and again up to the tries allowed
    reports = [follower.catch_up(config, subscription) for _ in range(names.PARK_AFTER_TRIES)]
    # THEN every run goes past it: 3 and 4 are applied (once) and marked; the watermark holds at 1
    assert handler.calls == [("p1", "main"), ("p3", "main"), ("p4", "main")]
    assert [r.watermark_after for r in reports] == [1] * names.PARK_AFTER_TRIES
    assert checkpoint.seen(config, subscription, "main", 0, 4) == {3, 4}
    assert all((r.failed, r.lag) == (1, 1) for r in reports)
    # AND it is parked only once it has failed its tries
    assert [r.parked for r in reports] == [0] * (names.PARK_AFTER_TRIES - 1) + [1]
    [failure] = checkpoint.failures(config, subscription, "main", [2])
    assert (failure.tries, failure.unreadable, failure.parked) == (
        names.PARK_AFTER_TRIES,
        False,
        True,
    )
    assert "cannot apply p2" in failure.reason
    # WHEN the fault is gone and the subscriber catches up
    handler.failing.clear()
    fixed = follower.catch_up(config, subscription)
    # THEN it is applied, released, and the watermark reaches the head with nothing left marked
    assert (fixed.released, fixed.parked, fixed.watermark_after, fixed.lag) == (1, 0, 4, 0)
    assert handler.calls[-1] == ("p2", "main")
    assert checkpoint.state(config, subscription, "main").held == set()
    assert checkpoint.failures(config, subscription, "main", [2]) == []
    assert checkpoint.seen(config, subscription, "main", 0, 4) == set()


@pytest.mark.usefixtures("deployed")
def test_an_event_newer_than_the_code_is_parked_then_applied_after_the_upgrade(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN code that reads no PostCreated yet (a producer deployed before this consumer)
    config = settings.load()
    recorder = Recorder()
    subscription = tap(recorder)
    monkeypatch.setitem(events.READABLE_VERSIONS, "PostCreated", 0)
    archived([post("p1"), post("p2")])
    # WHEN it catches up
    before = follower.catch_up(config, subscription)
    # THEN both are parked at once (no tries to wait for), applied nowhere, the watermark at 0
    assert (before.unreadable, before.parked, before.watermark_after, before.lag) == (2, 2, 0, 2)
    assert recorder.calls == []
    parked = checkpoint.failures(config, subscription, "main", [1, 2])
    assert all(f.parked and "newer than this code reads" in f.reason for f in parked)
    # WHEN the consumer is upgraded, and catches up
    monkeypatch.setitem(events.READABLE_VERSIONS, "PostCreated", 1)
    after = follower.catch_up(config, subscription)
    # THEN both are applied, released, and nothing holds the watermark
    assert (after.recovered, after.released, after.watermark_after, after.lag) == (2, 2, 2, 0)
    assert recorder.calls == [("p1", "main"), ("p2", "main")]
    assert checkpoint.state(config, subscription, "main").held == set()
