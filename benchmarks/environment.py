"""``os.environ`` changed for a block and restored exactly after it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager


@contextmanager
def scoped_environ(values: Mapping[str, str] = {}, drop: Sequence[str] = ()) -> Iterator[None]:
    """Set ``values`` (and unset ``drop``) in ``os.environ``; restore it exactly on exit,
    whatever the block changed meanwhile."""
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
