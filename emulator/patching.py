"""A patch of moto's classes applied for a block of code, and left as it was found."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def applied_while(
    already_applied: bool, apply: Callable[[], None], remove: Callable[[], None]
) -> Iterator[None]:
    """Apply the patch for the duration of the block; remove it afterwards unless it was
    applied before the block began."""
    apply()
    try:
        yield
    finally:
        if not already_applied:
            remove()
