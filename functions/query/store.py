"""The query view table (adapter).

Rows of one view version share a partition (``view`` = the version); the sort key is the
projection's row key (``<post_id>#`` for a post, ``<post_id>#<comment_id>`` for a comment), so
a post and its comments are contiguous and in creation order. A pointer row names the active
version; a rebuild writes a new version and moves the pointer.
"""

from typing import Any

from pydantic import TypeAdapter

from functions import aws, names
from functions.dynamo import from_item, to_item
from functions.query.projection import Row
from functions.settings import Settings

PARTITION, SORT = names.VIEW_KEY
DEFAULT_VERSION = "v1"
_POINTER = {PARTITION: "meta", SORT: "active"}
_ROW = TypeAdapter[Row](Row)


def _table(settings: Settings) -> str:
    return settings.table(names.VIEW_TABLE)


def active_version(settings: Settings) -> str:
    response = aws.client("dynamodb").get_item(
        TableName=_table(settings), Key=to_item(_POINTER), ConsistentRead=True
    )
    item = response.get("Item")
    return str(from_item(item)["version"]) if item else DEFAULT_VERSION


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
