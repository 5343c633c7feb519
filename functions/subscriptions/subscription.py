"""What a consumer declares to subscribe: its name, its handlers and its checkpoint's table. Pure.

A handler is called with the settings, the event and the *track* it applies to. A track is
one copy of the consumer's state with its own checkpoint: moderation and comments have one
(``main``); the query view has one per view version, so a blue/green rebuild can catch a new
version up while live updates write both.
"""

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from functions.settings import Settings

MAIN_TRACK = "main"

Handler = Callable[[Settings, Any, str], object]
"""Applies one event to one track. It must be idempotent and order-tolerant: the live path and
catch-up may both deliver the same event, at the same time."""


def _main_track(_settings: Settings) -> list[str]:
    return [MAIN_TRACK]


@dataclass(frozen=True)
class Subscription:
    name: str
    """The consumer's name, as in ``names.CONSUMERS``: its queue and functions are named by it."""
    table: str
    """The suffix of the consumer's own table, which also holds its checkpoint."""
    key: tuple[str] | tuple[str, str]
    """That table's key attributes: (hash,) or (hash, range)."""
    handlers: dict[type[Any], Handler]
    """The handler of each event class the consumer subscribes to."""
    tracks: Callable[[Settings], list[str]] = field(default=_main_track)
    """The tracks a live delivery applies to, the one to catch up by default first."""
    batch: Callable[[], AbstractContextManager[object]] = field(default=contextlib.nullcontext)
    """Opened around each batch the live path or a catch-up applies: state that lives for one
    batch (the query view writes each listing bucket's directory entry once a batch)."""

    @property
    def consumes(self) -> tuple[type[Any], ...]:
        return tuple(self.handlers)

    @property
    def event_types(self) -> frozenset[str]:
        """The names of the event types it consumes (as in the archive's ``event_type``)."""
        return frozenset(cls.model_fields["type"].default for cls in self.handlers)

    def main_track(self, settings: Settings) -> str:
        """The track catch-up, replay and status use by default (the query view's active one)."""
        return self.tracks(settings)[0]

    def handle(self, settings: Settings, event: Any, track: str) -> None:
        self.handlers[type(event)](settings, event, track)
