"""The chaos machine's steps in time: the clock moves from a minute to 30 days, with every
expiry and retention AWS documents enforced (emulator/aws_time.py), outages longer than every
retention, and handlers that run past their timeout.

A mixin of ``tests/chaos/test_pipeline_machine.py``'s ``Pipeline``: it uses the machine's
stack, runner, API and oracle, and keeps its own bookkeeping of what AWS deletes by time.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from emulator import template
from emulator.aws_time import CLOCK, deadline, function_name, timeout_of
from functions import archive, aws, names, settings
from tests.faults import failing
from tests.helpers import PREFIX, queue_url

if TYPE_CHECKING:
    from emulator.runner import EventSourceRunner
    from tests.conftest import Api

MINUTE, HOUR, DAY = 60, 3600, 86_400
JUMPS = (MINUTE, 5 * MINUTE, HOUR, 6 * HOUR, DAY + HOUR, 2 * DAY, 8 * DAY, 15 * DAY, 30 * DAY)
"""How far the clock moves in one step: from a minute to 30 days, across every retention
(the stream's 24 h, the queues' 7 days and their DLQs' 14, the archive's 7 days after
sealing)."""
SCHEDULED = (
    "outbox_sweeper",
    "archive_segmenter",
    *(f"{consumer}_catch_up" for consumer in names.CONSUMERS),
)
"""What runs meanwhile when the schedules are up (every minute or five on AWS)."""
QUEUE_RETENTION = int(
    template.load()["Resources"]["QueryQueue"]["Properties"]["MessageRetentionPeriod"]
)
"""A consumer queue's retention, as the template sets it (its DLQ keeps messages longer)."""
TIMED_OUT = {
    # source: (service, operation, its own table or None): the call past which it is stopped
    "outbox_publisher": ("dynamodb", "BatchWriteItem", names.ARCHIVE_TABLE),
    "query_consumer": ("dynamodb", "PutItem", names.VIEW_TABLE),
    "moderation_consumer": ("dynamodb", "TransactWriteItems", names.MODERATION_TABLE),
    "comments_consumer": ("dynamodb", "TransactWriteItems", names.COMMENTS_TABLE),
}
TIME_FAULT_KINDS = (
    "clock_advanced",
    "clock_advanced_past_a_day",
    "clock_advanced_past_14_days",
    "archive_items_expired_by_ttl",
    "stream_retention_exceeded",
    "queue_retention_exceeded",
    "consumer_paused_a_week",
    "sns_down_two_days",
    "handler_past_its_timeout",
)
"""Every kind of time step; ``test_time_machine.py``'s scripted scenario makes each one."""


def _mentions(params: dict[str, Any], table: str) -> bool:
    items = [next(iter(item.values())) for item in params.get("TransactItems", [])]
    tables = {params.get("TableName"), *params.get("RequestItems", {})}
    return table in tables | {item.get("TableName") for item in items}


class TimeSteps:
    """Rules that move time. Expects the machine's attributes, declared here for mypy."""

    runner: EventSourceRunner
    api: Api
    faults: Counter[str]
    operations: Counter[str]
    poison: dict[str, list[str]]
    sns_down: contextlib.ExitStack | None
    outage: tuple[str, Any] | None
    posts: Any

    def _start_clock(self) -> None:
        CLOCK.start()
        self.poison_sent: dict[str, float] = {}
        self.queues_outlived = False
        """The clock passed the queues' retention with the catch-ups down: the live path alone
        cannot complete the view until they run (on AWS as here)."""
        self.jumps: list[tuple[float, int]] = []
        """(clock, archive head) before each jump: positions allocated before it are older."""

    def aged_through(self, seconds: float = HOUR) -> int:
        """The last position allocated at least ``seconds`` ago, as far as the jumps tell."""
        now = CLOCK.now()
        return max([0, *(head for at, head in self.jumps if now - at >= seconds)])

    def _stop_clock(self) -> None:
        CLOCK.stop()

    # The machine's own hooks: each sets up a fault the time steps build on.
    def _write_post(self, title: str) -> str:
        raise NotImplementedError

    def _write_comment(self, post_id: str, content: str, author: str | None = None) -> None:
        raise NotImplementedError

    def sns_goes_down_or_comes_back(self) -> None:
        raise NotImplementedError

    def outage_starts_or_ends(self, consumer: str, mode: Any) -> None:
        raise NotImplementedError

    def _grace_over(self) -> None:
        raise NotImplementedError

    def _take_failed_batches(self) -> None:
        raise NotImplementedError

    # -- the clock -----------------------------------------------------------------------------

    def _advance(self, seconds: float, schedules_run: bool) -> None:
        """Move the clock; TTL deletes whatever has expired (AWS's harshest moment); the queues'
        retention and the stream's apply as they are read. ``schedules_run``: the schedules ran
        meanwhile (else they were down too)."""
        self._grace_over()  # an hour's grace is over once time passes
        self._note_poison()
        self.jumps.append((CLOCK.now(), archive.head(settings.load()).position))
        deleted = CLOCK.advance(seconds)
        self._forget_expired_poison()
        self.faults["clock_advanced"] += 1
        if seconds > DAY:
            self.faults["clock_advanced_past_a_day"] += 1
        if seconds > 14 * DAY:
            self.faults["clock_advanced_past_14_days"] += 1
        if deleted:
            self.faults["archive_items_expired_by_ttl"] += deleted
        if seconds >= QUEUE_RETENTION and not schedules_run:
            self.queues_outlived = True
        if schedules_run:
            self.runner.drain()
            for schedule in SCHEDULED:
                self.runner.fire(schedule)
                self.runner.drain()
            self._take_failed_batches()
            self.queues_outlived = False

    def _note_poison(self) -> None:
        now = CLOCK.now()
        for bodies in self.poison.values():
            for body in bodies:
                self.poison_sent.setdefault(body, now)

    def _forget_expired_poison(self) -> None:
        """A DLQ keeps a message's first enqueue time (SQS): past the retention it is gone."""
        for consumer, bodies in self.poison.items():
            url = queue_url(names.dead_letter_queue(PREFIX, consumer))
            retention = int(
                aws.client("sqs").get_queue_attributes(
                    QueueUrl=url, AttributeNames=["MessageRetentionPeriod"]
                )["Attributes"]["MessageRetentionPeriod"]
            )
            now = CLOCK.now()
            self.poison[consumer] = [
                b for b in bodies if self.poison_sent.get(b, now) + retention > now
            ]
            expired = len(bodies) - len(self.poison[consumer])
            if expired:
                self.operations["poison_expired_by_retention"] += expired

    @rule(seconds=st.sampled_from(JUMPS), schedules_run=st.booleans())
    def time_passes(self, seconds: int, schedules_run: bool) -> None:
        self._advance(seconds, schedules_run)

    # -- outages longer than a retention -------------------------------------------------------

    @rule(content=st.sampled_from(("a day", "an orange a day")))
    def publisher_away_longer_than_the_stream(self, content: str) -> None:
        """The stream publisher reads nothing for 25 hours: its records leave the stream."""
        self.runner.pause("outbox_publisher")
        try:
            self._write_comment(self._write_post("written as the stream stopped"), content)
            self._advance(DAY + HOUR, schedules_run=False)
        finally:
            self.runner.resume("outbox_publisher")
        self.faults["stream_retention_exceeded"] += 1

    @rule(
        consumer=st.sampled_from(names.CONSUMERS),
        days=st.sampled_from((6, 8, 15)),
    )
    def consumer_paused_for_days(self, consumer: str, days: int) -> None:
        """A consumer paused for most of a week (its queue keeps its messages), or for longer
        than its queue's retention (its messages are gone: its catch-up reads the archive)."""
        if self.outage is not None:
            self.outage_starts_or_ends(consumer, "pause")  # ends the one under way
        self.outage_starts_or_ends(consumer, "pause")
        post = self._write_post(f"while {consumer} was away {days} days")
        self._write_comment(post, "an orange was written")
        self.runner.drain()
        self._advance(days * DAY, schedules_run=True)
        self.outage_starts_or_ends(consumer, "pause")  # ends it: the catch-up
        outlived = days * DAY >= QUEUE_RETENTION
        self.faults["queue_retention_exceeded" if outlived else "consumer_paused_a_week"] += 1

    @rule()
    def sns_down_for_two_days(self) -> None:
        """SNS unreachable for two days, with writes, the sweeper failing every run, and the
        stream's records trimmed meanwhile; then it is back."""
        if self.sns_down is None:
            self.sns_goes_down_or_comes_back()
        post = self._write_post("while SNS was down for two days")
        self._write_comment(post, "lovely weather")
        self.runner.drain()
        self._advance(2 * DAY, schedules_run=True)
        self.sns_goes_down_or_comes_back()
        self.faults["sns_down_two_days"] += 1

    # -- a handler past its timeout ------------------------------------------------------------

    @rule(source=st.sampled_from(sorted(TIMED_OUT)), content=st.sampled_from(("apple", "orange")))
    def handler_runs_past_its_timeout(self, source: str, content: str) -> None:
        """One call of the handler takes longer than its function's timeout: Lambda stops it
        there; what it wrote before stays, and the batch fails."""
        service, operation, table = TIMED_OUT[source]
        timeout = timeout_of(function_name(source))
        table_name = names.resource(PREFIX, table)
        slow = itertools.count()
        started = time.monotonic()

        def takes_too_long(params: dict[str, Any]) -> bool:
            in_handler = deadline() is not None  # not the API's own write
            if in_handler and _mentions(params, table_name) and next(slow) == 0:
                CLOCK.jump(timeout + 1)
            return False

        with failing(service, operation, RuntimeError("never raised"), when=takes_too_long):
            self._write_comment(self._write_post(f"slow {source}"), content)
            self.runner.drain()
        if next(slow) >= 1:
            self.faults["handler_past_its_timeout"] += 1
        self.operations["handler_timeout_steps_seconds"] += int(time.monotonic() - started)
