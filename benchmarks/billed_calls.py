"""Every AWS call, with what AWS bills for it, and every Lambda invocation, with its own time.

``BilledCalls`` extends ``aws_calls.CallCounter``: around each DynamoDB write it reads the
items the write touches (before and after, with a client of its own, so those reads are not
counted) to price it by item size and index changes (``billing``); each read is priced by the
size of what it returned; each SNS and SQS call by its payload. ``timed_invocations`` times
each Lambda invocation the runner makes, and each API request, in CPU time of the function's
own code: the time spent inside AWS calls (moto's, here) is taken out and replaced by the
latency AWS is assumed to take (``ASSUMED_LATENCY_MS``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from benchmarks import aws_calls, billing

ASSUMED_LATENCY_MS = {
    # Not measured: what a function waits for each call inside AWS's network. DynamoDB's
    # single-item calls take single-digit milliseconds.
    "dynamodb": 5.0,
    "dynamodb.TransactWriteItems": 10.0,
    "dynamodb.BatchWriteItem": 10.0,
    "sns": 20.0,
    "s3.PutObject": 30.0,
    "s3": 20.0,
    "sqs": 10.0,
}
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def assumed_latency_ms(call: aws_calls.Call) -> float:
    key = f"{call.service}.{call.operation}"
    return ASSUMED_LATENCY_MS.get(key, ASSUMED_LATENCY_MS.get(call.service, 5.0))


@dataclass
class Bill:
    """What AWS bills for one call."""

    write_units: float = 0.0
    index_write_units: float = 0.0
    read_units: float = 0.0
    requests: int = 0
    """SNS, SQS and S3 requests (64 KB chunks for SNS and SQS)."""
    delivered: int = 0
    """Messages a ReceiveMessage returned (each one an SNS delivery into the queue)."""
    moto_seconds: float = 0.0
    """CPU time moto took to answer (from the first to the last ``before-send`` handler)."""
    ledger_seconds: float = 0.0
    """CPU time of the ledger's own reads and sums around the call."""

    @property
    def cpu_seconds(self) -> float:
        """CPU time inside the call that is not the function's. botocore's work on the client
        side (validation, serialising, signing, parsing) stays the function's, as on Lambda."""
        return self.moto_seconds + self.ledger_seconds


@dataclass
class _InFlight:
    before: list[Any] | None
    ledger_seconds: float
    moto_seconds: float = 0.0


@dataclass
class Invocation:
    function: str
    own_cpu_seconds: float
    waits_ms: float
    calls: int


_CURRENT = threading.local()
"""The call in flight on this thread (a thread makes one call at a time)."""


@dataclass
class BilledCalls(aws_calls.CallCounter):
    """The calls and invocations, billed. Single-threaded use (the runner's ``drain``): an
    invocation owns the calls made between its start and its end."""

    invocations: list[Invocation] = field(default_factory=list)
    bills: dict[int, Bill] = field(default_factory=dict)
    _tables: dict[str, billing.Table] = field(default_factory=dict)
    _started: dict[int, _InFlight] = field(default_factory=dict)
    _client: Any = None

    def _dynamodb(self) -> Any:
        """A DynamoDB client of the ledger's own: its reads are neither counted nor billed."""
        if self._client is None:
            from functions import aws

            region = aws.client("dynamodb").meta.region_name
            self._client = aws._session().client("dynamodb", region_name=region)
        return self._client

    def _before(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **rest: Any
    ) -> None:
        super()._before(params=params, model=model, context=context, **rest)
        call: aws_calls.Call = context["benchmark_call"]
        started = time.thread_time()
        before = self._touched(call) if call.service == "dynamodb" else None
        self._started[id(call)] = _InFlight(before, time.thread_time() - started)
        _CURRENT.call = call

    def _send_started(self, **_: Any) -> None:
        _CURRENT.sent = time.thread_time()

    def _send_answered(self, **_: Any) -> None:
        call = getattr(_CURRENT, "call", None)
        if call is not None:
            self._started[id(call)].moto_seconds += time.thread_time() - _CURRENT.sent

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **rest: Any) -> None:
        super()._after(parsed=parsed, context=context, **rest)
        _CURRENT.call = None
        call: aws_calls.Call | None = context.get("benchmark_call")
        if call is None or id(call) not in self._started:
            return
        flight = self._started.pop(id(call))
        started = time.thread_time()
        bill = self._bill(call, parsed, flight.before)
        bill.moto_seconds = flight.moto_seconds
        bill.ledger_seconds = flight.ledger_seconds + time.thread_time() - started
        self.bills[id(call)] = bill

    def __enter__(self) -> Self:
        from functions import aws

        super().__enter__()
        for service in self.services:
            events = aws.client(service).meta.events
            # moto answers in a before-send handler; these two run first and last around it
            events.register_first("before-send", self._send_started, unique_id=self._id("s"))
            events.register_last("before-send", self._send_answered, unique_id=self._id("a"))
        return self

    def __exit__(self, *exc: object) -> None:
        from functions import aws

        for service in self.services:
            events = aws.client(service).meta.events
            events.unregister("before-send", unique_id=self._id("s"))
            events.unregister("before-send", unique_id=self._id("a"))
        super().__exit__(*exc)

    def _id(self, which: str) -> str:
        return f"bench-send-{which}-{id(self)}"

    def bill(self, call: aws_calls.Call) -> Bill:
        return self.bills.get(id(call), Bill())

    # --- DynamoDB: the items a write touches, before and after -------------------------

    def _table(self, name: str) -> billing.Table:
        if name not in self._tables:
            description = self._dynamodb().describe_table(TableName=name)["Table"]
            self._tables[name] = billing.table_from_description(description)
        return self._tables[name]

    def _targets(self, call: aws_calls.Call) -> list[tuple[str, dict[str, Any], str]]:
        """(table, key, kind) of each item a write touches."""
        params = call.params
        if call.operation not in _WRITES:
            return []
        if call.operation == "TransactWriteItems":
            targets = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                key = body.get("Key") or self._key(body["TableName"], body["Item"])
                targets.append((body["TableName"], key, kind))
            return targets
        if call.operation == "BatchWriteItem":
            return [
                (
                    name,
                    request.get("DeleteRequest", {}).get("Key")
                    or self._key(name, request["PutRequest"]["Item"]),
                    "Batch",
                )
                for name, requests in params["RequestItems"].items()
                for request in requests
            ]
        name = params["TableName"]
        return [(name, params.get("Key") or self._key(name, params["Item"]), call.operation)]

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self._table(table).keys}

    def _touched(self, call: aws_calls.Call) -> list[dict[str, Any] | None]:
        client = self._dynamodb()
        return [
            client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            for table, key, _ in self._targets(call)
        ]

    def _bill(self, call: aws_calls.Call, parsed: dict[str, Any], before: list[Any] | None) -> Bill:
        bill = Bill()
        if call.service == "dynamodb":
            if call.operation in _WRITES and before is not None:
                after = self._touched(call)
                for (table, _, kind), old, new in zip(
                    self._targets(call), before, after, strict=True
                ):
                    change = billing.ItemChange(
                        self._table(table),
                        old,
                        new,
                        transactional=call.operation == "TransactWriteItems",
                        condition_check=kind == "ConditionCheck",
                    )
                    table_units, index_units = billing.change_units(change)
                    bill.write_units += table_units
                    bill.index_write_units += index_units
            else:
                bill.read_units = _read_units(call, parsed)
        elif call.service in ("sns", "sqs"):
            if not call.empty:
                bill.requests = billing.chunked_requests(_payload_bytes(call, parsed))
            if call.operation == "ReceiveMessage":
                bill.delivered = len(parsed.get("Messages", []))
        elif call.service == "s3":
            bill.requests = 1
        return bill


def _read_units(call: aws_calls.Call, parsed: dict[str, Any]) -> float:
    consistent = bool(call.params.get("ConsistentRead"))
    match call.operation:
        case "GetItem":
            return billing.read_call_units([billing.item_size(parsed.get("Item"))], consistent)
        case "Query" | "Scan":
            sizes = [billing.item_size(item) for item in parsed.get("Items", [])]
            return billing.read_call_units(sizes, consistent)
        case "BatchGetItem":
            return _batch_get_units(call, parsed)
        case "TransactGetItems":
            sizes = [billing.item_size(r.get("Item")) for r in parsed.get("Responses", [])]
            return billing.read_call_units(sizes, True, transactional=True, single=False)
    return 0.0


def _batch_get_units(call: aws_calls.Call, parsed: dict[str, Any]) -> float:
    """Each key a ``BatchGetItem`` asked for (and was answered) costs a ``GetItem``: its item's
    size, at least one unit, found or not; consistency is each table's own."""
    units = 0.0
    unprocessed = parsed.get("UnprocessedKeys") or {}
    for table, request in call.params["RequestItems"].items():
        found = parsed.get("Responses", {}).get(table, [])
        asked = len(request["Keys"]) - len(unprocessed.get(table, {}).get("Keys", []))
        sizes = [billing.item_size(item) for item in found]
        sizes += [0] * max(0, asked - len(found))
        consistent = bool(request.get("ConsistentRead"))
        units += billing.read_call_units(sizes, consistent, single=False)
    return units


def _payload_bytes(call: aws_calls.Call, parsed: dict[str, Any]) -> int:
    params = call.params
    match call.operation:
        case "Publish" | "SendMessage":
            return len(str(params.get("Message") or params.get("MessageBody", "")).encode())
        case "PublishBatch" | "SendMessageBatch":
            entries = params.get("PublishBatchRequestEntries") or params.get("Entries", [])
            return sum(
                len(str(e.get("Message") or e.get("MessageBody", "")).encode()) for e in entries
            )
        case "ReceiveMessage":
            return sum(len(m.get("Body", "").encode()) for m in parsed.get("Messages", []))
    return len(json.dumps(params, default=str).encode())


@contextmanager
def timed_invocations(ledger: BilledCalls) -> Iterator[None]:
    """Time every invocation of the runner's sources while entered, into ``ledger``."""
    from emulator import runner

    original = runner.Source._invoke

    def timed(source: Any, event: dict[str, Any], records: int) -> tuple[bool, Any]:
        with timed_invocation(ledger, source.name):
            return original(source, event, records)

    runner.Source._invoke = timed  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        runner.Source._invoke = original  # type: ignore[method-assign]


@contextmanager
def timed_invocation(ledger: BilledCalls, function: str) -> Iterator[None]:
    """One invocation of ``function``: its CPU time less the time inside its AWS calls, and the
    latency AWS is assumed to take for those calls."""
    first, started = len(ledger.calls), time.thread_time()
    try:
        yield
    finally:
        elapsed = time.thread_time() - started
        calls = ledger.calls[first:]
        inside = sum(ledger.bill(c).cpu_seconds for c in calls)
        waits = sum(assumed_latency_ms(c) for c in calls)
        ledger.invocations.append(
            Invocation(function, max(0.0, elapsed - inside), waits, len(calls))
        )
