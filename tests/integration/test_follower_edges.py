"""Catch-up and replay at their edges (issue 15, mutants that survived `make mutants`).

A recording subscriber takes the place of a consumer's handler; the archive, the checkpoint
table and the follower are the real ones on moto. Events are archived the way the publisher
archives them (``archive.allocate`` then ``archive.record``); a position allocated and never
recorded is a hole, as a publisher that died leaves one. The test stage's hole grace is 0 s.
"""

import time
from dataclasses import dataclass, field

import pytest

from functions import archive, names, settings
from functions.events import CommentCreated, CommentData, Event, PostCreated, PostData
from functions.settings import Settings
from functions.subscriptions import checkpoint, follower
from functions.subscriptions.subscription import Subscription


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


def archived(events: list[Event | None]) -> list[int]:
    """Archive ``events`` at consecutive positions (None: a hole); the positions."""
    config = settings.load()
    positions = list(archive.allocate(config, len(events)))
    archive.record(
        config,
        [
            archive.ArchivedEvent(
                position=position,
                event_id=event.event_id,
                event_type=event.type,
                payload=event.to_json(),
                archived_at=time.time(),
            )
            for position, event in zip(positions, events, strict=True)
            if event is not None
        ],
    )
    return positions


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
    # GIVEN a hole, a comment (not subscribed to) and posts, replayed in chunks of two
    monkeypatch.setattr(follower, "CHUNK", 2)
    recorder = Recorder()
    archived([post("p1"), None, comment("c1"), post("p4"), post("p5")])
    # WHEN the subscriber replays from position 1
    report = follower.replay(settings.load(), tap(recorder), 1)
    # THEN each post once, in order; the hole skipped and the comment ignored, each counted
    assert recorder.calls == [("p1", "main"), ("p4", "main"), ("p5", "main")]
    assert (report.behind, report.recovered, report.ignored) == (5, 3, 1)
    assert (report.holes_skipped, report.holes_pending, report.unreadable) == (1, 0, 0)
