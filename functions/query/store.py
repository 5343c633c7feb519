"""The query view table (adapter).

Rows of one view version share a partition (``view`` = the version); the sort key is the
projection's row key (``<post_id>#`` for a post, ``<post_id>#<comment_id>`` for a comment), so
a post and its comments are contiguous and in creation order. Beside them:

- the pointer row (``meta``/``active``) names the version reads use and, during a rebuild, the
  version being built, which live updates also write;
- each version's checkpoint (a track of the query subscription, ``functions.subscriptions``),
  under ``~checkpoint#query#<version>``.
"""

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter

from functions import aws, names
from functions.dynamo import batch_write, from_item, to_item
from functions.query.projection import Row
from functions.settings import Settings

PARTITION, SORT = names.VIEW_KEY
DEFAULT_VERSION = "v1"
_META = "meta"
_POINTER = {PARTITION: _META, SORT: "active"}
_ROW = TypeAdapter[Row](Row)


class Pointer(BaseModel):
    active: str = DEFAULT_VERSION
    building: str | None = None

    @property
    def written(self) -> list[str]:
        """The versions a live update writes: the active one and any being built."""
        return [self.active] + ([self.building] if self.building else [])


def _table(settings: Settings) -> str:
    return settings.table(names.VIEW_TABLE)


def pointer(settings: Settings) -> Pointer:
    response = aws.client("dynamodb").get_item(
        TableName=_table(settings), Key=to_item(_POINTER), ConsistentRead=True
    )
    item = response.get("Item")
    return Pointer.model_validate(from_item(item)) if item else Pointer()


class PointerMoved(Exception):
    """The pointer is not what this writer read: another rebuild took over."""


def save_pointer(settings: Settings, value: Pointer, expected: Pointer) -> None:
    """Replace the pointer, only if it still is ``expected`` (a missing row is the default)."""
    building = "building = :building" if expected.building else "attribute_not_exists(building)"
    condition = f"active = :active AND {building}"
    values = {":active": expected.active}
    if expected.building:
        values[":building"] = expected.building
    if expected == Pointer():  # the row may not exist yet
        condition = f"attribute_not_exists(active) OR ({condition})"
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=_table(settings),
            Item=to_item({**_POINTER, **value.model_dump(exclude_none=True)}),
            ConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
        )
    except client.exceptions.ConditionalCheckFailedException as error:
        raise PointerMoved(f"the view pointer is no longer {expected}") from error


def active_version(settings: Settings) -> str:
    return pointer(settings).active


def put_rows(settings: Settings, version: str, rows: Iterable[Row]) -> int:
    """Write rows unconditionally, 25 to a call: only for a version nobody else writes yet."""
    requests = [
        {"PutRequest": {"Item": to_item({PARTITION: version, SORT: r.key, **r.model_dump()})}}
        for r in rows
    ]
    batch_write(_table(settings), requests)
    return len(requests)


def drop_version(settings: Settings, version: str) -> None:
    """Delete a version's rows (its checkpoint is the subscription's to drop)."""
    keys = [
        {PARTITION: version, SORT: key}
        for page in aws.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=_table(settings),
            KeyConditionExpression="#view = :view",
            ExpressionAttributeNames={"#view": PARTITION, "#sort": SORT},
            ExpressionAttributeValues=to_item({":view": version}),
            ProjectionExpression="#sort",
        )
        for key in (from_item(item)[SORT] for item in page["Items"])
    ]
    batch_write(_table(settings), [{"DeleteRequest": {"Key": to_item(key)}} for key in keys])


def put_if_newer(settings: Settings, version: str, row: Row) -> bool:
    """Write ``row`` unless the stored row is as new or newer; True if it was written.

    The same rule as ``projection.supersedes``, enforced by DynamoDB as a condition.
    """
    client = aws.client("dynamodb")
    item = {PARTITION: version, SORT: row.key, **row.model_dump()}
    try:
        client.put_item(
            TableName=_table(settings),
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(#sort) OR #version < :version",
            ExpressionAttributeNames={"#sort": SORT, "#version": "version"},
            ExpressionAttributeValues=to_item({":version": row.version}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _query(settings: Settings, version: str, prefix: str | None) -> list[Row]:
    condition = "#view = :view" + (" AND begins_with(#sort, :prefix)" if prefix else "")
    values: dict[str, Any] = {":view": version}
    if prefix:
        values[":prefix"] = prefix
    pages = (
        aws.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=_table(settings),
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#view": PARTITION, **({"#sort": SORT} if prefix else {})},
            ExpressionAttributeValues=to_item(values),
        )
    )
    rows = []
    for page in pages:
        for item in page["Items"]:
            values = from_item(item)
            del values[PARTITION], values[SORT]
            rows.append(_ROW.validate_python(values))
    return rows


def rows(settings: Settings, version: str) -> list[Row]:
    return _query(settings, version, None)


def post_rows(settings: Settings, version: str, post_id: str) -> list[Row]:
    return _query(settings, version, f"{post_id}#")
