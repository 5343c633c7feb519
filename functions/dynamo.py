"""DynamoDB plumbing shared by the adapters: item (de)serialisation and transaction errors."""

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

Item = dict[str, Any]


def to_item(values: Mapping[str, Any]) -> Item:
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-operation reasons of a cancelled transaction ('None' for the ones that passed)."""
    reasons = error.response.get("CancellationReasons", [])
    return [reason.get("Code", "None") for reason in reasons]


def is_cancelled(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "TransactionCanceledException")
