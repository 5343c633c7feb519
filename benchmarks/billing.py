"""AWS's billing rules, as its documentation states them, for the cost benchmark: pure functions
of what a call sent and what the table held, no AWS and no moto.

- DynamoDB: an item's size (attribute names plus values, by type), write request units per
  started 1 KB of the larger of the item before and after the write (a failed condition still
  costs the item's units), read units per started 4 KB of all a call read (half for an
  eventually consistent read), twice for a transaction; a write to a global secondary index is
  charged on the index entry (its keys, the table's keys and the projected attributes: the
  100 bytes of overhead AWS documents are storage's), and a change of the index key is a
  delete plus a put.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations
- SNS and SQS: a request per started 64 KB of payload; a batch call is one request.
  https://aws.amazon.com/sns/pricing/ and https://aws.amazon.com/sqs/pricing/
- Lambda: duration rounded up to the millisecond, times the configured memory; CPU in
  proportion to memory (one vCPU at 1,769 MB).
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

KB = 1024
WRITE_UNIT_BYTES = 1 * KB
READ_UNIT_BYTES = 4 * KB
CHUNK_BYTES = 64 * KB
ONE_VCPU_MB = 1769

Item = Mapping[str, Mapping[str, Any]]
"""An item in DynamoDB's wire form: ``{"name": {"S": "text"}, ...}``."""


# --- DynamoDB item sizes --------------------------------------------------------------------


def number_size(text: str) -> int:
    """A number's stored size: one byte per two significant digits, plus one (plus one more
    for a negative number). Leading and trailing zeros are not significant. AWS calls this
    approximate (it stores base-100 digits): near a 1 KB boundary a unit may differ."""
    negative = text.strip().startswith("-")
    with localcontext(prec=40):  # DynamoDB keeps 38 significant digits; 28 would round them
        digits = Decimal(text.strip().lstrip("+-")).normalize().as_tuple().digits
    significant = "".join(str(d) for d in digits).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1 + (1 if negative else 0)


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in wire form."""
    ((kind, content),) = value.items()
    match kind:
        case "S":
            return len(content.encode())
        case "N":
            return number_size(content)
        case "B":
            return len(content)
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(s.encode()) for s in content)
        case "NS":
            return sum(number_size(n) for n in content)
        case "BS":
            return sum(len(b) for b in content)
        case "L":
            return 3 + sum(value_size(element) + 1 for element in content)
        case "M":
            return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in content.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Item | None) -> int:
    """An item's size: each attribute's name (UTF-8 bytes) and value."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write request units of one item's write: one per started 1 KB, at least one."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """Read request units of ``size`` bytes read in one operation: one per started 4 KB (at
    least one), half for an eventually consistent read."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # "KEYS_ONLY", "INCLUDE" or "ALL"
    included: tuple[str, ...] = ()

    def entry_size(self, item: Item, table_keys: Sequence[str]) -> int:
        return item_size(self.projected(item, table_keys))

    def holds(self, item: Item | None) -> bool:
        return item is not None and all(key in item for key in self.keys)

    def projected(self, item: Item, table_keys: Sequence[str]) -> dict[str, Any]:
        if self.projection == "ALL":
            return dict(item)
        return {k: item[k] for k in {*self.keys, *table_keys, *self.included} if k in item}


@dataclass(frozen=True)
class Table:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()


def table_from_description(description: Mapping[str, Any]) -> Table:
    """A ``Table`` from ``DescribeTable``'s ``Table``."""
    indexes = tuple(
        Index(
            name=index["IndexName"],
            keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
            projection=index["Projection"]["ProjectionType"],
            included=tuple(index["Projection"].get("NonKeyAttributes", ())),
        )
        for index in description.get("GlobalSecondaryIndexes", ())
    )
    return Table(
        name=description["TableName"],
        keys=tuple(k["AttributeName"] for k in description["KeySchema"]),
        indexes=indexes,
    )


def index_write_units(table: Table, before: Item | None, after: Item | None) -> int:
    """Write units the table's global secondary indexes take for one item going from
    ``before`` to ``after`` (None: no item). Putting an entry in, taking one out and
    rewriting one's projected attributes are a write each; moving an entry to a new key is
    a delete and a put."""
    units = 0
    for index in table.indexes:
        held_before, held_after = index.holds(before), index.holds(after)
        if held_before and before is not None and held_after and after is not None:
            if any(before[k] != after[k] for k in index.keys):
                units += write_units(index.entry_size(before, table.keys))
                units += write_units(index.entry_size(after, table.keys))
            elif index.projected(before, table.keys) != index.projected(after, table.keys):
                units += write_units(index.entry_size(after, table.keys))
        elif held_before and before is not None:
            units += write_units(index.entry_size(before, table.keys))
        elif held_after and after is not None:
            units += write_units(index.entry_size(after, table.keys))
    return units


@dataclass(frozen=True)
class ItemChange:
    """One item a write touched: the table, the item before and after (None: absent), and
    whether it was written inside a transaction."""

    table: Table
    before: Item | None
    after: Item | None
    transactional: bool = False
    condition_check: bool = False


def change_units(change: ItemChange) -> tuple[int, int]:
    """(table, index) write units of one item's write. A transaction's item costs twice; a
    write whose condition failed still costs its item's units (``after`` equals ``before``);
    a condition check writes nothing to an index."""
    size = max(item_size(change.before), item_size(change.after))
    table = write_units(size) * (2 if change.transactional else 1)
    if change.condition_check:
        return table, 0
    return table, index_write_units(change.table, change.before, change.after)


def read_call_units(
    sizes: Sequence[int], consistent: bool, transactional: bool = False, single: bool = True
) -> float:
    """Read units of a read: one ``Query`` (``single``: its items' sizes summed, then rounded)
    or a batch of separate items (each rounded on its own); twice for a transaction."""
    if single:
        units = read_units(sum(sizes), consistent)
    else:
        units = sum(read_units(size, consistent) for size in sizes)
    return units * (2 if transactional else 1)


# --- SNS, SQS, Lambda -----------------------------------------------------------------------


def chunked_requests(payload_bytes: int) -> int:
    """SNS and SQS bill a request per started 64 KB of payload; an empty call is one request."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


def lambda_billed_ms(own_cpu_seconds: float, waits_ms: float, memory_mb: int) -> int:
    """A Lambda invocation's billed milliseconds: its own CPU time, stretched by the share of a
    vCPU its memory buys (one vCPU at 1,769 MB), plus the time it waits on AWS, rounded up."""
    stretch = max(1.0, ONE_VCPU_MB / memory_mb)
    return max(1, math.ceil(own_cpu_seconds * 1000 * stretch + waits_ms))


def gb_seconds(memory_mb: int, billed_ms: float) -> float:
    return memory_mb / 1024 * billed_ms / 1000
