"""Every AWS call the code makes while a ``CallCounter`` is entered, and who made it.

Counted through botocore's ``provide-client-params`` and ``after-call`` event hooks on the
cached clients of ``functions.aws``, and attributed by the call stack: a function's own code
(``function:<name>``), the runner polling for a function (``poller:<name>``, Lambda's event
source mapping), or the caller (the benchmark, an operator).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Self

from benchmarks.machine import ROOT

RUNNER_FILE = str(ROOT / "emulator" / "runner.py")
SERVICES = ("dynamodb", "dynamodbstreams", "sqs", "sns", "s3", "cloudformation")


@dataclass
class Call:
    actor: str
    """``function:<name>`` (a Lambda's own code), ``poller:<name>`` (Lambda's event source
    mapping polling for that function) or ``caller`` (the benchmark, an operator)."""
    service: str
    operation: str
    params: dict[str, Any]
    empty: bool = False
    """A poll that returned nothing (GetRecords with no records, ReceiveMessage with none)."""
    items: int = 0
    """Items a Query, Scan or GetRecords returned."""


def _actor(frame: FrameType | None) -> str:
    while frame is not None:
        if frame.f_code.co_filename == RUNNER_FILE:
            source = frame.f_locals.get("self")
            name = getattr(source, "name", "runner")
            return f"function:{name}" if frame.f_code.co_name == "_invoke" else f"poller:{name}"
        if frame.f_code.co_filename.endswith(os.path.join("chalice", "test.py")):
            return "function:api_handler"
        frame = frame.f_back
    return "caller"


@dataclass
class CallCounter:
    """Every AWS call the cached clients of ``functions.aws`` make, while entered.

    Hooked on botocore's ``provide-client-params`` (the call and its parameters) and
    ``after-call`` (what it returned) events of each client.
    """

    services: Sequence[str] = SERVICES
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        call = Call(
            _actor(sys._getframe(1)),
            model.service_model.service_name,
            model.name,
            params,
        )
        context["benchmark_call"] = call
        with self._lock:
            self.calls.append(call)

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("benchmark_call")
        if call is None:
            return
        if call.operation == "GetRecords":
            call.items = len(parsed.get("Records", []))
            call.empty = call.items == 0
        elif call.operation == "ReceiveMessage":
            call.items = len(parsed.get("Messages", []))
            call.empty = call.items == 0
        elif call.operation in ("Query", "Scan"):
            call.items = int(parsed.get("Count", 0))

    def __enter__(self) -> Self:
        from functions import aws

        for service in self.services:
            events = aws.client(service).meta.events
            # provide-client-params carries the call's own parameters (before-call has the
            # serialised request); both events share the request's context.
            events.register(
                "provide-client-params", self._before, unique_id=f"bench-before-{id(self)}"
            )
            events.register("after-call", self._after, unique_id=f"bench-after-{id(self)}")
        return self

    def __exit__(self, *_: object) -> None:
        from functions import aws

        for service in self.services:
            events = aws.client(service).meta.events
            events.unregister("provide-client-params", unique_id=f"bench-before-{id(self)}")
            events.unregister("after-call", unique_id=f"bench-after-{id(self)}")

    def by_operation(self) -> dict[str, int]:
        counts = Counter(f"{c.service}.{c.operation}" for c in self.calls)
        return dict(sorted(counts.items()))
