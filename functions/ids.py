"""Ids for posts and comments: sortable by creation time, so views list things in order."""

import secrets
import time

MAX_ID = 64
"""The longest id anything accepts: on a path, in an event. Ours are 28 characters."""


def new_id() -> str:
    """48 bits of milliseconds then 64 random bits, as 28 hex digits (like a ULID)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
