"""Query use cases: project an event into the active view; read the view."""

from functions.events import Event
from functions.query import projection, store
from functions.settings import Settings


def project(settings: Settings, event: Event) -> int:
    """Apply ``event`` to the active view; the number of rows it changed."""
    version = store.active_version(settings)
    return sum(store.put_if_newer(settings, version, row) for row in projection.rows_for(event))


def all_posts(settings: Settings) -> dict[str, dict[str, object]]:
    return projection.render(store.rows(settings, store.active_version(settings)))


def one_post(settings: Settings, post_id: str) -> dict[str, object] | None:
    rows = store.post_rows(settings, store.active_version(settings), post_id)
    return projection.render(rows).get(post_id)
