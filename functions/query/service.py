"""Query use cases: project an event into the view; read the view. And its subscription."""

from pydantic import BaseModel

from functions import names
from functions.events import Event
from functions.query import projection, store
from functions.query.cursor import Cursor
from functions.settings import Settings
from functions.subscriptions.subscription import Subscription


def project(settings: Settings, event: Event, version: str) -> int:
    """Apply ``event`` to ``version`` of the view; the number of rows it changed."""
    return sum(store.put_if_newer(settings, version, r) for r in projection.rows_for(event))


def _written_versions(settings: Settings) -> list[str]:
    """The versions a live update writes: the active one and, during a rebuild, the new one."""
    return store.pointer(settings).written


SUBSCRIPTION = Subscription(
    name="query",
    table=names.VIEW_TABLE,
    key=names.VIEW_KEY,
    handlers=dict.fromkeys(projection.PROJECTED_EVENTS, project),
    tracks=_written_versions,
    batch=store.one_directory_write_a_batch,
)
"""The view consumes the events it is made of; each view version is a track of its own."""


class PostsPage(BaseModel):
    posts: dict[str, dict[str, object]]
    """The wire format of ``GET /posts``: posts by id, newest first."""
    next: Cursor | None
    """Where the next page starts; None on the last page."""


def posts_page(settings: Settings, after: Cursor | None, limit: int) -> PostsPage:
    """At most ``limit`` posts older than the cursor's (the newest if None), newest first."""
    found = store.page(
        settings, store.active_version(settings), after.after if after else None, limit
    )
    more = found.more and found.last is not None
    return PostsPage(
        posts=projection.render(found.rows),
        next=Cursor.after_post(found.last) if more and found.last else None,
    )


def one_post(settings: Settings, post_id: str) -> dict[str, object] | None:
    rows = store.post_rows(settings, store.active_version(settings), post_id)
    return projection.render(rows).get(post_id)
