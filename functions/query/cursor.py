"""The cursor and query parameters of ``GET /posts`` (pure).

A cursor names the last post of the page before: the next page holds the posts with smaller
ids (older ones). It is opaque to clients: base64url of a small JSON document with a check
field, so a cursor that is not one of ours (edited, truncated, from another API) is refused
with a clear error instead of reading from an arbitrary key. The check is a digest, not a
secret signature: a cursor carries nothing a client could not already ask for.
"""

import base64
import binascii
import hashlib
import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_POST_ID = r"^[0-9A-Za-z_-]{1,64}$"
"""The ids ``functions.http.path_id`` lets through: anything else is no post of ours."""


class InvalidCursor(ValueError):
    """The ``after`` parameter is not a cursor this API gave out."""


def _check(after: str) -> str:
    return hashlib.sha256(f"blog-posts-cursor:{after}".encode()).hexdigest()[:16]


class Cursor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    after: str = Field(pattern=_POST_ID)
    """The id of the last post already listed."""
    check: str = ""

    @model_validator(mode="after")
    def _checked(self) -> Self:
        if self.check != _check(self.after):
            raise ValueError("the cursor's check does not match")
        return self

    @classmethod
    def after_post(cls, post_id: str) -> "Cursor":
        return cls(after=post_id, check=_check(post_id))

    def encode(self) -> str:
        raw = json.dumps(self.model_dump(), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        if len(text) > 400:
            raise InvalidCursor("the cursor is too long to be one of ours")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return cls.model_validate_json(raw)
        except (binascii.Error, ValueError, ValidationError) as error:
            raise InvalidCursor("the cursor is not one this API gave out") from error


class PageQuery(BaseModel):
    """The query string of ``GET /posts``; other parameters are ignored."""

    model_config = ConfigDict(frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, strict=False)
    after: str | None = None

    @property
    def cursor(self) -> Cursor | None:
        return None if self.after is None else Cursor.decode(self.after)
