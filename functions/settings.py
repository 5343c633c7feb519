"""Runtime settings, read from the environment of the Lambda function (or ``chalice local``).

Settings are read at call time, not cached at import, because the Chalice test client and the
local event-source runner apply a stage's environment variables around each invocation.
"""

import json
import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from functions import names

DEFAULT_BANNED_WORDS = ("orange",)


class SettingsError(RuntimeError):
    """The environment does not describe a usable stage."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    prefix: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    banned_words: tuple[str, ...] = DEFAULT_BANNED_WORDS
    events_topic_arn: str | None = None

    @field_validator("banned_words")
    @classmethod
    def _words_are_single_words(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(word.strip().lower() for word in words)
        if any(not word or " " in word for word in cleaned):
            raise ValueError("banned words must be non-empty single words")
        return cleaned

    def table(self, suffix: str) -> str:
        return names.resource(self.prefix, suffix)

    @property
    def topic_arn(self) -> str:
        if not self.events_topic_arn:
            raise SettingsError("EVENTS_TOPIC_ARN is not set: the publisher needs the topic's ARN")
        return self.events_topic_arn


def load() -> Settings:
    """Settings from ``os.environ``; a clear error names the variable that is wrong."""
    raw_words = os.environ.get("BANNED_WORDS")
    try:
        words = tuple(json.loads(raw_words)) if raw_words else DEFAULT_BANNED_WORDS
        return Settings(
            prefix=os.environ.get(names.PREFIX_VARIABLE, ""),
            banned_words=words,
            events_topic_arn=os.environ.get("EVENTS_TOPIC_ARN"),
        )
    except (ValidationError, ValueError, TypeError) as error:
        raise SettingsError(
            f"invalid stage environment ({names.PREFIX_VARIABLE}, BANNED_WORDS): {error}"
        ) from error


def import_time_prefix() -> str:
    """The prefix, for decorators that Chalice evaluates at import (queue names, stream ARN)."""
    return load().prefix
