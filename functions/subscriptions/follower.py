"""Catch-up and replay: a consumer pulls from the archive what its live path did not apply.

``catch_up`` compares the track's watermark with the archive head, reads exactly the positions
that are neither below the watermark nor marked seen, and applies them with the subscription's
own handler (the live path's). With nothing missed it applies nothing. Progress is saved after
every ``CHUNK`` positions, so a run cut short (a Lambda timeout on a long history) resumes.
A missing position is a hole once it is older than the hole grace (the publisher that
allocated it died); a younger one is left for a later run. An archived event this code cannot
read is counted and logged, and passed over: it must not block the consumer for good.

A consumer that starts from nothing (deployed late, or a new view version) has watermark 0,
so its first catch-up delivers the whole history: a durable subscription with deliver-all.
"""

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from functions import archive, metrics, names, validation
from functions.events import Event, parse_event
from functions.settings import Settings
from functions.settings import load as load_settings
from functions.subscriptions import checkpoint
from functions.subscriptions.subscription import Subscription

logger = Logger(service="subscriptions")
CHUNK = 1000
"""Positions per catch-up step: the watermark is saved after each, so a long run resumes."""

Progress = Callable[[int, int], None]
"""Called with (positions done, positions in all) after each step."""


class CatchUpReport(BaseModel):
    consumer: str
    track: str
    head: int
    watermark_before: int
    watermark_after: int
    behind: int = 0
    """Positions above the watermark that the live path had not applied."""
    recovered: int = 0
    """Events of the consumer's types applied from the archive."""
    ignored: int = 0
    """Archived events of other types (the consumer does not subscribe to them)."""
    holes_skipped: int = 0
    """Positions that will never be filled (old enough to be holes), passed over."""
    holes_pending: int = 0
    """Missing positions too young to call holes; a later run looks again."""
    unreadable: int = 0
    """Archived events this code cannot parse (logged); passed over like holes."""

    @property
    def lag(self) -> int:
        return self.head - self.watermark_after


def contiguous(start: int, covered: set[int]) -> int:
    """The highest position reached from ``start`` through consecutive covered positions."""
    while start + 1 in covered:
        start += 1
    return start


def catch_up(
    settings: Settings,
    subscription: Subscription,
    track: str | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
) -> CatchUpReport:
    """Bring ``track`` (default: the main one) up to the archive head, or at most ``limit``
    positions past its watermark (a bounded step of a long history: memory and time)."""
    head, report = _start(settings, subscription, track)
    track, before = report.track, report.watermark_before
    last = head.position if limit is None else min(head.position, before + limit)
    # Marks from the watermark's own bucket on: live deliveries that a catch-up had already
    # covered leave marks just below it, and this run removes them.
    marked = checkpoint.seen(settings, subscription, track, before, last)
    covered = set(marked)
    after = before
    for start in range(before + 1, last + 1, CHUNK):
        window = range(start, min(start + CHUNK, last + 1))
        missing = [p for p in window if p not in covered]
        with subscription.batch():
            applied = _apply(settings, subscription, track, missing, head, report)
        covered |= applied
        reached = contiguous(after, covered)
        if reached > after:
            checkpoint.save_watermark(settings, subscription, track, reached)
            after = reached
        # Applied above the watermark (behind a young hole): marked, so no later run redoes it.
        above = [p for p in applied if p > after]
        if above:
            checkpoint.mark(settings, subscription, track, above)
        if progress is not None:
            progress(window.stop - 1 - before, head.position - before)
    folded = [p for p in marked if p <= after]
    if folded:
        checkpoint.forget(settings, subscription, track, folded)
    report.watermark_after = after
    return report


def replay(
    settings: Settings, subscription: Subscription, from_position: int, track: str | None = None
) -> CatchUpReport:
    """Re-apply every archived event from ``from_position`` to the head; harmless, as every
    handler is idempotent. The checkpoint is not changed."""
    head, report = _start(settings, subscription, track)
    track = report.track
    for start in range(max(from_position, 1), head.position + 1, CHUNK):
        window = list(range(start, min(start + CHUNK, head.position + 1)))
        with subscription.batch():
            _apply(settings, subscription, track, window, head, report)
    return report


def _start(
    settings: Settings, subscription: Subscription, track: str | None
) -> tuple[archive.Head, CatchUpReport]:
    """The archive head, and a report on ``track`` (default: the main one) from its watermark."""
    track = track or subscription.main_track(settings)
    head = archive.head(settings)
    watermark = checkpoint.watermark(settings, subscription, track)
    report = CatchUpReport(
        consumer=subscription.name,
        track=track,
        head=head.position,
        watermark_before=watermark,
        watermark_after=watermark,
    )
    return head, report


def _apply(
    settings: Settings,
    subscription: Subscription,
    track: str,
    missing: list[int],
    head: archive.Head,
    report: CatchUpReport,
) -> set[int]:
    """Apply the archived events at ``missing``; the positions now covered."""
    report.behind += len(missing)
    found = archive.read(settings, missing)
    cutoff = time.time() - settings.hole_grace_seconds
    covered: set[int] = set()
    for position in missing:
        archived = found.get(position)
        if archived is None:
            if archive.allocated_before(settings, position, cutoff, head):
                report.holes_skipped += 1
                covered.add(position)
            else:
                report.holes_pending += 1
            continue
        covered.add(position)
        event = readable(archived)
        if event is None:
            report.unreadable += 1
        elif type(event) in subscription.handlers:
            subscription.handle(settings, event, track)
            report.recovered += 1
        else:
            report.ignored += 1
    return covered


def readable(archived: archive.ArchivedEvent) -> Event | None:
    """The archived event, or None (logged) if this code cannot read it (e.g. a newer schema).

    One unreadable record must not stop recovery for good: it is counted and passed over,
    as the live path sends the same message to its dead-letter queue.
    """
    try:
        return parse_event(archived.payload)
    except ValidationError as error:
        logger.error(
            "unreadable archived event",
            position=archived.position,
            event_id=archived.event_id,
            reason=validation.reason(error),
        )
        return None


def scheduled(subscription: Subscription) -> dict[str, Any]:
    """The consumer's scheduled catch-up: run it, log what it recovered, publish its lag."""
    config = load_settings()
    report = catch_up(config, subscription)
    if report.behind:
        logger.info(f"{subscription.name} catch-up", **report.model_dump())
    metrics.publish(
        config,
        names.CONSUMER_LAG_METRIC,
        report.lag,
        MetricUnit.Count,
        {names.CONSUMER_DIMENSION: subscription.name},
    )
    return report.model_dump()
