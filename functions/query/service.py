"""Query use cases: project an event into the view; read the view."""

from functions.events import Event
from functions.query import projection, store
from functions.settings import Settings


def project(settings: Settings, event: Event, position: int | None, versions: list[str]) -> int:
    """Apply ``event`` to ``versions`` of the view; the number of rows it changed.

    The live path passes the pointer's written versions (the active one and, during a rebuild,
    the one being built); recovery passes the version it repairs. With a position, the event
    is also marked seen, for the version's watermark.
    """
    changed = 0
    for version in versions:
        changed += sum(store.put_if_newer(settings, version, r) for r in projection.rows_for(event))
        if position is not None:
            store.mark_seen(settings, version, position)
    return changed


def all_posts(settings: Settings) -> dict[str, dict[str, object]]:
    return projection.render(store.rows(settings, store.active_version(settings)))


def one_post(settings: Settings, post_id: str) -> dict[str, object] | None:
    rows = store.post_rows(settings, store.active_version(settings), post_id)
    return projection.render(rows).get(post_id)
