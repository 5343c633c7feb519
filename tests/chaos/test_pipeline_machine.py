"""Issue 7 (1): no event is lost, whatever fails, in whatever order. A hypothesis state machine.

Each example deploys a fresh stack on moto and drives the whole pipeline (HTTP API, outbox,
publisher, archive, SNS, the three consumers, catch-up, rebuild) through random steps: writes,
partial and full drains of the event sources, the schedules, and faults:

- SNS ``PublishBatch`` failing for a while (until a later step, or recovery, restores it);
- the publisher crashing between publishing and marking a record sent;
- a consumer crashing mid-batch: one view write failing, or the whole Lambda dying after part
  of its batch (every message of the batch comes back);
- duplicate and reordered delivery: captured messages published again, newest first;
- poison messages in any consumer's queue;
- the query consumer paused, unsubscribed, or paused with its queue purged, and restored;
- a rebuild with writes and partial drains while it reads the history;
- archive buckets copied to S3 and expired from the table (TTL).

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
from emulator import moto_fixes, ops, stack
from emulator.control import LocalConsumers
from emulator.local import build_runner
from emulator.template import ROOT
from functions import archive, aws, names
from functions import settings as blog_settings
from functions.moderation.rule import moderate
from functions.query import recovery
from tests.chaos.conftest import TALLY
from tests.conftest import Api
from tests.e2e.test_outages import oracle_view
from tests.e2e.test_recovery import expire_segmented_records
from tests.e2e.test_redelivery import republish, subscribe_tap
from tests.faults import failing
from tests.helpers import PREFIX, queue_depth, queue_url, scan

BANNED = ("orange",)
OUTBOX_TABLE = names.resource(PREFIX, names.OUTBOX_TABLE)
VIEW_TABLE = names.resource(PREFIX, names.VIEW_TABLE)
TAP_QUEUE = f"{PREFIX}-tap"
POLLED = ("outbox_publisher", "moderation_consumer", "comments_consumer", "query_consumer")
SCHEDULES = ("outbox_sweeper", "query_catch_up", "archive_segmenter", "archive_ttl_expiry")
SNS_ENDPOINT = "https://sns.us-east-1.amazonaws.com"
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

WORDS = [
    "lovely",
    "weather",
    "peel",
    "an",
    "orange",
    "Orange",
    "ORANGE!",
    "oranges",
    "orangeade",
    "apple",
    "café",
    "naïve",
    "日本語",
    "🍊",
    "x",
]
TEXTS = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)

# Bodies no consumer can process, each made unique by a serial number.
POISON: dict[str, Callable[[int], str]] = {
    "malformed_json": lambda n: f"{{not json {n}",
    "wrong_schema_version": lambda n: json.dumps(
        {
            "event_id": f"poison-{n}",
            "type": "PostCreated",
            "version": 2,
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


def peek_bodies(queue: str) -> list[str]:
    """The bodies of every message in ``queue``, left in it (made visible again at once)."""
    sqs, url = aws.client("sqs"), queue_url(queue)
    seen: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60
    ).get("Messages", []):
        seen += batch
    for start in range(0, len(seen), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(seen[start : start + 10])
            ],
        )
    return [m["Body"] for m in seen]


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


class Pipeline(RuleBasedStateMachine):
    posts = Bundle("posts")

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()
        self._resources = contextlib.ExitStack()
        try:
            self._resources.callback(aws.reset)
            self._resources.enter_context(moto_fixes.patched())
            self._resources.enter_context(mock_aws())
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
        self.shown_final: set[str] = set()  # comments the view has shown with their verdict
        # Faults in progress and their bookkeeping.
        self.sns_down: contextlib.ExitStack | None = None
        self.sns_failures: list[dict[str, Any]] = []
        self.outage: ops.Mode | None = None
        self.poison: dict[str, list[str]] = {consumer: [] for consumer in names.CONSUMERS}
        self.purged_poison: list[str] = []
        self.serial = itertools.count(1)
        self.captured: list[dict[str, Any]] = []
        self.faults: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self.steps = -1  # the invariants also run once before the first step

    # -- writes ------------------------------------------------------------------------------

    def _write_post(self, title: str) -> str:
        status, body = self.api.post("/posts", {"title": title})
        assert status == 201, body
        self.titles[body["id"]] = title
        return str(body["id"])

    def _write_comment(self, post_id: str, content: str) -> None:
        status, body = self.api.post(f"/posts/{post_id}/comments", {"content": content})
        assert status == 201, body
        [new] = [c for c in body if c["id"] not in self.comments]
        assert (new["content"], new["status"]) == (content, "pending")
        self.comments[new["id"]] = (post_id, content, moderate(content, BANNED))

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
            # complete archive buckets go to S3, and their table records expire (TTL)
            self.runner.fire("archive_segmenter")
            expire_segmented_records()
        else:
            self.runner.fire(schedule)
        self.operations[schedule] += 1

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
        with failing(
            "dynamodb", "UpdateItem", crash, times=1, when=lambda p: p["TableName"] == OUTBOX_TABLE
        ) as crashed:
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

    @rule(mode=st.sampled_from(ops.MODES))
    def query_outage_starts_or_ends(self, mode: ops.Mode) -> None:
        if self.outage is not None:
            ops.outage_end(self.consumers, "query")
            self.outage = None
            return
        in_dlq = peek_bodies(names.dead_letter_queue(PREFIX, "query"))
        try:
            ops.outage_start(self.consumers, "query", mode)
        except ops.PurgeRefused:
            # One purge per queue per 60 s, on AWS as on moto: refused, and nothing changed.
            assert mode == "purge"
            assert not self.consumers.is_paused("query_consumer")
            self.operations["purge_refused_within_60_s"] += 1
            return
        if mode == "purge":
            # Poison messages still queued were deleted with the rest; those in the DLQ stay.
            self.purged_poison += [b for b in self.poison["query"] if b not in in_dlq]
            self.poison["query"] = [b for b in self.poison["query"] if b in in_dlq]
        self.outage = mode
        self.faults[OUTAGE_FAULT[mode]] += 1

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
        assert progress[-1] == (report.events, report.events)
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
        status, view = self.api.get("/posts")
        assert status == 200
        duplicates = self._duplicates_and_extras(view)
        TALLY.duplicates_visible += duplicates
        assert duplicates == 0, view
        for post_id, post in view.items():
            assert post["title"] == self.titles[post_id]
            for comment in post["comments"]:
                owner, content, final = self.comments[comment["id"]]
                assert (owner, comment["content"]) == (post_id, content)
                assert comment["status"] in ("pending", final), comment
                if comment["status"] == final:
                    self.shown_final.add(comment["id"])
                else:
                    assert comment["id"] not in self.shown_final, f"went back: {comment}"

    def teardown(self) -> None:
        try:
            if sys.exc_info()[1] is None:  # a step failed: report that, not what follows it
                self._recover()
                self._check_everything_recovered()
        finally:
            if self.sns_down is not None:
                self.sns_down.close()
            self._resources.close()

    def _recover(self) -> None:
        """What the schedules and an operator do once the faults are over."""
        self._sns_back()
        if self.outage is not None:
            ops.outage_end(self.consumers, "query")
            self.outage = None
        self.runner.drain()
        self.runner.fire("outbox_sweeper")
        self.runner.drain()
        self.runner.fire("query_catch_up")
        self.runner.drain()

    def _check_everything_recovered(self) -> None:
        status, view = self.api.get("/posts")
        assert status == 200
        # Lost: a post or comment of the oracle missing from the view, or not in its final
        # state (its CommentUpdated lost). Duplicated: an id twice, or anything not written.
        shown = {
            c["id"]: (post_id, c["content"], c["status"])
            for post_id, post in view.items()
            for c in post["comments"]
        }
        missing = [
            f"post {p} {title!r}: view has {view.get(p, {}).get('title')!r}"
            for p, title in self.titles.items()
            if view.get(p, {}).get("title") != title
        ] + [
            f"comment {c} {expected}: view has {shown.get(c)}"
            for c, expected in self.comments.items()
            if shown.get(c) != expected
        ]
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
        assert sorted(p["id"] for p in scan(names.POSTS_TABLE)) == sorted(self.titles)

        # Every outbox record is sent; nothing waits anywhere; the watermark is at the head.
        assert all(record["sent"] for record in scan(names.OUTBOX_TABLE))
        state = ops.status(self.consumers)
        assert state.unsent_outbox == 0
        head = archive.head(blog_settings.load()).position
        for row in state.consumers:
            assert (row.subscribed, row.paused, row.queue_depth) == (True, False, 0), row
        [query] = [row for row in state.consumers if row.consumer == "query"]
        assert query.watermark == head
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
    """The same machine, every fault kind at least once, in a fixed order (`make test`)."""
    machine = Pipeline()
    try:
        machine.view_shows_only_what_was_written_once()
        first, second = machine._write_post("Before anything"), machine._write_post("Second")
        machine._write_comment(first, "Lovely weather")
        machine.sns_goes_down_or_comes_back()  # SNS down
        machine._write_comment(first, "Peel an orange")
        machine.drain_all()
        machine.fire_schedule("outbox_sweeper")  # fails too: SNS is still down
        machine.query_outage_starts_or_ends("pause")
        for consumer, kind in zip(names.CONSUMERS, sorted(POISON), strict=False):
            machine.poison_message(consumer, kind)
        machine.poison_message("query", "malformed_json")
        machine.sns_goes_down_or_comes_back()  # SNS back
        machine.publisher_crashes_after_publishing(second, "ORANGE!")
        machine.query_outage_starts_or_ends("pause")  # ends it
        machine._write_comment(second, "crash while you read me")
        machine.consumer_crashes_mid_batch("moderation", whole_batch=True, after=0)
        machine._write_comment(second, "and me")
        machine.consumer_crashes_mid_batch("query", whole_batch=False, after=1)
        machine.redeliver_newest_first(copies=2, newest=6)
        machine.drain_all()
        for mode in ops.MODES:
            machine.query_outage_starts_or_ends(mode)
            machine._write_comment(first, f"written during a {mode} outage")
            machine.drain_some(list(POLLED), rounds=1)
            machine.view_shows_only_what_was_written_once()
            machine.query_outage_starts_or_ends(mode)  # ends it
        machine.query_outage_starts_or_ends("purge")  # a second purge within 60 s: refused
        machine._write_comment(second, "written while the purge was refused")
        machine.fire_schedule("archive_ttl_expiry")
        machine.rebuild_mid_stream("during the rebuild", "an orange a day", polls=2)
        machine.view_shows_only_what_was_written_once()
        injected = set(machine.faults)
        refused = machine.operations["purge_refused_within_60_s"]
    finally:
        machine.teardown()
    assert injected >= {
        "sns_publish_outage",
        "publisher_crash",
        "consumer_crash_whole_batch",
        "consumer_crash_one_write",
        "duplicate_delivery",
        "reordered_delivery",
        "poison_message",
        "consumer_paused",
        "subscription_removed",
        "queue_purged",
        "rebuild_mid_stream",
    }
    assert refused == 1
