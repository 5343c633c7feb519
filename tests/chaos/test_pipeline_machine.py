"""No event is lost, whatever fails, in whatever order. A hypothesis state machine.

Each example deploys a fresh stack on moto and drives the whole pipeline (HTTP API, outbox,
publisher, archive, SNS, the three consumers, catch-up, rebuild) through random steps: writes,
partial and full drains of the event sources, the schedules, and faults:

- SNS ``PublishBatch`` failing for a while (until a later step, or recovery, restores it);
- the publisher crashing between publishing and marking a record sent;
- a consumer crashing mid-batch: one view write failing, or the whole Lambda dying after part
  of its batch (every message of the batch comes back);
- duplicate and reordered delivery: captured messages published again, newest first;
- poison messages in any consumer's queue;
- any consumer (moderation, comments or query) paused, unsubscribed, or paused with its queue
  purged, and restored;
- a rebuild with writes and partial drains while it reads the history;
- archive buckets copied to S3 and expired from the table (TTL);
- time (``tests/chaos/time_steps.py``): the clock moves from a minute to 30 days with every
  expiry and retention enforced as AWS documents it, outages longer than every retention, and
  handlers that run past their timeout.
- deploy skew (``deploy_skew.py``): consumers running the code before a schema change while the
  producer writes the new version, then upgraded; a newer producer's added field; a handler
  failing for a while, then recovering.

After the last step everything recovers, as an operator and the schedules would: SNS is back,
the outage ends, the sweeper and the catch-up run, the sources drain. Then the invariant:

- the query view equals an in-memory oracle of the commands issued (the same posts, comments
  and statuses, from the moderation rule with the banned word ``orange``): nothing lost, nothing
  twice, nothing extra; and it equals the projection folded over the whole archive;
- the source tables agree (each comment decided once, with the oracle's status);
- every outbox record is sent, every queue is empty, the watermark is at the archive head;
- each DLQ holds exactly the poison messages sent to its queue (less any a purge deleted).

After every step, a weaker invariant: the view shows nothing the commands did not write, no id
twice, and no comment's status goes back.

`make test` runs a small fixed-seed slice; ``CHAOS_EXAMPLES=200`` (``make chaos``) runs more,
with random seeds. The totals (scenarios, faults by kind, events lost, duplicates visible) are
printed at the end of the run and saved in ``build/chaos-totals.json`` (``conftest.py``).
"""

import contextlib
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import EndpointConnectionError
from chalice.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)
from moto import mock_aws

import app
from emulator import moto_patches, stack
from emulator.control import LocalConsumers
from emulator.local import build_runner
from emulator.template import ROOT
from functions import archive, aws, events, names
from functions import settings as blog_settings
from functions.query import recovery, store
from functions.query.service import SUBSCRIPTION as QUERY
from functions.subscriptions import checkpoint
from operations import ops
from tests.chaos.conftest import TALLY
from tests.chaos.deploy_skew import SKEW_FAULTS, DeploySkew
from tests.chaos.time_steps import TimeSteps
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.e2e.test_recovery import expire_every_ttl_item
from tests.e2e.test_redelivery import republish, subscribe_tap
from tests.faults import crash_marking_sent, failing, failing_entries
from tests.helpers import PREFIX, peek_bodies, queue_depth, queue_url, scan

OUTBOX_TABLE = names.resource(PREFIX, names.OUTBOX_TABLE)
VIEW_TABLE = names.resource(PREFIX, names.VIEW_TABLE)
TAP_QUEUE = f"{PREFIX}-tap"
POLLED = ("outbox_publisher", "moderation_consumer", "comments_consumer", "query_consumer")
CATCH_UPS = tuple(f"{consumer}_catch_up" for consumer in names.CONSUMERS)
SCHEDULES = ("outbox_sweeper", *CATCH_UPS, "archive_segmenter", "archive_ttl_expiry")
SNS_ENDPOINT = "https://sns.us-east-1.amazonaws.com"
ARCHIVE_TABLE = names.resource(PREFIX, names.ARCHIVE_TABLE)
FAILURES_QUEUE = names.resource(PREFIX, names.PUBLISHER_FAILURES_QUEUE)
ARCHIVE_WRITES = {"allocate": "UpdateItem", "record": "BatchWriteItem"}
"""The DynamoDB call behind each archive write the publisher makes."""
S3_CALLS = {"PutObject": "archive_segmenter", "GetObject": "rebuild"}
"""Each S3 call the archive makes, and the step that makes it."""
LONG_GRACE = {"OUTBOX_SWEEP_GRACE_SECONDS": "3600", "ARCHIVE_HOLE_GRACE_SECONDS": "3600"}
"""Grace periods longer than any scenario: what the test stage's 0 s can never exercise."""
ONE_OF_EACH = Counter({"CommentCreated": 1, "CommentModerated": 1, "CommentUpdated": 1})
FAULT_KINDS = (
    "sns_publish_outage",
    "sns_partial_batch_failure",
    "publisher_crash",
    "archive_allocate_failure",
    "archive_record_failure",
    "s3_PutObject_failure",
    "s3_GetObject_failure",
    "consumer_crash_whole_batch",
    "consumer_crash_one_write",
    "duplicate_delivery",
    "reordered_delivery",
    "poison_message",
    "consumer_paused",
    "subscription_removed",
    "queue_purged",
    "rebuild_mid_stream",
    "long_grace_periods",
    *(f"outage_of_{consumer}" for consumer in names.CONSUMERS),
    *SKEW_FAULTS,
)
"""Every kind of fault the machine injects; the scripted scenario injects each one."""
CONSUMER_WRITES = {
    "query": ("PutItem", VIEW_TABLE),
    "moderation": ("TransactWriteItems", names.resource(PREFIX, names.MODERATION_TABLE)),
    "comments": ("TransactWriteItems", names.resource(PREFIX, names.COMMENTS_TABLE)),
}
OUTAGE_FAULT = {
    "pause": "consumer_paused",
    "unsubscribe": "subscription_removed",
    "purge": "queue_purged",
}

REJECTS = {
    # The oracle's own table of every word a comment is made of: True when the word alone gets
    # the comment rejected (the banned word `orange`, whole word, any case, with punctuation).
    # Not the project's moderation rule: a rule that disagreed with this table fails the machine.
    "orange": True,
    "Orange": True,
    "ORANGE!": True,
    "oranges": False,
    "orangeade": False,
    "🍊": False,
    "lovely": False,
    "weather": False,
    "peel": False,
    "an": False,
    "apple": False,
    "café": False,
    "naïve": False,
    "日本語": False,
    "x": False,
    # the scripted scenario's words
    **dict.fromkeys(
        [
            "a",
            "and",
            "comments",
            "moderation",
            "of",
            "query",
            "crash",
            "day",
            "during",
            "me",
            "outage",
            "pause",
            "purge",
            "read",
            "refused",
            "the",
            "unsubscribe",
            "was",
            "while",
            "written",
            "you",
        ],
        False,
    ),
}
WORDS = sorted(REJECTS)


def expected_status(content: str) -> str:
    """The status a comment must end with, from ``REJECTS`` alone."""
    words = content.split()
    unknown = [word for word in words if word not in REJECTS]
    assert not unknown, f"the oracle has no verdict for {unknown}: add them to REJECTS"
    return "rejected" if any(REJECTS[word] for word in words) else "approved"


TEXTS = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)

# Bodies no consumer can process, each made unique by a serial number.
POISON: dict[str, Callable[[int], str]] = {
    "malformed_json": lambda n: f"{{not json {n}",
    "wrong_schema_version": lambda n: json.dumps(
        {
            "event_id": f"poison-{n}",
            "type": "PostCreated",
            "version": 99,
            "occurred_at": "2026-01-01T00:00:00Z",
            "aggregate_id": f"p{n}",
            "data": {"id": f"p{n}", "title": "from the future"},
        }
    ),
    "unknown_event_type": lambda n: json.dumps(
        {"event_id": f"poison-{n}", "type": "PostDeleted", "version": 1, "aggregate_id": "p"}
    ),
    "missing_fields": lambda n: json.dumps({"type": "CommentCreated", "version": 1, "n": n}),
}

CHAOS_EXAMPLES = os.environ.get("CHAOS_EXAMPLES")


def writes_to(params: dict[str, Any], table: str) -> bool:
    """Whether a PutItem or TransactWriteItems call writes ``table``."""
    items = [next(iter(item.values())) for item in params.get("TransactItems", [])]
    return table in {params.get("TableName"), *(item.get("TableName") for item in items)}


def take_all(queue: str) -> list[dict[str, Any]]:
    """Receive and delete every message in ``queue``."""
    sqs, url = aws.client("sqs"), queue_url(queue)
    taken: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
        taken += batch
    return taken


class Pipeline(TimeSteps, DeploySkew, RuleBasedStateMachine):
    posts = Bundle("posts")

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()
        self._resources = contextlib.ExitStack()
        try:
            self._resources.callback(aws.reset)
            self._resources.enter_context(moto_patches.applied())
            self._resources.enter_context(mock_aws())
            self._start_clock()  # AWS's time rules, on a clock the time steps move
            self._resources.callback(self._stop_clock)
            aws.reset()
            stack.deploy(aws.client, PREFIX)
            self.runner = build_runner(app.app, aws.client, PREFIX, fast_retry=True)
            self.consumers = LocalConsumers(self.runner)
            self.api = Api(Client(app.app, stage_name="test", project_dir=str(ROOT)))
            self.topic_arn = subscribe_tap()
        except BaseException:
            self._resources.close()
            raise
        # The oracle: what the commands wrote, and what each comment must end as.
        self.titles: dict[str, str] = {}
        self.comments: dict[str, tuple[str, str, str]] = {}  # id: (post id, content, status)
        self.authors: dict[str, str] = {}  # comment id: the author it was signed with
        self.shown_final: set[str] = set()  # comments the view has shown with their verdict
        # Faults in progress and their bookkeeping.
        self.sns_down: contextlib.ExitStack | None = None
        self.sns_failures: list[dict[str, Any]] = []
        self.outage: tuple[str, ops.Mode] | None = None
        """The consumer that is down, and how (one at a time)."""
        self.poison: dict[str, list[str]] = {consumer: [] for consumer in names.CONSUMERS}
        self.purged_poison: list[str] = []
        self.serial = itertools.count(1)
        self.captured: list[dict[str, Any]] = []
        self.faults: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self.steps = -1  # the invariants also run once before the first step
        self.long_grace: contextlib.ExitStack | None = None
        self._init_skew()

    # -- writes ------------------------------------------------------------------------------

    def _write_post(self, title: str) -> str:
        status, body = self.api.post("/posts", {"title": title})
        assert status == 201, body
        self.titles[body["id"]] = title
        return str(body["id"])

    def _write_comment(self, post_id: str, content: str, author: str | None = None) -> None:
        command = {"content": content} | ({"author": author} if author is not None else {})
        status, body = self.api.post(f"/posts/{post_id}/comments", command)
        assert status == 201, body
        [new] = [c for c in body if c["id"] not in self.comments]
        assert (new["content"], new["status"]) == (content, "pending")
        self.comments[new["id"]] = (post_id, content, expected_status(content))
        if author is not None:
            self.authors[new["id"]] = author.strip()
        assert new.get("author") == self.authors.get(new["id"])

    @rule(target=posts, titles=st.lists(TEXTS, min_size=1, max_size=3))
    def create_posts(self, titles: list[str]) -> MultipleResults[str]:
        return multiple(*(self._write_post(title) for title in titles))

    @rule(post=posts, contents=st.lists(TEXTS, min_size=1, max_size=3))
    def create_comments(self, post: str, contents: list[str]) -> None:
        for content in contents:
            self._write_comment(post, content)

    # -- event sources -----------------------------------------------------------------------

    @rule()
    def drain_all(self) -> None:
        self.runner.drain()

    @rule(
        sources=st.lists(st.sampled_from(POLLED), min_size=1, max_size=3, unique=True),
        rounds=st.integers(1, 3),
    )
    def drain_some(self, sources: list[str], rounds: int) -> None:
        for _ in range(rounds):
            for name in sources:
                if not self.runner.sources[name].paused:
                    self.runner.sources[name].poll()

    @rule(schedule=st.sampled_from(SCHEDULES))
    def fire_schedule(self, schedule: str) -> None:
        if schedule == "archive_ttl_expiry":
            # the current bucket is old enough to seal partially; then DynamoDB deletes every
            # item that carries a TTL (its rule, at its harshest), whatever the design believes
            seal_age = os.environ.pop("ARCHIVE_SEAL_AGE_SECONDS", None)
            os.environ["ARCHIVE_SEAL_AGE_SECONDS"] = "0"
            try:
                self.runner.fire("archive_segmenter")
            finally:
                del os.environ["ARCHIVE_SEAL_AGE_SECONDS"]
                if seal_age is not None:
                    os.environ["ARCHIVE_SEAL_AGE_SECONDS"] = seal_age
            expire_every_ttl_item()
        elif schedule.endswith("_catch_up") and self.long_grace is not None:
            self.runner.fire(schedule)
            self._check_young_holes_hold_the_watermark()
        elif schedule == "outbox_sweeper" and self.long_grace is not None:
            young = self._unsent(younger_than=float(LONG_GRACE["OUTBOX_SWEEP_GRACE_SECONDS"]))
            self.runner.fire(schedule)
            assert young <= self._unsent(), "the sweeper published records younger than its grace"
        else:
            self.runner.fire(schedule)
        self.operations[schedule] += 1

    def _check_young_holes_hold_the_watermark(self) -> None:
        """Under an hour's hole grace, a missing position outside S3 is too young to skip."""
        config = blog_settings.load()
        head = archive.head(config)
        present = {e.position for e in archive.history(config, head.position)}
        first_segment = max(head.segmented_through * config.segment_size, self.aged_through())
        young = [p for p in range(first_segment, head.position + 1) if p > 0 and p not in present]
        watermark = checkpoint.watermark(config, QUERY, store.active_version(config))
        assert not young or watermark < min(young), f"watermark {watermark} passed {young}"

    @staticmethod
    def _unsent(younger_than: float | None = None) -> set[str]:
        """Unsent records (created less than ``younger_than`` seconds ago: the clock moves)."""
        now = datetime.now(UTC)
        return {
            r["event_id"]
            for r in scan(names.OUTBOX_TABLE)
            if not r["sent"]
            and (
                younger_than is None
                or (now - datetime.fromisoformat(r["created_at"])).total_seconds() < younger_than
            )
        }

    # -- faults ------------------------------------------------------------------------------

    @rule()
    def sns_goes_down_or_comes_back(self) -> None:
        if self.sns_down is None:
            down = contextlib.ExitStack()
            unreachable = EndpointConnectionError(endpoint_url=SNS_ENDPOINT)
            self.sns_failures = down.enter_context(failing("sns", "PublishBatch", unreachable))
            self.sns_down = down
        else:
            self._sns_back()

    def _sns_back(self) -> None:
        if self.sns_down is not None:
            self.sns_down.close()
            self.sns_down = None
            if self.sns_failures:
                self.faults["sns_publish_outage"] += 1
                self.faults["sns_publish_calls_failed"] += len(self.sns_failures)

    @precondition(lambda self: self.sns_down is None)
    @rule(post=posts, content=TEXTS)
    def publisher_crashes_after_publishing(self, post: str, content: str) -> None:
        """The publisher dies after PublishBatch, before its first ``sent`` flip."""
        crash = RuntimeError("publisher crashed between publishing and marking sent")
        with crash_marking_sent(OUTBOX_TABLE, crash) as crashed:
            self._write_comment(post, content)
            publisher = self.runner.sources["outbox_publisher"]
            while publisher.poll():
                pass
        if crashed:
            self.faults["publisher_crash"] += 1

    @rule(
        consumer=st.sampled_from(names.CONSUMERS),
        whole_batch=st.booleans(),
        after=st.integers(0, 4),
    )
    def consumer_crashes_mid_batch(self, consumer: str, whole_batch: bool, after: int) -> None:
        """A consumer fails part way through a batch, then everything drains.

        ``whole_batch``: its Lambda dies after handling ``after`` records, so the whole batch
        counts as failed and comes back (those ``after`` records included). Otherwise one of
        its writes fails (after ``after`` that succeed): that record alone comes back.
        """
        if whole_batch:
            crashed = self._lambda_dies(consumer, after)
        else:
            operation, table = CONSUMER_WRITES[consumer]
            calls = itertools.count()

            def nth_write(params: dict[str, Any]) -> bool:
                return writes_to(params, table) and next(calls) >= after

            crash = RuntimeError(f"{consumer} consumer crashed")
            with failing("dynamodb", operation, crash, times=1, when=nth_write) as failed:
                self.runner.drain()
            crashed = bool(failed)
        if crashed:
            self.faults["consumer_crash_" + ("whole_batch" if whole_batch else "one_write")] += 1

    def _lambda_dies(self, consumer: str, survivors: int) -> bool:
        source = self.runner.sources[ops.source_of(consumer)]
        handler = source._handler
        died: list[int] = []

        def dies_part_way(event: dict[str, Any], context: Any) -> Any:
            if died:
                return handler(event, context)
            died.append(len(event["Records"]))
            handler({**event, "Records": event["Records"][:survivors]}, context)
            raise RuntimeError(f"{consumer} consumer died after {survivors} records")

        source._handler = dies_part_way
        try:
            self.runner.drain()
        finally:
            source._handler = handler
        return bool(died)

    def _publish_now(self) -> None:
        publisher = self.runner.sources["outbox_publisher"]
        while publisher.poll():
            pass

    def _take_failed_batches(self) -> None:
        """A stream batch that failed every retry goes to the failure queue (and its alarm):
        the operator reads it; its records stay unsent, for the sweeper."""
        failed = take_all(FAILURES_QUEUE)
        if failed:
            self.operations["publisher_batch_failed_every_retry"] += len(failed)

    @precondition(lambda self: self.sns_down is None)
    @rule(post=posts, contents=st.lists(TEXTS, min_size=2, max_size=4), every=st.integers(1, 3))
    def sns_refuses_some_entries(self, post: str, contents: list[str], every: int) -> None:
        """SNS answers PublishBatch with some entries under ``Failed`` (every ``every``-th)."""
        with failing_entries(lambda entry: int(entry["Id"]) % every == 0) as refused:
            for content in contents:
                self._write_comment(post, content)
            self._publish_now()
        if refused:
            self.faults["sns_partial_batch_failure"] += 1
            self.faults["sns_entries_refused"] += len(refused)

    @rule(
        post=posts,
        content=TEXTS,
        write=st.sampled_from(sorted(ARCHIVE_WRITES)),
        times=st.integers(1, 5),
    )
    def archive_write_fails(self, post: str, content: str, write: str, times: int) -> None:
        """DynamoDB fails the publisher's ``archive.allocate`` or ``archive.record`` call
        ``times`` times (more than the stream's retries: the batch is given up on)."""
        unreachable = EndpointConnectionError(endpoint_url="https://dynamodb.invalid")

        def on_archive(params: dict[str, Any]) -> bool:
            return ARCHIVE_TABLE in (params.get("TableName"), *params.get("RequestItems", {}))

        with failing("dynamodb", ARCHIVE_WRITES[write], unreachable, times, on_archive) as failed:
            self._write_comment(post, content)
            self._publish_now()
        self._take_failed_batches()
        if failed:
            self.faults[f"archive_{write}_failure"] += 1

    @rule(call=st.sampled_from(sorted(S3_CALLS)), times=st.integers(1, 3))
    def s3_fails(self, call: str, times: int) -> None:
        """S3 fails while the segmenter writes segments, or while a rebuild reads them."""
        unreachable = EndpointConnectionError(endpoint_url="https://s3.invalid")
        with failing("s3", call, unreachable, times) as failed:
            if S3_CALLS[call] == "rebuild":
                with contextlib.suppress(EndpointConnectionError):
                    recovery.rebuild(blog_settings.load())
            else:
                self.runner.fire(S3_CALLS[call])
        if failed:
            self.faults[f"s3_{call}_failure"] += 1

    @rule()
    def grace_periods_long_or_over(self) -> None:
        """The sweeper's and the hole grace become an hour (no record or hole is old enough),
        or that hour passes (back to the test stage's 0 s)."""
        if self.long_grace is None:
            self.long_grace = contextlib.ExitStack()
            for variable, seconds in LONG_GRACE.items():
                previous = os.environ[variable]
                self.long_grace.callback(os.environ.__setitem__, variable, previous)
                os.environ[variable] = seconds
            self.faults["long_grace_periods"] += 1
        else:
            self._grace_over()

    def _grace_over(self) -> None:
        if self.long_grace is not None:
            self.long_grace.close()
            self.long_grace = None

    @precondition(
        lambda self: (
            (self.sns_down, self.outage, self.long_grace) == (None,) * 3
            and not self.queues_outlived
            and self._skew_healthy()
        )
    )
    @rule()
    def the_live_path_alone_converges(self) -> None:
        """With nothing down, the live path and the sweeper complete the view: no catch-up,
        no rebuild, no redelivery (the repairs) is needed for it."""
        self.runner.drain()
        self.runner.fire("outbox_sweeper")
        self.runner.drain()
        self._take_failed_batches()
        self._check_view_complete(self.api.every_post()[1], "without repair")
        self.operations["live_path_checked"] += 1

    @rule(copies=st.integers(1, 2), newest=st.integers(1, 12))
    def redeliver_newest_first(self, copies: int, newest: int) -> None:
        """The last ``newest`` messages SNS delivered, delivered again, in reverse order."""
        self.captured += take_all(TAP_QUEUE)
        again = list(reversed(self.captured[-newest:])) * copies
        if not again:
            return
        republish(self.topic_arn, again)
        take_all(TAP_QUEUE)  # the tap's own copies of the redelivery
        self.faults["duplicate_delivery"] += len(again)
        if len(again) > 1:
            self.faults["reordered_delivery"] += 1

    @rule(consumer=st.sampled_from(names.CONSUMERS), kind=st.sampled_from(sorted(POISON)))
    def poison_message(self, consumer: str, kind: str) -> None:
        body = POISON[kind](next(self.serial))
        aws.client("sqs").send_message(
            QueueUrl=queue_url(names.queue(PREFIX, consumer)), MessageBody=body
        )
        self.poison[consumer].append(body)
        self.faults["poison_message"] += 1

    @rule(consumer=st.sampled_from(names.CONSUMERS), mode=st.sampled_from(ops.MODES))
    def outage_starts_or_ends(self, consumer: str, mode: ops.Mode) -> None:
        """Take a consumer down (any of them), or end the outage under way."""
        if self.outage is not None:
            ops.outage_end(self.consumers, self.outage[0])
            self.outage = None
            return
        in_dlq = peek_bodies(names.dead_letter_queue(PREFIX, consumer))
        try:
            ops.outage_start(self.consumers, consumer, mode)
        except ops.PurgeRefused:
            # One purge per queue per 60 s, on AWS as on moto: refused, and nothing changed.
            assert mode == "purge"
            assert not self.consumers.is_paused(f"{consumer}_consumer")
            self.operations["purge_refused_within_60_s"] += 1
            return
        if mode == "purge":
            # Poison messages still queued were deleted with the rest; those in the DLQ stay.
            self.purged_poison += [b for b in self.poison[consumer] if b not in in_dlq]
            self.poison[consumer] = [b for b in self.poison[consumer] if b in in_dlq]
        self.outage = (consumer, mode)
        self.faults[OUTAGE_FAULT[mode]] += 1
        self.faults[f"outage_of_{consumer}"] += 1

    @rule(title=TEXTS, content=TEXTS, polls=st.integers(0, 4))
    def rebuild_mid_stream(self, title: str, content: str, polls: int) -> None:
        """A rebuild; while it reads the history, a post and a comment, partly drained."""
        progress: list[tuple[int, int]] = []

        def write_while_rebuilding(done: int, total: int) -> None:
            if not progress:
                post = self._write_post(title)
                self._write_comment(post, content)
                for _ in range(polls):
                    self.runner.poll_once()
            progress.append((done, total))

        report = recovery.rebuild(blog_settings.load(), write_while_rebuilding)
        done, total = progress[-1]
        assert done == total >= report.events  # fewer events than positions: holes
        self.faults["rebuild_mid_stream"] += 1

    # -- invariants --------------------------------------------------------------------------

    def _duplicates_and_extras(self, view: dict[str, Any]) -> int:
        ids = Counter(c["id"] for post in view.values() for c in post["comments"])
        twice = sum(n - 1 for n in ids.values())
        extra_posts = [p for p in view if p not in self.titles]
        extra_comments = [c for c in ids if c not in self.comments]
        return twice + len(extra_posts) + len(extra_comments)

    @invariant()
    def view_shows_only_what_was_written_once(self) -> None:
        self.steps += 1
        status, view = self.api.every_post()
        assert status == 200
        duplicates = self._duplicates_and_extras(view)
        TALLY.duplicates_visible += duplicates
        assert duplicates == 0, view
        for post_id, post in view.items():
            assert post["title"] == self.titles[post_id]
            for comment in post["comments"]:
                owner, content, final = self.comments[comment["id"]]
                served_author = (
                    self.authors.get(comment["id"]) if comment["status"] == "approved" else None
                )
                assert comment.get("author") == served_author, comment
                assert comment["status"] in ("pending", final), comment
                served = content if comment["status"] == "approved" else None  # docs/api.md
                assert (owner, comment.get("content")) == (post_id, served)
                if comment["status"] == final:
                    self.shown_final.add(comment["id"])
                else:
                    assert comment["id"] not in self.shown_final, f"went back: {comment}"

    def teardown(self) -> None:
        try:
            if sys.exc_info()[1] is None:  # a step failed: report that, not what follows it
                self.check_before_repair()
                self._recover()
                self._check_everything_recovered()
        finally:
            if self.sns_down is not None:
                self.sns_down.close()
            self._grace_over()
            self._skew_over()
            self._resources.close()

    @staticmethod
    def _archived() -> list[archive.ArchivedEvent]:
        return list(
            archive.history(blog_settings.load(), archive.head(blog_settings.load()).position)
        )

    def _check_caused(self, archived: list[archive.ArchivedEvent], complete: bool) -> None:
        """Count, from the archive, the distinct events each comment caused: at most (finally,
        exactly) one CommentCreated, one CommentModerated with the oracle's verdict, and one
        CommentUpdated. A second decision shows here even though the moderation table, keyed
        by comment id, would hide it."""
        caused: dict[str, Counter[str]] = {}
        counted: set[str] = set()
        for record in archived:
            if record.event_type == "PostCreated" or record.event_id in counted:
                continue  # a republished event is archived again under the same id
            counted.add(record.event_id)
            event = self._read_as_new_code(record.payload)
            caused.setdefault(event.aggregate_id, Counter())[event.type] += 1
            if isinstance(event, events.CommentModerated | events.CommentUpdated):
                verdict = self.comments[event.aggregate_id][2]
                assert event.data.status == verdict, f"{event.type} {event.data}: not {verdict}"
        assert set(caused) <= set(self.comments), "events for a comment nobody wrote"
        for comment, counts in caused.items():
            assert counts <= ONE_OF_EACH, f"comment {comment} caused {dict(counts)}"
        if complete:
            assert caused == dict.fromkeys(self.comments, ONE_OF_EACH)

    def check_before_repair(self) -> None:
        """What must hold whatever failed, before recovery runs, because recovery repairs
        none of it: the archive, the outbox's sent flags, what SNS delivered, the DLQs."""
        archived = self._archived()
        payloads: dict[str, set[str]] = {}
        for record in archived:
            payloads.setdefault(record.event_id, set()).add(record.payload)
        assert all(len(p) == 1 for p in payloads.values()), "one event id, two payloads"
        self._check_caused(archived, complete=False)
        sent = {r["event_id"] for r in scan(names.OUTBOX_TABLE) if r["sent"]}
        assert sent <= set(payloads), f"marked sent, never archived: {sent - set(payloads)}"
        # Everything SNS delivered was archived at the position it was delivered with.
        self.captured += take_all(TAP_QUEUE)
        at = {record.position: record.event_id for record in archived}
        for message in self.captured:
            position = int(message["MessageAttributes"][names.POSITION_ATTRIBUTE]["StringValue"])
            event_id = json.loads(message["Body"])["event_id"]
            assert at.get(position) == event_id, f"{event_id} delivered at {position}, not archived"
        # A DLQ holds poison messages only: an event there is one a consumer gave up on.
        for consumer in names.CONSUMERS:
            dead = peek_bodies(names.dead_letter_queue(PREFIX, consumer))
            assert set(dead) <= set(self.poison[consumer]), f"an event in {consumer}'s DLQ"

    def _recover(self) -> None:
        """What the schedules and an operator do once the faults are over."""
        self._sns_back()
        self._grace_over()
        self._skew_over()
        if self.outage is not None:
            ops.outage_end(self.consumers, self.outage[0])
            self.outage = None
        self.runner.drain()
        self.runner.fire("outbox_sweeper")
        self.runner.drain()
        self._catch_everyone_up()

    def _catch_everyone_up(self) -> None:
        # Each consumer's scheduled catch-up; a decision made by one emits events the next
        # takes, so they run until a whole round leaves the archive head where it was.
        head = -1
        while head != archive.head(blog_settings.load()).position:
            head = archive.head(blog_settings.load()).position
            for catch_up in CATCH_UPS:
                self.runner.fire(catch_up)
                self.runner.drain()

    def _missing(self, view: dict[str, Any]) -> list[str]:
        """Lost: a post or comment of the oracle missing from the view, or not in its final
        state (its CommentUpdated lost)."""
        shown = {
            c["id"]: (post_id, c.get("content"), c["status"])
            for post_id, post in view.items()
            for c in post["comments"]
        }
        served = {  # the view serves a comment's text only once approved (docs/api.md)
            c: (post_id, content if final == "approved" else None, final)
            for c, (post_id, content, final) in self.comments.items()
        }
        return [
            f"post {p} {title!r}: view has {view.get(p, {}).get('title')!r}"
            for p, title in self.titles.items()
            if view.get(p, {}).get("title") != title
        ] + [
            f"comment {c} {expected}: view has {shown.get(c)}"
            for c, expected in served.items()
            if shown.get(c) != expected
        ]

    def _check_view_complete(self, view: dict[str, Any], when: str) -> None:
        missing = self._missing(view)
        assert not missing, f"lost {when}: " + "; ".join(missing)
        assert self._duplicates_and_extras(view) == 0, f"duplicated or extra {when}: {view}"

    def _check_everything_recovered(self) -> None:
        status, view = self.api.every_post()
        assert status == 200
        missing = self._missing(view)
        lost = len(missing)
        duplicates = self._duplicates_and_extras(view)
        TALLY.scenarios += 1
        TALLY.seconds += time.monotonic() - self.started
        TALLY.steps += self.steps
        TALLY.posts += len(self.titles)
        TALLY.comments += len(self.comments)
        TALLY.faults.update(self.faults)
        TALLY.operations.update(self.operations)
        TALLY.events_lost += lost
        TALLY.duplicates_visible += duplicates
        TALLY.pending_left += sum(
            c["status"] == "pending" for post in view.values() for c in post["comments"]
        )
        archived = self._archived()
        TALLY.archive_records += len(archived)
        TALLY.distinct_events += len({record.event_id for record in archived})
        assert lost == 0, "lost: " + "; ".join(missing)
        assert duplicates == 0, f"duplicated or extra items in the view: {view}"

        # The view is the projection of the whole archive, and the sources agree.
        assert view == oracle_view()
        comments = {c["comment_id"]: c for c in scan(names.COMMENTS_TABLE)}
        assert {c: (v["post_id"], v["content"], v["status"]) for c, v in comments.items()} == (
            self.comments
        )
        decisions = Counter(d["comment_id"] for d in scan(names.MODERATION_TABLE))
        assert decisions == Counter(list(self.comments)), "each comment is decided exactly once"
        self._check_caused(archived, complete=True)
        assert sorted(p["id"] for p in scan(names.POSTS_TABLE)) == sorted(self.titles)

        # Every outbox record is sent; nothing waits anywhere; the watermark is at the head.
        assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
        state = ops.status(self.consumers)
        assert state.unsent_outbox == 0
        head = archive.head(blog_settings.load()).position
        for row in state.consumers:
            assert (row.subscribed, row.paused, row.queue_depth) == (True, False, 0), row
        for row in state.consumers:
            assert (row.watermark, row.lag, row.parked) == (head, 0, 0), row
        assert queue_depth(names.resource(PREFIX, names.PUBLISHER_FAILURES_QUEUE)) == 0

        # Each DLQ holds exactly the poison messages sent to its queue (less the purged).
        for consumer in names.CONSUMERS:
            dead = peek_bodies(names.dead_letter_queue(PREFIX, consumer))
            assert sorted(dead) == sorted(self.poison[consumer]), consumer
            assert not set(dead) & set(self.purged_poison)


def _examples() -> int:
    return int(CHAOS_EXAMPLES) if CHAOS_EXAMPLES else 5


TestPipeline = Pipeline.TestCase
TestPipeline.settings = settings(
    max_examples=_examples(),
    stateful_step_count=25,
    deadline=None,
    derandomize=CHAOS_EXAMPLES is None,  # `make test`: the same small slice every run
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_fault_in_one_scripted_scenario() -> None:
    """The same machine, every fault kind at least once, in a fixed order (`make test`).

    The per-step invariant runs after every step; before each repairing step (a rebuild,
    a catch-up, a redelivery, the final recovery) what must already hold is checked: the live
    path alone has completed the view, and the archive, outbox and DLQs are right.
    """
    machine = Pipeline()
    m = machine
    try:
        m.view_shows_only_what_was_written_once()
        first, second = m._write_post("Before anything"), m._write_post("Second")
        steps: list[Callable[[], object]] = [
            lambda: m._write_comment(first, "lovely weather"),
            m.sns_goes_down_or_comes_back,  # SNS down
            lambda: m._write_comment(first, "peel an orange"),
            m.drain_all,
            lambda: m.fire_schedule("outbox_sweeper"),  # fails too: SNS is still down
            lambda: m.outage_starts_or_ends("moderation", "pause"),
            *(
                lambda c=consumer, k=kind: m.poison_message(c, k)
                for consumer, kind in zip(names.CONSUMERS, sorted(POISON), strict=False)
            ),
            lambda: m.poison_message("query", "malformed_json"),
            m.sns_goes_down_or_comes_back,  # SNS back
            lambda: m.publisher_crashes_after_publishing(second, "ORANGE!"),
            lambda: m.outage_starts_or_ends("moderation", "pause"),  # ends it (a catch-up)
            lambda: m._write_comment(second, "crash while you read me"),
            lambda: m.consumer_crashes_mid_batch("moderation", whole_batch=True, after=0),
            lambda: m._write_comment(second, "and me"),
            lambda: m.consumer_crashes_mid_batch("query", whole_batch=False, after=1),
            lambda: m._write_comment(first, "you read me"),
            lambda: m.consumer_crashes_mid_batch("moderation", whole_batch=False, after=0),
            lambda: m._write_comment(first, "read me"),
            lambda: m.drain_some(["outbox_publisher", "moderation_consumer"], rounds=2),
            lambda: m.consumer_crashes_mid_batch("comments", whole_batch=False, after=0),
            lambda: m.sns_refuses_some_entries(first, ["x", "orange", "apple"], every=2),
            lambda: m.archive_write_fails(second, "an apple", "allocate", times=5),
            lambda: m.archive_write_fails(second, "peel an apple", "record", times=5),
            lambda: m.archive_write_fails(first, "x x", "record", times=1),
            m.grace_periods_long_or_over,  # an hour of grace
            lambda: m._write_comment(first, "written during a pause"),
            lambda: m.fire_schedule("outbox_sweeper"),  # nothing young enough to sweep
            m.grace_periods_long_or_over,  # the hour passes
            m.the_live_path_alone_converges,  # before any redelivery repairs anything
            m.check_before_repair,
            m.grace_periods_long_or_over,  # an hour again: the holes the archive failures left
            lambda: m.fire_schedule("query_catch_up"),  # are young: they hold the watermark
            m.grace_periods_long_or_over,
            lambda: m.redeliver_newest_first(copies=2, newest=6),
            m.drain_all,
            *(
                step
                for consumer in names.CONSUMERS
                for mode in ops.MODES
                for step in (
                    lambda c=consumer, mode=mode: m.outage_starts_or_ends(c, mode),
                    lambda c=consumer, mode=mode: m._write_comment(
                        first, f"an orange during a {mode} outage of {c}"
                    ),
                    lambda: m.drain_some(list(POLLED), rounds=1),
                    lambda c=consumer, mode=mode: m.outage_starts_or_ends(c, mode),  # ends it
                )
            ),
            # deploy skew: consumers on the code before authors, the producer ahead of them
            lambda: m.consumers_run_old_code_or_are_upgraded(first, "lovely weather", " Ada "),
            lambda: m._write_comment(second, "an orange", "Grace Hopper"),
            m.drain_all,  # every consumer holds the comment events it cannot read
            lambda: m.fire_schedule("moderation_catch_up"),  # and its catch-up too
            lambda: m.newer_producer_writes_a_post("from a newer producer"),
            m.drain_all,  # an added field: old consumers read it
            lambda: m.consumers_run_old_code_or_are_upgraded(first, "x", None),  # upgraded
            m.every_catch_up_runs,  # applies what they held
            m.the_live_path_alone_converges,
            # a handler failing for a while, then recovering
            lambda: m.handler_fails_or_recovers("comments"),
            lambda: m._write_comment(first, "x x", "Linus"),
            m.drain_all,  # its tries, then parked: no dead letter
            lambda: m.fire_schedule("comments_catch_up"),
            lambda: m.handler_fails_or_recovers("comments"),  # recovers
            lambda: m.handler_fails_or_recovers("query"),
            lambda: m._write_comment(second, "lovely weather"),
            m.drain_all,
            lambda: m.handler_fails_or_recovers("query"),  # recovers
            m.every_catch_up_runs,
            m.the_live_path_alone_converges,
            lambda: m.outage_starts_or_ends("query", "purge"),  # a second purge within 60 s
            lambda: m._write_comment(second, "written while the purge was refused"),
            lambda: m.s3_fails("PutObject", times=1),
            lambda: m.fire_schedule("archive_ttl_expiry"),
            m.the_live_path_alone_converges,
            m.check_before_repair,
            lambda: m.s3_fails("GetObject", times=1),
            lambda: m.rebuild_mid_stream("during the rebuild", "an orange a day", polls=4),
            m.the_live_path_alone_converges,  # the rebuild caught up: nothing left to repair
        ]
        for step in steps:
            step()
            m.view_shows_only_what_was_written_once()
        injected = set(m.faults)
        refused = m.operations["purge_refused_within_60_s"]
    finally:
        machine.teardown()
    assert injected >= set(FAULT_KINDS), set(FAULT_KINDS) - injected
    assert refused == 1
