"""Query use cases: project an event into the view; read the view."""

from functions.events import Event
from functions.query import projection, store
from functions.settings import Settings


def project(
    settings: Settings, event: Event, position: int | None, versions: list[str] | None = None
) -> int:
    """Apply ``event`` to the view versions being written; the number of rows it changed.

    By default those are the active version and, during a rebuild, the one being built. With
    a position, the event is also marked seen, for the version's watermark.
    """
    changed = 0
    for version in versions or store.pointer(settings).written:
        changed += sum(store.put_if_newer(settings, version, r) for r in projection.rows_for(event))
        if position is not None:
            store.mark_seen(settings, version, position)
    return changed


def all_posts(settings: Settings) -> dict[str, dict[str, object]]:
    return projection.render(store.rows(settings, store.active_version(settings)))


def one_post(settings: Settings, post_id: str) -> dict[str, object] | None:
    rows = store.post_rows(settings, store.active_version(settings), post_id)
    return projection.render(rows).get(post_id)
