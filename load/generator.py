"""A bounded load generator for the local stack (``make dev``), with a query outage in the middle.

    python -m load.generator --rate 5 --seconds 60 --outage-at 15 --outage-for 20

It writes posts and comments at a fixed rate (a token bucket shared by a few threads) to the
API on loopback, and stops writing by itself after ``--seconds``. Optionally it takes the query
consumer down at ``--outage-at`` seconds (``--outage-mode`` pause, unsubscribe or purge, the
``blog outage start`` logic) and brings it back ``--outage-for`` seconds later (``blog outage
end``: resubscribe, catch up from the archive, resume). Meanwhile it samples ``blog status``
to record the largest query backlog: the messages waiting in the query queue plus the archive
positions above the view's watermark.

When the writes stop it waits, at most ``--converge-timeout`` seconds, until ``GET /posts``
shows every post and comment it created, each comment with the moderation verdict; then it
counts the archive (records against distinct event ids: 1.00 when each event is archived once)
and prints a JSON summary (``writes``, ``throughput_per_s``, ``largest_backlog``, ``lost``,
``archive``, ...). It exits 1 if anything was lost.

Only loopback is allowed (127.0.0.1, localhost, ::1), for the API and for the emulated AWS
(``--aws-port``, default ``AWS_PORT`` or 5000; the runner's control API is on the next port).
Standard library only, apart from this repository's ``operations.ops`` for the outage and status
and ``tools.api_client`` for the API.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tools.api_client import HttpApi

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_RATE = 200.0
MAX_SECONDS = 600.0
MAX_CONVERGE_SECONDS = 600.0
Mode = Literal["pause", "unsubscribe", "purge"]
BANNED_EVERY = 4
"""Every fourth comment has the banned word, so moderation rejects some."""


class NotLoopback(ValueError):
    pass


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, if it is plain HTTP on loopback; else ``NotLoopback``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise NotLoopback(f"only http://127.0.0.1, http://localhost or http://[::1], not {url!r}")
    return url.rstrip("/")


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` blocks until one is free."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._last = burst, time.monotonic()
        self._lock = threading.Lock()

    def take(self, deadline: float, stop: threading.Event) -> bool:
        """One token, or False once ``deadline`` (monotonic) passes or ``stop`` is set."""
        while not stop.is_set():
            with self._lock:
                now = time.monotonic()
                if now >= deadline:
                    return False
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                wait = (1 - self._tokens) / self._rate
            stop.wait(min(wait, max(deadline - time.monotonic(), 0)))
        return False


@dataclass
class Written:
    """What the generator created and must find in the view."""

    posts: dict[str, str] = field(default_factory=dict)
    comments: dict[str, tuple[str, str]] = field(default_factory=dict)  # id: (post, verdict)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Sample:
    at: float
    queue_depth: int
    watermark_lag: int

    @property
    def backlog(self) -> int:
        return self.queue_depth + self.watermark_lag


@dataclass
class Summary:
    url: str
    rate_per_s: float
    seconds: float
    writes: int
    posts: int
    comments: int
    errors: dict[str, int]
    throughput_per_s: float
    largest_backlog: int
    largest_queue_depth: int
    largest_watermark_lag: int
    samples: int
    outage: dict[str, Any] | None
    converged: bool
    converged_after_s: float | None
    lost: int
    not_moderated: int
    archive: dict[str, Any]
    """``records``, ``distinct_events``, ``ratio`` (records / distinct) and ``rearchived``."""


class Operations:
    """The query outage and the status samples, through ``operations.ops`` (``blog`` does too)."""

    def __init__(self, aws_port: int) -> None:
        # Imported here: the rest of this module needs nothing outside the standard library.
        from emulator.config import stage_environment
        from emulator.control import RemoteConsumers, control_url
        from emulator.local import STAGE, endpoint
        from emulator.moto_env import use_emulator

        # As the `blog` command does: the local stage's settings over this process's own.
        use_emulator(stage_environment(STAGE), endpoint(aws_port))
        self._consumers = RemoteConsumers(control_url(aws_port))

    def start_outage(self, mode: Mode) -> None:
        from operations import ops

        ops.outage_start(self._consumers, "query", mode)

    def end_outage(self) -> dict[str, Any] | None:
        from operations import ops

        report = ops.outage_end(self._consumers, "query")
        return None if report is None else report.model_dump()

    def sample(self, started: float) -> Sample:
        from operations import ops

        [query] = [c for c in ops.status(self._consumers).consumers if c.consumer == "query"]
        lag = query.archive_head - (query.watermark or 0)
        return Sample(round(time.monotonic() - started, 2), query.queue_depth, lag)

    def settled(self) -> bool:
        """Nothing is left on the way: no unsent outbox record, every consumer's queue empty."""
        from operations import ops

        state = ops.status(self._consumers)
        return state.unsent_outbox == 0 and all(c.queue_depth == 0 for c in state.consumers)

    def archive_census(self) -> dict[str, Any]:
        """The whole archive counted: each event should be there once (ratio 1.00)."""
        from functions import archive, settings

        census = archive.census(settings.load())
        return {**census.model_dump(), "ratio": round(census.ratio, 4)}


@dataclass
class Plan:
    url: str
    aws_port: int
    rate: float
    seconds: float
    workers: int = 4
    outage_at: float | None = None
    outage_for: float = 10.0
    outage_mode: Mode = "pause"
    sample_every: float = 0.5
    converge_timeout: float = 60.0
    seed: int = 7
    max_writes: int | None = None
    """Stop after this many writes even before ``seconds`` (the drain benchmark's 2,000)."""


def write_once(api: HttpApi, written: Written, rng: random.Random, serial: int) -> None:
    """One write: a post, or a comment on a post written before (every fourth one banned)."""
    with written.lock:
        posts = list(written.posts)
    if not posts or serial % 3 == 0:
        response = api.request("POST", "/posts", {"title": f"load post {serial}"})
        if response.status == 201:
            body = response.json()
            with written.lock:
                written.posts[body["id"]] = body["title"]
            return
    else:
        post = rng.choice(posts)
        banned = serial % BANNED_EVERY == 0
        content = f"load comment {serial}" + (" with an orange" if banned else "")
        response = api.request("POST", f"/posts/{post}/comments", {"content": content})
        if response.status == 201:
            [new] = [c for c in response.json() if c.get("content") == content]
            with written.lock:
                written.comments[new["id"]] = (post, "rejected" if banned else "approved")
            return
    with written.lock:
        written.errors[str(response.status)] += 1


def run(plan: Plan, log: Any = sys.stderr) -> Summary:
    api = HttpApi(loopback_url(plan.url))
    operations = Operations(plan.aws_port)
    written = Written()
    stop = threading.Event()
    bucket = TokenBucket(plan.rate)
    serials = iter(range(1, 10**9))
    serial_lock = threading.Lock()
    samples: list[Sample] = []
    outage: dict[str, Any] | None = None
    started = time.monotonic()
    deadline = started + plan.seconds

    def worker(index: int) -> None:
        rng = random.Random(plan.seed * 1000 + index)  # noqa: S311 (not cryptography)
        while bucket.take(deadline, stop):
            with serial_lock:
                serial = next(serials)
            if plan.max_writes is not None and serial > plan.max_writes:
                return
            try:
                write_once(api, written, rng, serial)
            except Exception as error:  # refused, reset, timed out, an odd answer: count it
                with written.lock:
                    written.errors[type(error).__name__] += 1

    def sampler() -> None:
        while not stop.is_set():
            try:
                samples.append(operations.sample(started))
            except Exception as error:  # the stack is busy: skip this sample
                log.write(f"status sample failed: {error!r}\n")
            stop.wait(plan.sample_every)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(plan.workers)]
    watcher = threading.Thread(target=sampler, daemon=True)
    for thread in [*threads, watcher]:
        thread.start()
    try:
        if plan.outage_at is not None:
            # The outage ends after --outage-for, or when the writes stop if that comes first.
            outage = {"mode": plan.outage_mode}
            if _sleep_until(started + plan.outage_at, stop):
                operations.start_outage(plan.outage_mode)
                outage["started_at_s"] = round(time.monotonic() - started, 2)
                log.write(f"query outage started ({plan.outage_mode})\n")
                _sleep_until(min(started + plan.outage_at + plan.outage_for, deadline), stop)
                outage["catch_up"] = operations.end_outage()
                outage["ended_at_s"] = round(time.monotonic() - started, 2)
                log.write("query outage ended\n")
        for thread in threads:
            thread.join()
        write_phase = time.monotonic() - started
        log.write(f"{_count(written)} writes; waiting for the view to converge\n")
        converged_after = _converge(api, operations, written, plan.converge_timeout)
    finally:
        stop.set()
        watcher.join(timeout=10)
    lost, not_moderated = _missing(api, written)
    writes = _count(written)
    largest = max(samples, key=lambda s: s.backlog, default=Sample(0, 0, 0))
    return Summary(
        url=plan.url,
        rate_per_s=plan.rate,
        seconds=plan.seconds,
        writes=writes,
        posts=len(written.posts),
        comments=len(written.comments),
        errors=dict(written.errors),
        throughput_per_s=round(writes / write_phase, 2) if write_phase else 0.0,
        largest_backlog=largest.backlog,
        largest_queue_depth=max((s.queue_depth for s in samples), default=0),
        largest_watermark_lag=max((s.watermark_lag for s in samples), default=0),
        samples=len(samples),
        outage=outage,
        converged=converged_after is not None,
        converged_after_s=converged_after,
        lost=lost,
        not_moderated=not_moderated,
        archive=operations.archive_census(),
    )


def _count(written: Written) -> int:
    with written.lock:
        return len(written.posts) + len(written.comments)


def _sleep_until(moment: float, stop: threading.Event) -> bool:
    """Wait until ``moment`` (monotonic); False if stopped first."""
    return not stop.wait(max(moment - time.monotonic(), 0))


def _missing(api: HttpApi, written: Written) -> tuple[int, int]:
    """(posts and comments missing from the view, comments there without their verdict)."""
    status, view = api.every_post()
    if status != 200:
        raise RuntimeError(f"GET /posts answered {status}")
    shown = {c["id"]: c["status"] for post in view.values() for c in post["comments"]}
    with written.lock:
        lost = sum(1 for post in written.posts if post not in view)
        lost += sum(1 for comment in written.comments if comment not in shown)
        pending = sum(
            1 for c, (_, verdict) in written.comments.items() if c in shown and shown[c] != verdict
        )
    return lost, pending


def _converge(
    api: HttpApi, operations: Operations, written: Written, timeout: float
) -> float | None:
    """Seconds until the view shows everything written, with verdicts; None on timeout.

    ``GET /posts`` returns the whole view, which costs the stack thousands of item reads after
    a burst: it is asked only once nothing is left on the way (a cheap status), so checking
    does not slow down what it waits for.
    """
    started = time.monotonic()
    while True:
        if operations.settled() and _missing(api, written) == (0, 0):
            return round(time.monotonic() - started, 2)
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.25)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m load.generator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the API (loopback)")
    parser.add_argument(
        "--aws-port",
        type=int,
        default=int(os.environ.get("AWS_PORT", "5000")),
        help="the emulated AWS's port (default: AWS_PORT or 5000)",
    )
    parser.add_argument("--rate", type=float, default=5.0, help="writes a second (default 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to write (60)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent writers (4)")
    parser.add_argument("--outage-at", type=float, help="start a query outage after N seconds")
    parser.add_argument("--outage-for", type=float, default=10.0, help="its length (10 s)")
    parser.add_argument("--outage-mode", choices=["pause", "unsubscribe", "purge"], default="pause")
    parser.add_argument("--sample-every", type=float, default=0.5, help="status samples (0.5 s)")
    parser.add_argument("--converge-timeout", type=float, default=60.0, help="at most (60 s)")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def plan_of(argv: Sequence[str]) -> Plan:
    arguments = _parser().parse_args(argv)
    checks = [
        (0 < arguments.rate <= MAX_RATE, f"--rate must be in (0, {MAX_RATE:g}]"),
        (0 < arguments.seconds <= MAX_SECONDS, f"--seconds must be in (0, {MAX_SECONDS:g}]"),
        (1 <= arguments.workers <= 32, "--workers must be in [1, 32]"),
        (0 < arguments.aws_port < 65535, "--aws-port must be a TCP port"),
        (arguments.outage_for > 0, "--outage-for must be positive"),
        (
            0 <= arguments.converge_timeout <= MAX_CONVERGE_SECONDS,
            f"--converge-timeout must be in [0, {MAX_CONVERGE_SECONDS:g}]",
        ),
        (arguments.sample_every > 0, "--sample-every must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise SystemExit(f"load.generator: {message}")
    if arguments.outage_at is not None and not 0 <= arguments.outage_at < arguments.seconds:
        raise SystemExit("load.generator: --outage-at must fall within --seconds")
    try:
        url = loopback_url(arguments.url)
    except NotLoopback as error:
        raise SystemExit(f"load.generator: {error}") from None
    return Plan(
        url=url,
        aws_port=arguments.aws_port,
        rate=arguments.rate,
        seconds=arguments.seconds,
        workers=arguments.workers,
        outage_at=arguments.outage_at,
        outage_for=arguments.outage_for,
        outage_mode=arguments.outage_mode,
        sample_every=arguments.sample_every,
        converge_timeout=arguments.converge_timeout,
        seed=arguments.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    plan = plan_of(sys.argv[1:] if argv is None else argv)
    summary = run(plan)
    print(json.dumps(asdict(summary), indent=2))
    return 0 if summary.lost == 0 and summary.converged else 1


if __name__ == "__main__":
    sys.exit(main())
