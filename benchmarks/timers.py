"""Time spent inside some code while entered: moto's queries, module functions, AWS calls.

Each wraps what it times on entry and restores it on exit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MotoQueryTimer:
    """Seconds spent inside moto's DynamoDB ``Table.query`` (and ``scan``) while entered: the
    share of a measurement that is moto's own query work. moto's cost for a Query may follow
    the table's size; DynamoDB's follows the items returned."""

    seconds: float = 0.0
    calls: int = 0
    _saved: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> MotoQueryTimer:
        from moto.dynamodb.models.table import Table

        for name in ("query", "scan"):
            original = getattr(Table, name)
            self._saved[name] = original
            setattr(Table, name, self._timed(original))
        return self

    def _timed(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed

    def __exit__(self, *_: object) -> None:
        from moto.dynamodb.models.table import Table

        for name, original in self._saved.items():
            setattr(Table, name, original)
        self._saved.clear()


@dataclass
class PhaseTimer:
    """Seconds spent in each of some module functions while entered (wrapped, then restored).

    ``targets`` maps a phase name to (module, attribute name); the module's attribute is what
    callers look up at call time, so the wrapper sees every call.
    """

    targets: Mapping[str, tuple[Any, str]]
    seconds: dict[str, float] = field(default_factory=dict)
    _saved: list[tuple[Any, str, Any]] = field(default_factory=list)

    def __enter__(self) -> PhaseTimer:
        for phase, (module, attribute) in self.targets.items():
            original = getattr(module, attribute)
            self._saved.append((module, attribute, original))
            setattr(module, attribute, self._timed(phase, original))
            self.seconds.setdefault(phase, 0.0)
        return self

    def _timed(self, phase: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        return timed

    def __exit__(self, *_: object) -> None:
        for module, attribute, original in reversed(self._saved):
            setattr(module, attribute, original)
        self._saved.clear()


@dataclass
class ApiTimer:
    """CPU seconds spent inside AWS calls (botocore, and moto in-process) while entered."""

    seconds: float = 0.0
    _saved: Any = None
    _depth: int = 0

    def __enter__(self) -> ApiTimer:
        from botocore.client import BaseClient

        self._saved = BaseClient._make_api_call
        original: Callable[..., Any] = self._saved

        def timed(client: Any, *args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.process_time()
            try:
                return original(client, *args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.process_time() - start

        BaseClient._make_api_call = timed
        return self

    def __exit__(self, *_: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._saved
