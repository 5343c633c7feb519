"""Commands: what a client asks the system to do, validated at the edge. Pure pydantic."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

MAX_TITLE = 200
MAX_CONTENT = 2000
MAX_AUTHOR = 80

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
Content = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT)
]

Author = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_AUTHOR)
]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class CreatePost(_Command):
    title: Title


class CreateComment(_Command):
    content: Content
    author: Author | None = None
    """Optional: the name the comment is signed with."""
