"""moto's DynamoDB and SQS patches: one fix, and the speed patches that stayed.

The fix, ``dynamodb-transactions``, is written up in ``docs/moto-fixes.md``; what each speed
patch buys is in ``benchmarks/results/SPEED_PATCHES.md``. ``emulator.moto_patches`` applies them.
"""

import copy
import functools
import re
import sys
import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from moto.core.utils import unix_time, unix_time_millis
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
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
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend

from emulator.moto_patches import Patch, Wrap, applied, register

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


_TOKEN = re.compile(r"#?[A-Za-z_][A-Za-z0-9_]*|:[A-Za-z0-9_]+|\S", re.ASCII)
_CLAUSES = ("SET", "REMOVE")
_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,16})?", re.ASCII)
_SIMPLE_SIZE = 300_000
"""Bytes under DynamoDB's 400 KB item limit within which a simple update cannot cross it."""


def _actions(expression: str) -> list[tuple[str, str | None]] | None:
    """(path, value placeholder or None for REMOVE) of each action of an update expression made
    only of ``SET path = :value`` and ``REMOVE path`` actions (one clause of each at most, a
    path a top-level name or ``#name``), in the order written; None for any other expression."""
    tokens = _TOKEN.findall(expression)
    actions: list[tuple[str, str | None]] = []
    clauses: set[str] = set()
    at = 0
    while at < len(tokens):
        clause = tokens[at].upper()
        if clause not in _CLAUSES or clause in clauses:
            return None
        clauses.add(clause)
        at += 1
        while True:
            path = tokens[at] if at < len(tokens) else ""
            if not (path[:1] == "#" or path[:1].isalpha() or path[:1] == "_"):
                return None
            if path.upper() in _CLAUSES or path.upper() in ("ADD", "DELETE"):
                return None
            if clause == "SET":
                if tokens[at + 1 : at + 2] != ["="] or not tokens[at + 2 : at + 3]:
                    return None
                value = tokens[at + 2]
                if value[:1] != ":":
                    return None
                actions.append((path, value))
                at += 3
            else:
                actions.append((path, None))
                at += 1
            if tokens[at : at + 1] != [","]:
                break
            at += 1
    return actions or None


def _direct_update(
    table: Table, current: Item | None, key: dict[str, Any], op: dict[str, Any]
) -> dict[str, Any] | None:
    """The attributes an Update of plain ``SET`` and ``REMOVE`` actions leaves a stored item
    with, or None where moto's own update must work it out (an item not stored yet, any other
    expression, a key attribute,
    a value not a plain string, number, boolean or null, or one moto refuses for an attribute
    an index defines, a name or value missing, a path named twice, a reserved word, an item
    near the size limit).

    moto applies such an update by deep-copying its parsed tree, running ten validating passes
    over it and executing it: most of a batch's cost, for a result this states directly.
    """
    actions = _actions(op["UpdateExpression"])
    if actions is None or current is None:  # moto's update checks a new item's key and size
        return None
    names = op.get("ExpressionAttributeNames") or {}
    values = op.get("ExpressionAttributeValues") or {}
    table_keys = {table.hash_key_attr, table.range_key_attr} - {None}
    if set(key) != table_keys:
        return None
    defined = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    index_keys = set(table.attribute_keys)
    reserved = _reserved_words()
    resolved: list[tuple[str, dict[str, Any] | None]] = []
    size = 0
    for path, placeholder in actions:
        bare = path[0] != "#"
        name = (None if path.upper() in reserved else path) if bare else names.get(path)
        if not isinstance(name, str) or name in table_keys:
            return None
        value = None if placeholder is None else values.get(placeholder)
        if placeholder is not None:
            if not isinstance(value, dict) or len(value) != 1:
                return None
            [(kind, scalar)] = value.items()
            if type(scalar) is not _SCALARS.get(kind):
                return None
            if kind == "N" and not _NUMBER.fullmatch(str(scalar)):
                return None
            if kind == "NULL" and scalar is not True:
                return None
            if defined.get(name, kind) != kind or (name in index_keys and scalar == ""):
                return None  # moto refuses a defined attribute's other type, an empty index key
            size += len(name.encode()) + len(str(scalar).encode())
        resolved.append((name, value))
    if len({name for name, _ in resolved}) != len(resolved):
        return None
    if current.size() + size > _SIMPLE_SIZE:
        return None
    attributes: dict[str, Any] = current.to_json()["Attributes"]  # fresh: nothing shared
    for name, value in resolved:
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = dict(value)
    return attributes


def _moto_update(
    table: Table, current: Item | None, key: dict[str, Any], op: dict[str, Any]
) -> dict[str, Any] | None:
    return None  # moto's own update works every Update out


_simple_update = _moto_update
"""What works an Update out directly (None: moto's update); the speed patch replaces it."""


@functools.cache
def _reserved_words() -> frozenset[str]:
    return frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


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
    attributes = _simple_update(table, current, key, op)
    if attributes is None:  # moto's update, on a copy; to_json keeps binaries as moto's bytes
        updated = _write(_sandbox(backend, table_name, current), "Update", op, key)
        attributes = updated.to_json()["Attributes"]
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
    """The only items a query can return, or None where this fix does not narrow."""
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
"""``active`` while this thread answers a Query under the lock (``_locked_query``)."""


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


def _retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's retention check, reading the one attribute it needs."""
    retention: int = self.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


def _visible(self: Queue) -> list[Message]:
    """Queue.messages: the visible, undelayed messages, with one clock reading."""
    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _not_visible(self: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def _delayed(self: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def _delete_message(self: Queue, receipt_handle: str) -> None:
    """Queue.delete_message in one pass: the message that ever had this receipt handle."""
    if receipt_handle in self.deleted_messages:
        return  # already deleted: moto, like SQS, takes it again
    found = [m for m in self._messages if m.had_receipt_handle(receipt_handle)]
    if not found:
        raise ReceiptHandleIsInvalid()
    for message in found:
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
    gone = {id(message) for message in found}
    self._messages = [m for m in self._messages if id(m) not in gone]


_PARSED_KEPT = 1024
"""Parsed condition expressions kept (the most recently used): a batch's share one."""
_conditions: "OrderedDict[str, tuple[Any, dict[str, Any]]]" = OrderedDict()


def _caching_condition(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def parse(self: ConditionExpressionParser) -> Any:
        """ConditionExpressionParser.parse, once per expression, names and values.

        The parsed condition is only ever evaluated (``expr(item)``), which changes nothing in it,
        and holds copies of the values, not the request's. The lists the parse leaves on the
        parser (the names and values it found, which moto's handlers check for unused ones) are
        left again on a parser that finds it parsed, as fresh lists: moto's callers extend them.
        """
        parts = (self.condition_expression, self.expression_attribute_names)
        key = repr((*parts, self.expression_attribute_values))
        with _LOCK:
            parsed = _conditions.get(key)
            if parsed is not None:
                _conditions.move_to_end(key)
        if parsed is None:
            # parsed from a copy of the values: moto's SET stores a request's value objects in the
            # item, and a later ADD changes them in place, which would change a kept condition
            request_values = self.expression_attribute_values
            self.expression_attribute_values = copy.deepcopy(request_values)
            try:
                condition = original(self)
            finally:
                self.expression_attribute_values = request_values
            found = {name: value for name, value in vars(self).items() if isinstance(value, list)}
            parsed = (condition, found)
            with _LOCK:
                _conditions[key] = parsed
                if len(_conditions) > _PARSED_KEPT:
                    _conditions.popitem(last=False)
        for name, value in parsed[1].items():
            setattr(self, name, list(value))
        return parsed[0]

    return parse


def _caching_update(make: Any) -> Any:
    """UpdateExpressionParser.make, once per expression: every user of the tree deep-copies it
    (moto's Validator) or only reads it (the handlers' placeholder checks)."""

    @functools.lru_cache(maxsize=_PARSED_KEPT)
    def parse(cls: type, expression: str) -> Any:
        return make.__func__(cls, expression)

    return classmethod(parse)  # type: ignore[arg-type]


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
        "dynamodb-expressions",
        "speed",
        lambda: [
            (ConditionExpressionParser, "parse", Wrap(_caching_condition)),
            (UpdateExpressionParser, "make", Wrap(_caching_update)),
        ],
        forget=_conditions.clear,
    )
)
register(
    Patch(
        "dynamodb-update",
        "speed",
        lambda: [(sys.modules[__name__], "_simple_update", _direct_update)],
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
register(
    Patch(
        "sqs-receive",
        "speed",
        lambda: [
            (SQSBackend, "is_message_valid_based_on_retention_period", _retained),
            (Queue, "messages", property(_visible)),
            (Queue, "approximate_number_of_messages_not_visible", property(_not_visible)),
            (Queue, "approximate_number_of_messages_delayed", property(_delayed)),
            (Queue, "delete_message", _delete_message),
        ],
    )
)


def patched() -> AbstractContextManager[None]:
    """``emulator.moto_patches.applied()``, for the callers that still name this module."""
    return applied()
