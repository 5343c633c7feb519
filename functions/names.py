"""Every resource name and key name, in one place.

The CloudFormation template under ``infra/`` names its resources with the same
``<prefix>-<suffix>`` rule; ``tests/integration/test_drift.py`` fails if the two disagree.
"""

from typing import Final

PREFIX_VARIABLE: Final = "BLOG_PREFIX"
"""Environment variable that holds the resource prefix of a stage (e.g. ``blog-dev``)."""

# Table suffixes.
POSTS_TABLE: Final = "posts"
COMMENTS_TABLE: Final = "comments"
MODERATION_TABLE: Final = "moderation"
OUTBOX_TABLE: Final = "outbox"
VIEW_TABLE: Final = "query-view"
ARCHIVE_TABLE: Final = "event-archive"
PUBLISHER_FAILURES_QUEUE: Final = "publisher-failures"
IDEMPOTENCY_TABLE: Final = "idempotency"

# Topic and queue suffixes. Each consuming service has a queue and a dead-letter queue.
EVENTS_TOPIC: Final = "events"
CONSUMERS: Final = ("moderation", "comments", "query")
DLQ_SUFFIX: Final = "-dlq"

# Key attribute names, per table.
POSTS_KEY: Final = "id"
COMMENTS_KEY: Final = ("post_id", "comment_id")
MODERATION_KEY: Final = "comment_id"
OUTBOX_KEY: Final = "event_id"
VIEW_KEY: Final = ("view", "key")
ARCHIVE_KEY: Final = ("bucket", "position")
IDEMPOTENCY_KEY: Final = "key"

# The idempotency table's time-to-live attribute: a key is remembered for a day.
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expires_at"

# The outbox's sparse index of unsent records: only unsent records carry the ``unsent``
# attribute, so the sweeper reads exactly them, oldest first (per shard), without a scan.
OUTBOX_UNSENT_INDEX: Final = "unsent-index"
OUTBOX_UNSENT_KEY: Final = ("unsent", "created_at")
OUTBOX_UNSENT_SHARDS: Final = 16
"""Partitions of the unsent index: a record's ``unsent`` is ``unsent#<shard>``, the shard taken
from its event id's hash, so no index partition takes every event's writes (docs/scaling.md).
The index projects keys only; the sweeper reads the records themselves from the table."""

# The archive's time-to-live attribute: records may expire once their segment is in S3.
ARCHIVE_TTL_ATTRIBUTE: Final = "expires_at"
ARCHIVE_SEGMENT_PREFIX: Final = "segments/"

# Custom metrics (CloudWatch embedded metric format), with the stage's prefix as dimension.
METRIC_NAMESPACE: Final = "Blog"
METRIC_DIMENSION: Final = "Stage"
OLDEST_UNSENT_METRIC: Final = "OldestUnsentOutboxAgeSeconds"
CONSUMER_LAG_METRIC: Final = "ConsumerLagPositions"
"""Positions between a consumer's watermark and the archive head, with a ``Consumer`` dimension."""
CONSUMER_DIMENSION: Final = "Consumer"
PARKED_EVENTS_METRIC: Final = "ParkedEvents"
"""Events a consumer parked: held below its watermark, not applied (``Consumer`` dimension)."""

# Each consumer's checkpoint lives in its own table, under keys that start with this prefix:
# the watermark (``watermark``) and the positions applied live above it (``seen#<bucket>``).
# No post, comment or view key can start with it (ids are ULID-like, view keys are versions).
CHECKPOINT_PREFIX: Final = "~checkpoint#"
SEEN_BUCKET_SIZE: Final = 10_000
"""Positions per seen-marks item: one item stays far below DynamoDB's 400 KB item limit."""
# Events a consumer could not apply (an unknown schema version, or a handler that raised) are
# held: their positions in the ``held`` number set of the watermark's item, so the watermark is
# read with them and never passes them; each one's failure record under ``parked#<position>``.
HELD_ATTRIBUTE: Final = "held"
PARKED_PART: Final = "parked"
PARK_AFTER_TRIES: Final = 3
"""Failed applications (live or catch-up) after which a readable event is parked: reported and
acknowledged, no longer retried by its queue; catch-up retries it every run."""

# SNS message attributes: the event type (for subscription filter policies) and the event's
# global position in the archive (for consumers' watermarks).
EVENT_TYPE_ATTRIBUTE: Final = "event_type"
POSITION_ATTRIBUTE: Final = "archive_position"


def resource(prefix: str, suffix: str) -> str:
    """The physical name of a table, topic or queue of the stage with this prefix."""
    return f"{prefix}-{suffix}"


def queue(prefix: str, consumer: str) -> str:
    return resource(prefix, f"{consumer}-queue")


def dead_letter_queue(prefix: str, consumer: str) -> str:
    return queue(prefix, consumer) + DLQ_SUFFIX


def queue_arn_placeholder(prefix: str, consumer: str) -> str:
    """A stand-in ARN for a consumer's queue, for Chalice's ``on_sqs_message`` at import.

    An ARN (a plain string), not a name: a name makes Chalice write an ``Fn::Sub`` that the
    packaged template could not replace with ``!GetAtt <Queue>.Arn`` (a ``!GetAtt`` merged into
    an ``Fn::Sub`` is an invalid template; docs/platform-notes.md).
    The local runner reads the queue's name from it.
    """
    return f"arn:aws:sqs:us-east-1:000000000000:{queue(prefix, consumer)}"


def archive_bucket(prefix: str, account: str) -> str:
    """S3 bucket names are global, so the archive bucket's name also carries the account."""
    return resource(prefix, f"archive-{account}")
