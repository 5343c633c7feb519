"""DynamoDB plumbing shared by the adapters: item (de)serialisation and transaction errors."""

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions import aws

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

Item = dict[str, Any]


def to_item(values: Mapping[str, Any]) -> Item:
    """Typed attribute values; floats become Decimals, as DynamoDB's number type needs."""
    return {
        name: _SERIALIZER.serialize(Decimal(repr(value)) if isinstance(value, float) else value)
        for name, value in values.items()
    }


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


BATCH_ATTEMPTS = 8


class Unprocessed(RuntimeError):
    """DynamoDB kept leaving items unprocessed (throttling); the caller fails and is retried."""


def batch_write(table: str, requests: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 requests a call, retrying unprocessed items with backoff."""
    client = aws.client("dynamodb")
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        for attempt in range(BATCH_ATTEMPTS):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise Unprocessed(f"{len(pending[table])} writes to {table} left unprocessed")


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-operation reasons of a cancelled transaction ('None' for the ones that passed)."""
    reasons = error.response.get("CancellationReasons", [])
    return [reason.get("Code", "None") for reason in reasons]


def is_cancelled(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "TransactionCanceledException")


def batch_get(table: str, keys: list[Item]) -> list[Item]:
    """BatchGetItem (consistent), 100 keys a call, retrying unprocessed keys with backoff."""
    client = aws.client("dynamodb")
    found: list[Item] = []
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {
            table: {"Keys": keys[start : start + 100], "ConsistentRead": True}
        }
        for attempt in range(BATCH_ATTEMPTS):
            response = client.batch_get_item(RequestItems=pending)
            found += response.get("Responses", {}).get(table, [])
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise Unprocessed(f"{len(pending[table]['Keys'])} reads from {table} left unprocessed")
    return found
