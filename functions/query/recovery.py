"""Query rebuild and recovery: the view is one user of ``functions.subscriptions``.

Catch-up and replay are the subscription's (``functions.subscriptions.follower``), with the
view's projection as the handler and each view version as a track. What is the view's own is
the blue/green ``rebuild``: a fresh version folded from the whole archive (S3 segments, then
the table), caught up, and switched to atomically (one pointer write); then the old one is
retired with one write, and the scheduled catch-up drops it in the background
(``drop_retired``), off the rebuild's critical path. While it builds, live updates write both
versions, so nothing written meanwhile is lost.

``rebuild`` folds the history in one process's memory. ``start_rebuild`` and ``rebuild_step``
are the same blue/green rebuild in bounded steps, as the stack's ``query_rebuild`` function
runs it: the new version is named in the pointer first (so live updates write it), then each
step catches it up by at most ``STEP`` positions from its own watermark (its progress, saved in
the table every ``follower.CHUNK`` positions), and the step that reaches the archive head
switches reads to it. A step that crashes or times out loses at most one chunk of work: the
next step resumes from the saved watermark. Memory is one step's positions at any history size.
"""

import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from functions import archive
from functions.events import Event
from functions.query import projection, store
from functions.query.service import SUBSCRIPTION
from functions.settings import Settings
from functions.subscriptions import checkpoint, follower

Progress = Callable[[int, int], None]
"""Called with (positions done, positions in all)."""

_PROJECTED_TYPES = frozenset(e.model_fields["type"].default for e in projection.PROJECTED_EVENTS)


STEP = 2_000
"""Positions a rebuild step catches up at most (seconds of work, well inside the function's
time: its runs stop stepping with 20 s left)."""


class RebuildProgress(BaseModel):
    """Where a chunked rebuild stands, read from the table."""

    active: str
    building: str | None
    """The version being built; None once the rebuild switched (or none was started)."""
    done: int
    """The building version's watermark (the positions it covers)."""
    total: int
    """The archive head."""

    @property
    def finished(self) -> bool:
        return self.building is None


class RebuildReport(BaseModel):
    old_version: str
    new_version: str
    events: int
    rows: int
    catch_up: follower.CatchUpReport
    retired: list[str]
    """Versions left for the background drop: the old one, and any abandoned half-built one."""


def catch_up(
    settings: Settings, version: str | None = None, limit: int | None = None
) -> follower.CatchUpReport:
    """Bring ``version`` of the view (default: the active one) up to the archive head (or at
    most ``limit`` positions further)."""
    return follower.catch_up(settings, SUBSCRIPTION, version, limit=limit)


def drop(settings: Settings, version: str, through: int) -> None:
    """Delete a view version: its rows and its checkpoint."""
    store.drop_version(settings, version)
    checkpoint.drop(settings, SUBSCRIPTION, version, through)


def drop_retired(settings: Settings) -> list[str]:
    """Drop every retired version (never one the pointer still names); the versions dropped.

    Deleting is idempotent, so a run cut short is finished by the next one.
    """
    written = store.pointer(settings).written
    dropped = []
    for version in store.retired(settings):
        if version not in written:
            drop(settings, version, caught_up_to(settings))
            dropped.append(version)
        store.forget_retired(settings, version)
    return dropped


def _next_version(version: str) -> str:
    return f"v{int(version.lstrip('v')) + 1}"


def rebuild(settings: Settings, progress: Progress | None = None) -> RebuildReport:
    """Build a new view version from the archive and switch reads to it.

    Order matters: the new rows are written while no live update writes that version yet
    (so unconditional batch writes are safe); then live updates start writing it too; then
    catch-up covers everything archived since the history was read; then reads switch.
    """
    current = store.pointer(settings)
    head = archive.head(settings)
    total = head.position
    retired = []
    if current.building:  # an earlier rebuild stopped half way, or is still going: take over
        retired.append(current.building)
    old, new = current.active, _next_version(current.building or current.active)

    events = 0
    present: set[int] = set()
    """Positions folded (or of types with no rows): not holes, not held."""
    unreadable: set[int] = set()

    def history() -> Iterable[Event]:
        nonlocal events
        reporter = (lambda done: progress(done, total)) if progress else None
        for archived in archive.history(settings, total, reporter):
            events += 1
            if archived.event_type not in _PROJECTED_TYPES:
                present.add(archived.position)
                continue  # no rows (CommentModerated): not worth parsing
            domain = follower.readable(archived)
            if domain is None:
                unreadable.add(archived.position)
            else:
                present.add(archived.position)
                yield domain
            # else: not applied, so the new version's watermark stays below it and its
            # catch-up (below) holds it, as the live version's did

    view = projection.fold(history())
    rows = store.put_rows(settings, new, view.values())
    cutoff = time.time() - settings.hole_grace_seconds
    old_holes = {
        p
        for p in range(1, total + 1)
        if p not in present
        and p not in unreadable
        and archive.allocated_before(settings, p, cutoff, head)
    }
    watermark = follower.contiguous(0, present | old_holes)
    checkpoint.save_watermark(settings, SUBSCRIPTION, new, watermark)
    # Folded above the watermark (behind a young hole or an event this code cannot read):
    # marked, so the catch-up below applies only what the fold could not.
    checkpoint.mark(settings, SUBSCRIPTION, new, [p for p in present if p > watermark])
    building = store.Pointer(active=old, building=new)
    # A ``store.PointerMoved`` from either save means another rebuild took over and owns the
    # switch; it propagates, and this version is left alone: the other rebuild retired it if
    # it read it as ``building``, and if it raced from the same pointer it builds a version
    # of the same name, which must not be dropped.
    store.save_pointer(settings, building, expected=current)
    for version in retired:
        store.retire(settings, version)
    caught_up = catch_up(settings, new)
    store.save_pointer(settings, store.Pointer(active=new), expected=building)
    store.retire(settings, old)
    if progress is not None:
        progress(total, total)
    return RebuildReport(
        old_version=old,
        new_version=new,
        events=events,
        rows=rows,
        catch_up=caught_up,
        retired=[*retired, old],
    )


def start_rebuild(settings: Settings) -> RebuildProgress:
    """Name a new version as being built (live updates then write it too); a rebuild already
    under way is left to continue. Its progress."""
    current = store.pointer(settings)
    if current.building is None:
        new = _next_version(current.active)
        # A version of this name is never reused: earlier ones were lower, or retired and
        # dropped with their checkpoints. Start its watermark at 0 explicitly all the same.
        checkpoint.save_watermark(settings, SUBSCRIPTION, new, 0)
        store.save_pointer(settings, store.Pointer(active=current.active, building=new), current)
    return rebuild_progress(settings)


def rebuild_step(settings: Settings, limit: int = STEP) -> RebuildProgress:
    """Catch the building version up by at most ``limit`` positions; switch reads to it once
    it reaches the archive head, and retire the old one. Nothing to do without a rebuild."""
    current = store.pointer(settings)
    if current.building is None:
        return rebuild_progress(settings)
    report = catch_up(settings, current.building, limit=limit)
    if report.watermark_after >= report.head:
        try:
            store.save_pointer(settings, store.Pointer(active=current.building), current)
        except store.PointerMoved:
            return rebuild_progress(settings)  # a concurrent step switched (and retires) first
        store.retire(settings, current.active)
    return rebuild_progress(settings)


def rebuild_progress(settings: Settings) -> RebuildProgress:
    current = store.pointer(settings)
    total = archive.head(settings).position
    if current.building is None:
        return RebuildProgress(active=current.active, building=None, done=total, total=total)
    done = checkpoint.watermark(settings, SUBSCRIPTION, current.building)
    return RebuildProgress(active=current.active, building=current.building, done=done, total=total)


def caught_up_to(settings: Settings) -> int:
    """The archive head now: a dropped version's checkpoint has marks no further than it."""
    return archive.head(settings).position
