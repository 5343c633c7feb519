"""Catch-up and replay: a consumer pulls from the archive what its live path did not apply.

``catch_up`` compares the track's watermark with the archive head, reads exactly the positions
that are neither below the watermark nor marked seen, and applies them with the subscription's
own handler (the live path's). With nothing missed it applies nothing. Progress is saved after
every ``CHUNK`` positions, so a run cut short (a Lambda timeout on a long history) resumes.
A missing position is a hole once it is older than the hole grace (the publisher that
allocated it died); a younger one is left for a later run.

An archived event is never passed over. One of the consumer's types that this code cannot read
(a newer schema version: a producer deployed before this consumer) or whose handler raises is
*held*: the watermark stays below it, the run goes on past it (what it applies above is marked),
and every later run tries it again, so it is applied once the consumer is upgraded or the fault
is gone. Unreadable, or after ``names.PARK_AFTER_TRIES`` tries, it is *parked*: counted in the
``ParkedEvents`` metric, listed by ``blog parked``. One bad event never wedges the consumer.

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
from functions.events import Event, UnknownVersion, parse_event
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
    """Archived events of its types this code cannot read (a newer version): held, parked."""
    failed: int = 0
    """Events whose handler raised this run: held, parked after ``PARK_AFTER_TRIES`` tries."""
    released: int = 0
    """Held events applied now (after an upgrade, or once the fault was gone)."""
    parked: int = 0
    """Events parked for this track after the run (unreadable, or failed too often)."""
    lag: int = 0
    """Archived events of its types up to the head it has not applied (``lag``): after a run,
    the ones it holds. A missing position (a hole, or a publisher still writing) is no event."""


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
    head, report, held = _start(settings, subscription, track)
    track, before = report.track, report.watermark_before
    last = head.position if limit is None else min(head.position, before + limit)
    # Marks from the watermark's own bucket on: live deliveries that a catch-up had already
    # covered leave marks just below it, and this run removes them.
    marked = checkpoint.seen(settings, subscription, track, before, last)
    covered = set(marked)
    # Held events the live path has applied since (a redelivery): released.
    released = {p for p in held if p in covered or p <= before}
    outcome = _Outcome()
    after = before
    for start in range(before + 1, last + 1, CHUNK):
        window = range(start, min(start + CHUNK, last + 1))
        missing = [p for p in window if p not in covered]
        with subscription.batch():
            applied = _apply(settings, subscription, track, missing, head, report, outcome)
        covered |= applied
        reached = contiguous(after, covered)
        if reached > after:
            checkpoint.save_watermark(settings, subscription, track, reached)
            after = reached
        # Applied above the watermark (behind a young hole or a held event): marked, so no
        # later run redoes it.
        above = [p for p in applied if p > after]
        if above:
            checkpoint.mark(settings, subscription, track, above)
        if progress is not None:
            progress(window.stop - 1 - before, head.position - before)
    released |= held & covered
    checkpoint.release(settings, subscription, track, released)
    folded = [p for p in marked if p <= after]
    if folded:
        checkpoint.forget(settings, subscription, track, folded)
    report.watermark_after = after
    report.released = len(released)
    report.parked = sum(f.parked for f in outcome.failures)
    # Every position up to ``last`` was read: what is not applied there is what it holds; past
    # ``last`` (a bounded step), every position is still to come.
    report.lag = report.unreadable + report.failed + (head.position - last)
    return report


def replay(
    settings: Settings, subscription: Subscription, from_position: int, track: str | None = None
) -> CatchUpReport:
    """Re-apply every archived event from ``from_position`` to the head; harmless, as every
    handler is idempotent. The checkpoint is not changed."""
    head, report, _held = _start(settings, subscription, track)
    track = report.track
    outcome = _Outcome(hold=False)
    for start in range(max(from_position, 1), head.position + 1, CHUNK):
        window = list(range(start, min(start + CHUNK, head.position + 1)))
        with subscription.batch():
            _apply(settings, subscription, track, window, head, report, outcome)
    report.lag = report.unreadable + report.failed
    return report


def lag(
    settings: Settings, subscription: Subscription, track: str, watermark: int, head: int
) -> int:
    """Archived events of its types up to ``head`` that ``track`` has not applied: above the
    watermark and not marked by the live path. Reads the archive at the unmarked positions
    only (the live path never marks events of other types: their queue never gets them)."""
    if head <= watermark:
        return 0
    marked = checkpoint.seen(settings, subscription, track, watermark + 1, head)
    unmarked = [p for p in range(watermark + 1, head + 1) if p not in marked]
    found = archive.read(settings, unmarked)
    return sum(1 for e in found.values() if e.event_type in subscription.event_types)


def _start(
    settings: Settings, subscription: Subscription, track: str | None
) -> tuple[archive.Head, CatchUpReport, set[int]]:
    """The archive head, a report on ``track`` (default: the main one) from its watermark,
    and the positions held below it."""
    track = track or subscription.main_track(settings)
    head = archive.head(settings)
    state = checkpoint.state(settings, subscription, track)
    report = CatchUpReport(
        consumer=subscription.name,
        track=track,
        head=head.position,
        watermark_before=state.watermark,
        watermark_after=state.watermark,
    )
    return head, report, state.held


class _Outcome:
    """What a run's failures came to; ``hold``: record them in the checkpoint (not replay)."""

    def __init__(self, hold: bool = True) -> None:
        self.hold = hold
        self.failures: list[checkpoint.Failure] = []


def _apply(
    settings: Settings,
    subscription: Subscription,
    track: str,
    missing: list[int],
    head: archive.Head,
    report: CatchUpReport,
    outcome: _Outcome,
) -> set[int]:
    """Apply the archived events at ``missing``; the positions now covered. An event of the
    consumer's types that cannot be applied is not covered: it is held (``_hold``)."""
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
        if archived.event_type not in subscription.event_types:
            report.ignored += 1
            covered.add(position)
            continue
        try:
            event = parse_event(archived.payload)
        except (UnknownVersion, ValidationError) as error:
            report.unreadable += 1
            reason = str(error) if isinstance(error, UnknownVersion) else validation.reason(error)
            _hold(settings, subscription, track, archived, reason, True, outcome)
            continue
        try:
            subscription.handle(settings, event, track)
        except Exception as error:
            report.failed += 1
            _hold(settings, subscription, track, archived, repr(error), False, outcome)
            continue
        covered.add(position)
        report.recovered += 1
    return covered


def _hold(
    settings: Settings,
    subscription: Subscription,
    track: str,
    archived: archive.ArchivedEvent,
    reason: str,
    unreadable: bool,
    outcome: _Outcome,
) -> None:
    """Log an event that could not be applied and, in a catch-up, hold it."""
    logger.error(
        "unreadable archived event" if unreadable else "archived event failed",
        consumer=subscription.name,
        track=track,
        position=archived.position,
        event_id=archived.event_id,
        reason=reason,
    )
    if outcome.hold:
        outcome.failures.append(
            checkpoint.hold(
                settings,
                subscription,
                track,
                position=archived.position,
                event_id=archived.event_id,
                event_type=archived.event_type,
                reason=reason,
                unreadable=unreadable,
            )
        )


def readable(archived: archive.ArchivedEvent) -> Event | None:
    """The archived event, or None (logged) if this code cannot read it (e.g. a newer schema).

    For readers that hold nothing (a rebuild's fold): the caller must not count the position
    as applied; the rebuild leaves its watermark below it, and its catch-up holds it.
    """
    try:
        return parse_event(archived.payload)
    except (UnknownVersion, ValidationError) as error:
        logger.error(
            "unreadable archived event",
            position=archived.position,
            event_id=archived.event_id,
            reason=str(error) if isinstance(error, UnknownVersion) else validation.reason(error),
        )
        return None


def scheduled(subscription: Subscription) -> dict[str, Any]:
    """The consumer's scheduled catch-up: run it, log what it recovered, publish its lag."""
    config = load_settings()
    report = catch_up(config, subscription)
    if report.behind:
        logger.info(f"{subscription.name} catch-up", **report.model_dump())
    if report.parked:
        logger.error(f"{subscription.name} has parked events", parked=report.parked)
    dimensions = {names.CONSUMER_DIMENSION: subscription.name}
    metrics.publish(config, names.CONSUMER_LAG_METRIC, report.lag, MetricUnit.Count, dimensions)
    metrics.publish(config, names.PARKED_EVENTS_METRIC, report.parked, MetricUnit.Count, dimensions)
    return report.model_dump()
