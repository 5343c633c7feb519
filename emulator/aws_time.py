"""AWS's rules that depend on time, for the local engine: moto enforces none of them.

Each rule follows the AWS documentation page it names, not what the blog's design expects of
it, and reads its settings from the deployed resources (the template's own values).

- **DynamoDB TTL** (DynamoDB developer guide, "Using time to live (TTL) in DynamoDB" and
  "Working with expired items and time to live"): an item expires once the epoch time in its
  TTL attribute is earlier than now, and DynamoDB deletes it in the background at any moment
  after that (typically within 48 hours); until then it is still read. ``expire_items``
  deletes every expired item at once: the harshest moment AWS allows.
"""

from __future__ import annotations

import math
from typing import Any

from functions import aws


def ttl_attributes() -> dict[str, str]:
    """Table name -> its TTL attribute, for every table whose TTL is enabled."""
    client = aws.client("dynamodb")
    found: dict[str, str] = {}
    for page in client.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            described = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if described.get("TimeToLiveStatus") == "ENABLED":
                found[table] = described["AttributeName"]
    return found


def expire_items(now: float = math.inf) -> int:
    """Delete every item whose TTL has passed at ``now`` (default: every item with a TTL, as
    DynamoDB will, sooner or later); the number deleted."""
    client = aws.client("dynamodb")
    deleted = 0
    for table, attribute in ttl_attributes().items():
        keys = [
            k["AttributeName"] for k in client.describe_table(TableName=table)["Table"]["KeySchema"]
        ]
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                if _expired(item.get(attribute), now):
                    client.delete_item(TableName=table, Key={k: item[k] for k in keys})
                    deleted += 1
    return deleted


def _expired(value: dict[str, Any] | None, now: float) -> bool:
    """DynamoDB's rule: a Number attribute holding an epoch time in seconds earlier than now.
    An item without it, or with another type, never expires."""
    if value is None or "N" not in value:
        return False
    return float(value["N"]) < now
