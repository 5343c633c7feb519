"""Idempotent writes: a retried ``POST`` with the same ``Idempotency-Key`` writes nothing.

The key's record is one more ``Put`` in the write's own outbox transaction (``outbox.write``),
on the condition that no live record holds the key. So either the item, its outbox record and
the key's record are all written, or none is: a key can never have written twice, and a write
that committed always left its key behind, whatever fails after the commit. A retry finds the
key taken (the transaction is cancelled, nothing is written) and answers from the record: the
same created resource. The record keeps a digest of the first request (method, path, body), so
the same key with another request is refused. docs/api.md explains why this, and not
Powertools' idempotency utility.

Records live ``RETENTION`` in the idempotency table; DynamoDB's time to live deletes them some
time after ``expires_at`` (AWS documentation, "Using time to live (TTL) in DynamoDB": expired
items are typically deleted within a few days, and until then reads still return them), so an
expired record is ignored by the condition and by the read, not trusted to be gone.
"""

import hashlib
import json
import time
from typing import Annotated, Any

from botocore.exceptions import ClientError
from chalice.app import Request
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from functions import aws, names
from functions.dynamo import cancellation_codes, from_item, is_cancelled, to_item
from functions.http import HttpError
from functions.settings import Settings

HEADER = "Idempotency-Key"
RETENTION_SECONDS = 24 * 60 * 60
"""How long a key is remembered: a client retries within minutes, not days."""
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
"""Visible ASCII, 1 to 255 characters: a UUID, a ULID, any token a client draws."""
_KEY, _TTL = names.IDEMPOTENCY_KEY, names.IDEMPOTENCY_TTL_ATTRIBUTE
_CONFLICT = "TransactionConflict"

Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class IdempotentRequest(BaseModel):
    """A write's key and the digest of the request it was first used with."""

    model_config = ConfigDict(frozen=True)

    key: Key
    fingerprint: str


class Stored(BaseModel):
    """A key's record: what the first request was, and what it created."""

    fingerprint: str
    created: str
    """The created resource's answer, as JSON."""
    expires_at: int


def from_request(request: Request) -> IdempotentRequest | None:
    """The request's key (None without the header), with the digest of the method, the route,
    its path parameters and the body (as parsed JSON, so key order and spacing do not count);
    400 for a key that is not 1 to 255 visible ASCII characters. Call it after the body was
    parsed: it must be JSON."""
    key = request.headers.get(HEADER.lower())
    if key is None:
        return None
    request_parts = {
        "method": request.method,
        "route": request.context.get("resourcePath"),
        "path": request.uri_params or {},
        "body": json.loads(request.raw_body or b"null"),
    }
    canonical = json.dumps(request_parts, sort_keys=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    try:
        return IdempotentRequest(key=key, fingerprint=fingerprint)
    except ValidationError as error:
        raise HttpError(
            400,
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to 255 visible ASCII characters (no spaces)",
            [{"field": HEADER, "problem": "not 1 to 255 visible ASCII characters"}],
        ) from error


class KeyReused(HttpError):
    def __init__(self) -> None:
        super().__init__(
            409,
            "idempotency_key_reused",
            f"this {HEADER} was used with another request: use a new key for a new request",
        )


class KeyInUse(HttpError):
    def __init__(self) -> None:
        super().__init__(
            409,
            "idempotency_key_in_use",
            f"a request with this {HEADER} is being processed: retry it in a moment",
        )


def _table(settings: Settings) -> str:
    return settings.table(names.IDEMPOTENCY_TABLE)


def put_operation(
    settings: Settings, request: IdempotentRequest, created: object, now: float | None = None
) -> dict[str, Any]:
    """The transaction operation that takes the key, unless a live record holds it."""
    now = time.time() if now is None else now
    return {
        "Put": {
            "TableName": _table(settings),
            "Item": to_item(
                {
                    _KEY: request.key,
                    "fingerprint": request.fingerprint,
                    "created": json.dumps(created, separators=(",", ":")),
                    _TTL: int(now) + RETENTION_SECONDS,
                }
            ),
            "ConditionExpression": "attribute_not_exists(#key) OR #ttl < :now",
            "ExpressionAttributeNames": {"#key": _KEY, "#ttl": _TTL},
            "ExpressionAttributeValues": to_item({":now": int(now)}),
        }
    }


def stored(settings: Settings, key: str) -> Stored | None:
    """The key's live record, or None (never written, or expired)."""
    item = (
        aws.client("dynamodb")
        .get_item(TableName=_table(settings), Key=to_item({_KEY: key}), ConsistentRead=True)
        .get("Item")
    )
    if not item:
        return None
    record = Stored.model_validate(from_item(item))
    return record if record.expires_at >= int(time.time()) else None


def replay(settings: Settings, request: IdempotentRequest) -> Any | None:
    """What the key's first request created (as JSON data), or None if no live record holds
    the key; ``KeyReused`` if the first request was another one."""
    record = stored(settings, request.key)
    if record is None:
        return None
    if record.fingerprint != request.fingerprint:
        raise KeyReused()
    return json.loads(record.created)


def is_conflict(error: ClientError, index: int) -> bool:
    """Whether a transaction was cancelled because another one held the key's record."""
    codes = cancellation_codes(error)
    return is_cancelled(error) and index < len(codes) and codes[index] == _CONFLICT
