"""Query recovery: the archive and this reconciler make the view complete; the queue makes it fast.

- ``catch_up`` compares the view's watermark with the archive head, reads exactly the positions
  the live path did not apply, and applies them with the same projection. With nothing missed
  it writes nothing to the view. Old holes are skipped and counted; young ones wait.
- ``rebuild`` builds a fresh view version from the whole archive (S3 segments, then the table),
  catches it up, switches reads to it atomically (one pointer write) and drops the old one.
  While it builds, live updates write both versions, so nothing written meanwhile is lost.
- ``replay`` re-applies the archive from a position; the projection makes that harmless.

A consumer that starts from nothing (a new view, a new deployment) has watermark 0, so its
first catch-up delivers the whole history: a durable subscription with deliver-all.
"""

import time
from collections.abc import Callable, Iterable

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from functions import archive
from functions.events import Event, parse_event
from functions.query import projection, service, store
from functions.settings import Settings

logger = Logger(service="query")
CHUNK = 1000
"""Positions per catch-up step: the watermark is saved after each, so a long run resumes."""

Progress = Callable[[int, int], None]
"""Called with (positions done, positions in all)."""


class CatchUpReport(BaseModel):
    version: str
    head: int
    watermark_before: int
    watermark_after: int
    behind: int = 0
    """Positions above the watermark that the live path had not applied."""
    recovered: int = 0
    """Events of the view's types applied from the archive."""
    ignored: int = 0
    """Archived events of other types (the view is not made of them)."""
    holes_skipped: int = 0
    holes_pending: int = 0
    unreadable: int = 0
    """Archived events this code cannot parse (logged); passed over like holes."""
    """Missing positions too young to call holes; a later run looks again."""


class RebuildReport(BaseModel):
    old_version: str
    new_version: str
    events: int
    rows: int
    catch_up: CatchUpReport


def _contiguous(start: int, covered: set[int]) -> int:
    while start + 1 in covered:
        start += 1
    return start


def catch_up(settings: Settings, version: str | None = None) -> CatchUpReport:
    """Bring ``version`` (default: the active one) up to the archive head.

    Progress is saved after every chunk of positions, so a run cut short (a Lambda timeout
    on a long history) resumes where it stopped.
    """
    version = version or store.active_version(settings)
    head = archive.head(settings)
    before = store.watermark(settings, version)
    report = CatchUpReport(
        version=version, head=head.position, watermark_before=before, watermark_after=before
    )
    # All marks, not just those above the watermark: live deliveries that a catch-up had
    # already covered leave marks below it, and this run deletes them.
    marked = store.seen(settings, version)
    covered = set(marked)
    after = before
    for start in range(before + 1, head.position + 1, CHUNK):
        window = range(start, min(start + CHUNK, head.position + 1))
        missing = [p for p in window if p not in covered]
        applied = _apply_missing(settings, version, missing, head, report)
        covered |= applied
        reached = _contiguous(after, covered)
        if reached > after:
            store.save_watermark(settings, version, reached)
            after = reached
        # Applied above the watermark (behind a young hole): marked, so no later run redoes it.
        for position in sorted(p for p in applied if p > after):
            store.mark_seen(settings, version, position)
    store.forget_seen(settings, version, (p for p in marked if p <= after))
    report.watermark_after = after
    return report


def _apply_missing(
    settings: Settings,
    version: str,
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
        event = found.get(position)
        if event is None:
            if archive.allocated_before(settings, position, cutoff, head):
                report.holes_skipped += 1
                covered.add(position)
            else:
                report.holes_pending += 1
            continue
        covered.add(position)
        domain = _readable(event)
        if domain is None:
            report.unreadable += 1
        elif isinstance(domain, projection.PROJECTED_EVENTS):
            service.project(settings, domain, None, [version])
            report.recovered += 1
        else:
            report.ignored += 1
    return covered


def _readable(archived: archive.ArchivedEvent) -> Event | None:
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
            reason=str(error),
        )
        return None


def _next_version(version: str) -> str:
    return f"v{int(version.lstrip('v')) + 1}"


def rebuild(settings: Settings, progress: Progress | None = None) -> RebuildReport:
    """Build a new view version from the archive and switch reads to it.

    Order matters: the new rows are written while no live update writes that version yet
    (so unconditional batch writes are safe); then live updates start writing it too; then
    catch-up covers everything archived since the history was read; then reads switch.
    """
    current = store.pointer(settings)
    if current.building:  # an earlier rebuild stopped half way, or is still going: take over
        store.drop_version(settings, current.building)
    old, new = current.active, _next_version(current.building or current.active)
    head = archive.head(settings)
    total = head.position

    events = 0
    present: set[int] = set()

    def history() -> Iterable[Event]:
        nonlocal events
        reporter = (lambda done: progress(done, total)) if progress else None
        for archived in archive.history(settings, total, reporter):
            events += 1
            present.add(archived.position)
            domain = _readable(archived)
            if domain is not None:
                yield domain

    view = projection.fold(history())
    rows = store.put_rows(settings, new, view.values())
    cutoff = time.time() - settings.hole_grace_seconds
    old_holes = {
        p
        for p in range(1, total + 1)
        if p not in present and archive.allocated_before(settings, p, cutoff, head)
    }
    store.save_watermark(settings, new, _contiguous(0, present | old_holes))
    building = store.Pointer(active=old, building=new)
    try:
        store.save_pointer(settings, building, expected=current)
        caught_up = catch_up(settings, new)
        store.save_pointer(settings, store.Pointer(active=new), expected=building)
    except store.PointerMoved:
        store.drop_version(settings, new)  # a later rebuild took over; it owns the switch
        raise
    store.drop_version(settings, old)
    if progress is not None:
        progress(total, total)
    return RebuildReport(
        old_version=old, new_version=new, events=events, rows=rows, catch_up=caught_up
    )


def replay(settings: Settings, from_position: int) -> CatchUpReport:
    """Re-apply every archived event from ``from_position`` to the head, to the active view."""
    version = store.active_version(settings)
    head = archive.head(settings)
    report = CatchUpReport(
        version=version,
        head=head.position,
        watermark_before=store.watermark(settings, version),
        watermark_after=store.watermark(settings, version),
    )
    for start in range(max(from_position, 1), head.position + 1, CHUNK):
        window = list(range(start, min(start + CHUNK, head.position + 1)))
        _apply_missing(settings, version, window, head, report)
    return report
