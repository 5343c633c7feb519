"""What every benchmark shares: the machine, the in-process stack, seeding, counting, results.

- ``machine()``: cores, Python, moto and boto versions, the commit and the date, stated in every
  result.
- ``in_process_stack()``: moto in-process (``mock_aws`` with the project's moto fix), the infra
  template deployed into it, the event-source runner and ``chalice.test.Client``, as
  ``tests/conftest.py`` builds them, with a realistic archive segment size (1,000). The process
  environment is restored on exit, so a smoke test can run it inside pytest.
- ``seed_archive()``: a history written straight into the archive (positions, records, S3
  segments) with the project's own archive functions: fast, and the same data the publisher
  would have written.
- ``CallCounter``: every AWS API call, through botocore's ``before-call``/``after-call`` event
  hooks, attributed to who made it (a function's code, a Lambda poller, or the caller).
- ``write_result()``: ``<name>.json`` plus ``RESULTS.md``, rebuilt from every JSON present.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
RUNNER_FILE = str(ROOT / "emulator" / "runner.py")

BENCH_ENVIRONMENT = {
    # The test stage's 10 positions per bucket would make every range read span many buckets;
    # production's default is 1,000.
    "ARCHIVE_SEGMENT_SIZE": "1000",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

# The order of the sections in RESULTS.md.
SECTIONS = (
    "recovery_vs_history",
    "rebuild",
    "requests_per_action",
    "local_latency",
    "compare_commits",
    "hold_under_load",
)


# --- the machine ----------------------------------------------------------------------------


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def git(*arguments: str) -> str:
    """``git <arguments>`` in this checkout; its output, stripped."""
    return subprocess.run(  # noqa: S603 (git from PATH, fixed arguments)
        ["git", *arguments],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def _commit() -> str:
    try:
        head = git("rev-parse", "--short", "HEAD")
        # results written by an earlier benchmark of the same run are not code changes
        dirty = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def machine() -> dict[str, Any]:
    """What a reader needs to weigh a number: where and when it was measured."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "moto": _version("moto"),
        "boto3": _version("boto3"),
        "botocore": _version("botocore"),
        "chalice": _version("chalice"),
        "commit": _commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line(info: Mapping[str, Any]) -> str:
    return (
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), {info['system']}, "
        f"Python {info['python']}, moto {info['moto']}, boto3 {info['boto3']}, "
        f"chalice {info['chalice']}, commit {info['commit']}."
    )


# --- numbers --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (x, y) points (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed:``; ``elapsed()``: seconds since entry, frozen on exit."""
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def fmt(value: float, digits: int = 3) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def pyplot() -> Any:
    """matplotlib's pyplot for files (no display), or None when matplotlib is not installed:
    a plot is a convenience, the table is the result."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot")
        return None
    return plt


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the environment and the in-process stack -----------------------------------------------


@contextmanager
def scoped_environ(values: Mapping[str, str], drop: Sequence[str] = ()) -> Iterator[None]:
    """Set ``values`` (and unset ``drop``) in ``os.environ``; restore it exactly on exit."""
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Api:
    """The HTTP API through ``chalice.test.Client``, JSON in and out."""

    client: Any

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        response = self.client.http.post(
            path, headers={"Content-Type": "application/json"}, body=json.dumps(body)
        )
        return response.status_code, json.loads(response.body)

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.http.get(path)
        return response.status_code, json.loads(response.body)


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@dataclass
class InProcess:
    api: Api
    runner: Any  # emulator.runner.EventSourceRunner
    consumers: Any  # emulator.control.LocalConsumers

    @property
    def settings(self) -> Any:  # functions.settings.Settings, read now (as the code does)
        from functions import settings

        return settings.load()


@contextmanager
def quiet_moto() -> Iterator[None]:
    """Hide moto's "No Moto CloudFormation support for ..." (logged at each stack describe)."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        moto_logger.setLevel(level)


@contextmanager
def in_process_stack(overrides: Mapping[str, str] | None = None) -> Iterator[InProcess]:
    """A fresh moto with the stack deployed, the runner (``drain()``) and the test client."""
    from emulator.config import stage_environment
    from emulator.moto_env import EMULATOR_ENVIRONMENT

    environment = {
        **EMULATOR_ENVIRONMENT,
        **stage_environment("test"),
        **BENCH_ENVIRONMENT,
        **(overrides or {}),
    }
    with (
        scoped_environ(environment, drop=("AWS_ENDPOINT_URL",)),
        quiet_moto(),
        warnings.catch_warnings(),
        # the functions' metrics are log lines on stdout (CloudWatch embedded metric format)
        contextlib.redirect_stdout(_Discard()),
    ):
        warnings.filterwarnings("ignore", "Tried to parse AWS", UserWarning)
        # After the environment: Chalice evaluates queue names and the stream ARN at import.
        from chalice.test import Client
        from moto import mock_aws

        import app
        from emulator import moto_fixes, stack
        from emulator.control import LocalConsumers
        from emulator.local import build_runner
        from emulator.template import ROOT as PROJECT
        from functions import aws, settings

        with moto_fixes.patched(), mock_aws():
            aws.reset()
            try:
                prefix = settings.load().prefix
                stack.deploy(aws.client, prefix)
                runner = build_runner(app.app, aws.client, prefix, fast_retry=True)
                with Client(app.app, stage_name="test", project_dir=str(PROJECT)) as client:
                    # The client applies the test stage's variables (segment size 10) around
                    # each request only; the routes never read the segment size.
                    yield InProcess(Api(client), runner, LocalConsumers(runner))
            finally:
                aws.reset()
                gc.unfreeze()


def settle_memory() -> None:
    """Collect garbage, then freeze what is alive (the seeded tables: millions of moto objects)
    out of the collector's sight, so that a full collection over them does not land in a timed
    region at random. ``in_process_stack`` unfreezes on exit."""
    gc.collect()
    gc.freeze()


# --- a seeded history -----------------------------------------------------------------------


def history_events(count: int, tag: str = "seeded") -> list[Any]:
    """``count`` events of a realistic blog: posts, each with two comments created, moderated
    (one approved, one rejected) and updated: seven events per post."""
    from functions.events import (
        CommentCreated,
        CommentData,
        CommentModerated,
        CommentUpdated,
        ModerationData,
        PostCreated,
        PostData,
        derived_event_id,
    )
    from functions.ids import new_id

    events: list[Any] = []
    index = 0
    while len(events) < count:
        post = PostData(id=new_id(), title=f"{tag} post {index}")
        events.append(PostCreated.of(post))
        for number, verdict in enumerate(("approved", "rejected")):
            comment = CommentData(
                id=new_id(),
                postId=post.id,
                content=f"{tag} comment {index}.{number}",
                status="pending",
                commentVersion=1,
            )
            created = CommentCreated.of(comment)
            moderated = CommentModerated.of(
                ModerationData(**{**comment.model_dump(by_alias=True), "status": verdict}),
                derived_event_id("CommentModerated", comment.id),
            )
            updated = CommentUpdated.of(
                comment.model_copy(update={"status": verdict, "comment_version": 2}),
                derived_event_id("CommentUpdated", moderated.event_id),
            )
            events += [created, moderated, updated]
        index += 1
    return events[:count]


def seed_archive(settings: Any, count: int, *, segment: bool = True) -> list[Any]:
    """Write ``count`` history events into the archive as the publisher would: positions from
    the counter (one ``ADD``), records by batch writes, then (``segment``) every complete
    bucket copied to its S3 segment by the archiver's own function. The archived events."""
    from functions import archive

    events = history_events(count)
    positions = archive.allocate(settings, count)
    now = time.time()
    archived = [
        archive.ArchivedEvent(
            position=position,
            event_id=event.event_id,
            event_type=event.type,
            payload=event.to_json(),
            archived_at=now,
        )
        for position, event in zip(positions, events, strict=True)
    ]
    for start in range(0, len(archived), 1000):
        archive.record(settings, archived[start : start + 1000])
    if segment:
        archive.write_segments(settings)
    return archived


# --- counting AWS calls ---------------------------------------------------------------------

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

    def __enter__(self) -> CallCounter:
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

    def counts(self, *, include_empty: bool = False) -> Counter[tuple[str, str, str]]:
        """Calls by (actor, service, operation)."""
        return Counter(
            (c.actor, c.service, c.operation) for c in self.calls if include_empty or not c.empty
        )

    def by_operation(self) -> dict[str, int]:
        counts = Counter(f"{c.service}.{c.operation}" for c in self.calls)
        return dict(sorted(counts.items()))


# --- moto's own time ------------------------------------------------------------------------


@dataclass
class MotoQueryTimer:
    """Seconds spent inside moto's DynamoDB ``Table.query`` (and ``scan``) while entered.

    moto answers a Query by listing every item of the table and sorting the matches, so its
    cost grows with the table; DynamoDB's grows with the items returned.
    """

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


# --- results --------------------------------------------------------------------------------


def arguments(description: str, *extra: str) -> argparse.Namespace:
    """--quick and --output, and any ``extra`` flags (``store_true``)."""
    parser = argparse.ArgumentParser(description=description)
    for flag in extra:
        parser.add_argument(flag, action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a check that it runs, not a result"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="where to write <name>.json and RESULTS.md (default: benchmarks/results)",
    )
    return parser.parse_args()


def write_result(name: str, result: dict[str, Any], markdown: str, output: Path) -> Path:
    """Write ``<name>.json`` (the result, its machine and its markdown) and refresh RESULTS.md."""
    output.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, **result, "markdown": markdown}
    path = output / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    refresh_results(output)
    return path


def refresh_results(output: Path) -> Path:
    """RESULTS.md: the markdown section of every result JSON in ``output``, in a fixed order."""
    sections = []
    for name in SECTIONS:
        path = output / f"{name}.json"
        if path.exists():
            sections.append(json.loads(path.read_text())["markdown"].strip())
    intro = (
        "# Benchmark results\n\n"
        "Produced by `make bench` (all) or `python -m benchmarks.<name>` (one), from "
        "[benchmarks/](../). Each section states the machine, the versions and the date it was "
        "measured; the raw numbers are in the JSON file beside this one. Profile findings: "
        "[PROFILE.md](../PROFILE.md).\n"
    )
    path = output / "RESULTS.md"
    path.write_text("\n\n".join([intro, *sections]) + "\n")
    return path


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
