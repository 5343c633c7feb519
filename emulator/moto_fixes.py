"""moto's DynamoDB patches: the fix of its transactions, and the speed patch of its queries.

The fix, ``dynamodb-transactions``, is written up in ``docs/moto-fixes.md``. The speed patch,
``dynamodb-query``, hands moto's own query code only the items of the partition (or index hash
key value) asked for, from index maps kept up to date by every write, instead of every item of
the table, and answers from the live items under the writes' lock instead of deep copies; what
it buys is in ``benchmarks/results/SPEED_PATCHES.md``. ``emulator.moto_patches`` applies both.
"""

import copy
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    ResourceNotFoundException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import Patch, Wrap, register

P = ParamSpec("P")
R = TypeVar("R")

_LOCK = threading.RLock()
_LOCKED_WRITES = ("put_item", "update_item", "delete_item")
_SUBSTITUTIONS = ("ExpressionAttributeNames", "ExpressionAttributeValues")

# (operation type, operation, key, the attributes an Update leaves) of a write that passed its
# checks.
_Write = tuple[str, dict[str, Any], dict[str, Any], Any]
# moto's cancellation reason for one item: (code, message, old item), all None if it passed.
_Reason = tuple[str | None, str | None, dict[str, Any] | None]


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    @wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def _write(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> Any:
    """Do one transaction write the way moto does, minus its already-checked condition.

    Returns the item an Update left (moto's ``update_item`` returns it), else None.
    """
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        return (
            backend.update_item(  # moto's own transaction passes None for absent names and values
                op["TableName"],
                key,
                update_expression=op["UpdateExpression"],
                expression_attribute_names=op.get("ExpressionAttributeNames"),  # type: ignore[arg-type]
                expression_attribute_values=op.get("ExpressionAttributeValues"),  # type: ignore[arg-type]
            )
        )
    return None


def _commit(backend: DynamoDBBackend, write: _Write) -> None:
    """Do a checked write for real. An Update stores the attributes of the item it leaves,
    worked out by the check: moto would parse, validate and apply its expression again."""
    op_type, op, key, attributes = write
    if op_type == "Update":
        backend.put_item(op["TableName"], attributes)
    else:
        _write(backend, op_type, op, key)


def _sandbox(backend: DynamoDBBackend, table_name: str, current: Item | None) -> DynamoDBBackend:
    """A throwaway backend whose one table has the real table's schema and a copy of `current`.

    A write done there raises exactly what the real write would, and touches nothing real.
    """
    table = copy.copy(backend.get_table(table_name))  # shallow: shares the schema, not the items
    table.items = defaultdict(dict)
    table.stream_shard = None
    if current is not None:
        item = copy.deepcopy(current)
        if item.range_key is None:
            table.items[item.hash_key] = item  # type: ignore[assignment]  # as moto does
        else:
            table.items[item.hash_key][item.range_key] = item
    sandbox = DynamoDBBackend(backend.region_name, backend.account_id)
    sandbox.tables[table_name] = table
    return sandbox


def _updated(
    backend: DynamoDBBackend, table_name: str, current: Item | None, key: Any, op: dict[str, Any]
) -> dict[str, Any]:
    """The attributes an Update leaves its item with; raises what the update, or the PutItem
    the write stores them with, would raise."""
    table = backend.get_table(table_name)
    # moto's update, on a copy; to_json keeps binaries as moto's bytes
    updated = _write(_sandbox(backend, table_name, current), "Update", op, key)
    attributes: dict[str, Any] = updated.to_json()["Attributes"]
    table._validate_key_sizes(attributes)  # before any write, not when the write refuses it
    return attributes


def _check(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_Write]:
    """Validate every operation and evaluate every condition, changing nothing.

    Raises what moto's own transact_write_items raises: validation errors at once, otherwise
    TransactionCanceledException with one reason per item. Returns the writes to do.
    """
    targets: set[tuple[str, str]] = set()
    writes: list[_Write] = []
    reasons: list[_Reason] = []
    for transact_item in transact_items:
        if len(transact_item) > 1:
            raise TransactWriteSingleOpException
        old_item: dict[str, Any] | None = None
        try:
            op_type, op = next(iter(transact_item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = backend.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)

            current = backend.get_item(table_name, key)
            condition = get_filter_expression(
                *(op.get(p) for p in ("ConditionExpression", *_SUBSTITUTIONS))
            )
            if not condition.expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=old_item)
            if op_type == "Update":
                result = _updated(backend, table_name, current, key, op)
            else:
                result = _write(_sandbox(backend, table_name, current), op_type, op, key)
            writes.append((op_type, op, key, result))
            reasons.append((None, None, None))
        except MockValidationException:
            raise
        except ConditionalCheckFailed as e:
            reasons.append(("ConditionalCheckFailed", str(e.message), old_item))
        except Exception as e:
            reasons.append((type(e).__name__, str(e), None))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    return writes


@_locked
def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's transact_write_items without the table copies: check everything, then write."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    for write in _check(self, transact_items):
        _commit(self, write)


class _Candidates:
    """A table as moto's ``Table.query`` sees it, whose ``all_items`` are only ``items``."""

    def __init__(self, table: Table, items: list[Item]) -> None:
        self._table, self._items = table, items

    def all_items(self) -> list[Item]:
        return self._items  # any order: moto's query sorts what it keeps

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _rows(table: Table, partition: Any) -> list[Item]:
    """The items of one entry of ``table.items``: a dict by range key, or one item."""
    return list(partition.values()) if table.range_key_attr else [partition]


def _candidates(
    table: Table,
    hash_key: DynamoType | None,
    index_name: str | None,
    hash_conditions: list[tuple[str, DynamoType]] | None,
) -> list[Item] | None:
    """The only items a query can return, or None where this patch does not narrow."""
    if index_name is None:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        return [] if partition is None else _rows(table, partition)
    if not hash_conditions:
        return None
    names = tuple(name for name, _ in hash_conditions)
    maps = _INDEXED.setdefault(table, {})
    if names not in maps:
        maps[names] = _IndexMap(table, names)
    return maps[names].items(tuple(value for _, value in hash_conditions))


_Key = tuple[DynamoType, DynamoType | None]
"""An item's primary key: (hash key, range key or None)."""


class _IndexMap:
    """One table's items by the values of some index hash key attributes (items lacking one
    are not in the index, as in DynamoDB's sparse indexes)."""

    def __init__(self, table: Table, names: tuple[str, ...]) -> None:
        self.names = names
        self._by_value: dict[tuple[DynamoType, ...], dict[_Key, Item]] = {}
        self._value_of: dict[_Key, tuple[DynamoType, ...]] = {}
        for partition in table.items.values():
            for item in _rows(table, partition):
                self.add(item)

    def items(self, values: tuple[DynamoType, ...]) -> list[Item]:
        return list(self._by_value.get(values, {}).values())

    def add(self, item: Item) -> None:
        values = tuple(item.attrs.get(name) for name in self.names)
        if any(value is None for value in values):
            return
        key = (item.hash_key, item.range_key)
        self._by_value.setdefault(values, {})[key] = item  # type: ignore[arg-type]
        self._value_of[key] = values  # type: ignore[assignment]

    def discard(self, key: _Key) -> None:
        values = self._value_of.pop(key, None)
        if values is not None:
            partition = self._by_value[values]
            del partition[key]
            if not partition:
                del self._by_value[values]


_INDEXED: "weakref.WeakKeyDictionary[Table, dict[tuple[str, ...], _IndexMap]]" = (
    weakref.WeakKeyDictionary()
)
"""Each table's index maps, by the index hash key attribute names they are for."""


def _primary_key(table: Table, attributes: dict[str, Any] | None) -> _Key | None:
    """The key of the item a write names (in its item or its key), None if it names none."""
    if not attributes or table.hash_key_attr not in attributes:
        return None
    if table.range_key_attr is None:
        return DynamoType(attributes[table.hash_key_attr]), None
    if table.range_key_attr not in attributes:
        return None
    return (
        DynamoType(attributes[table.hash_key_attr]),
        DynamoType(attributes[table.range_key_attr]),
    )


def _reindexing(method: Callable[..., R]) -> Callable[..., R]:
    """A backend write (put, update or delete of one item), under the lock, that brings the
    written table's index maps up to date with the item as the write left it.

    The three take ``(table_name, item_attrs or key, ...)``, by position or by name.
    """

    @wraps(method)
    def write(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> R:
        with _LOCK:
            table_name = args[0] if args else kwargs["table_name"]
            attributes = args[1] if len(args) > 1 else kwargs.get("item_attrs", kwargs.get("key"))
            try:
                table = self.get_table(table_name)  # by name or ARN
            except ResourceNotFoundException:
                return method(self, *args, **kwargs)
            maps = _INDEXED.get(table)
            key = _primary_key(table, attributes)
            if not maps or key is None:
                return method(self, *args, **kwargs)
            try:
                return method(self, *args, **kwargs)
            finally:
                current = table.get_item(*key)
                for index in maps.values():
                    index.discard(key)
                    if current is not None:
                        index.add(current)

    return write


def _forgetting(method: Callable[..., R]) -> Callable[..., R]:
    """A PartiQL call, which writes around the backend's item methods: drop every index map."""

    @wraps(method)
    def statement(*args: Any, **kwargs: Any) -> R:
        with _LOCK:
            try:
                return method(*args, **kwargs)
            finally:
                _INDEXED.clear()

    return statement


def _querying(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's Table.query over the partition (or index key) asked for, not the whole table."""

    @wraps(original)
    def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
            hash_conditions = kwargs.get("hash_key_conditions")
            candidates = _candidates(self, hash_key, index_name, hash_conditions)
            if candidates is None:
                return original(self, hash_key, *args, **kwargs)
            if getattr(_answering, "active", False):
                candidates = [_uncopied(item) for item in candidates]
            return original(_Candidates(self, candidates), hash_key, *args, **kwargs)

    return query


_answering = threading.local()
"""``active`` while this thread answers a Query under the lock (``_answering_live``)."""


class _Live(Item):
    """A live item as a query sees it: moto's deep copy of it is the item itself."""

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Live":
        return self


def _uncopied(item: Item) -> Item:
    live = object.__new__(_Live)
    live.__dict__ = item.__dict__  # the same attributes, read under the writes' lock
    return live


def _answering_live(original: Callable[..., Any]) -> Callable[..., Any]:
    """DynamoHandler.query under the writes' lock, answering from the live items: no write runs
    until the handler has turned them into fresh dicts and lists, so moto's copy is not needed."""

    @wraps(original)
    def query(self: DynamoHandler) -> Any:
        with _LOCK:
            _answering.active = True
            try:
                return original(self)
            finally:
                _answering.active = False

    return query


_PARTIQL = ("execute_statement", "execute_transaction", "batch_execute_statement")

register(
    Patch(
        "dynamodb-transactions",
        "fix",
        lambda: [
            (DynamoDBBackend, "transact_write_items", _transact_write_items),
            *((DynamoDBBackend, name, Wrap(_locked)) for name in _LOCKED_WRITES),
            (Table, "query", Wrap(_locked)),  # moto reads the live items a write changes
        ],
    )
)
register(
    Patch(
        "dynamodb-query",
        "speed",
        lambda: [
            (Table, "query", Wrap(_querying)),
            (DynamoHandler, "query", Wrap(_answering_live)),
            *((DynamoDBBackend, name, Wrap(_reindexing)) for name in _LOCKED_WRITES),
            *((DynamoDBBackend, name, Wrap(_forgetting)) for name in _PARTIQL),
        ],
        forget=_INDEXED.clear,
    )
)
