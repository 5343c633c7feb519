"""Runtime settings, read from the environment of the Lambda function (or ``chalice local``).

Settings are read at call time, not cached at import, because the Chalice test client applies
a stage's environment variables around each invocation, and tests switch stages between cases.
"""

import json
import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from functions import names

DEFAULT_BANNED_WORDS = ("orange",)

# Environment variable -> settings field. Unset variables take the field's default.
VARIABLES = {
    names.PREFIX_VARIABLE: "prefix",
    "BANNED_WORDS": "banned_words",
    "EVENTS_TOPIC_ARN": "events_topic_arn",
    "ARCHIVE_BUCKET": "archive_bucket_name",
    "ARCHIVE_SEGMENT_SIZE": "segment_size",
    "ARCHIVE_RETENTION_DAYS": "archive_retention_days",
    "OUTBOX_SWEEP_GRACE_SECONDS": "sweep_grace_seconds",
    "ARCHIVE_HOLE_GRACE_SECONDS": "hole_grace_seconds",
    "ARCHIVE_SEAL_AGE_SECONDS": "seal_age_seconds",
}


class SettingsError(RuntimeError):
    """The environment does not describe a usable stage."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    prefix: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    banned_words: tuple[str, ...] = DEFAULT_BANNED_WORDS
    events_topic_arn: str | None = None
    archive_bucket_name: str | None = None
    segment_size: Annotated[int, Field(ge=1)] = 1000
    """Positions per archive bucket (one DynamoDB partition, one S3 segment)."""
    archive_retention_days: Annotated[int, Field(ge=1)] = 7
    """How long archive records stay in DynamoDB once sealed in S3 (they carry no TTL before)."""
    seal_age_seconds: Annotated[float, Field(ge=0)] = 86_400
    """The current, partial bucket is sealed into S3 once its oldest unsealed record is older."""
    sweep_grace_seconds: Annotated[float, Field(ge=0)] = 300
    """An unsent outbox record younger than this is left to the stream publisher, and a claim
    lasts this long: longer than any function that claims can run (docs/time.md)."""
    hole_grace_seconds: Annotated[float, Field(ge=0)] = 300
    """A missing archive position older than this is a hole: longer than any function that
    allocates positions can run (docs/time.md)."""

    @field_validator("banned_words", mode="before")
    @classmethod
    def _parse_words(cls, words: object) -> object:
        return json.loads(words) if isinstance(words, str) else words

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
        return _required(self.events_topic_arn, "EVENTS_TOPIC_ARN", "the events topic's ARN")

    @property
    def archive_bucket(self) -> str:
        return _required(self.archive_bucket_name, "ARCHIVE_BUCKET", "the archive bucket")


def _required(value: str | None, variable: str, what: str) -> str:
    if not value:
        raise SettingsError(f"{variable} is not set: it names {what}")
    return value


def load() -> Settings:
    """Settings from ``os.environ``; a clear error names the variable that is wrong."""
    values = {field: os.environ[var] for var, field in VARIABLES.items() if var in os.environ}
    values.setdefault("prefix", "")
    try:
        return Settings.model_validate(values)
    except (ValidationError, ValueError) as error:
        raise SettingsError(
            f"invalid stage environment ({', '.join(VARIABLES)}): {error}"
        ) from error


def import_time_prefix() -> str:
    """The prefix, for decorators that Chalice evaluates at import (queue names, stream ARN)."""
    return load().prefix
