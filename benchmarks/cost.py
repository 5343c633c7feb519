"""What the blog costs to run on AWS: every billable request of a post and of a comment, end to
end, priced at AWS's on-demand list prices, per million posts at the design load, beside the
guarantee's physical minimum.

Measured on the in-process stack (moto, the deployed template, the event-source runner, the API
through ``chalice.test.Client``) over a seeded history, with every AWS call billed by AWS's own
rules (``billed_calls``, ``billing``): DynamoDB write and read units from the items' real
sizes and index changes, SNS and SQS requests by 64 KB chunks, S3 requests, Lambda invocations
and GB-seconds at each function's configured memory, log bytes and the embedded metrics.

Each flow runs at batch 1 (one action, then the pipeline drains) and batch 10 (ten, then one
drain). A function's cost per action is then ``a + b / batch``: what it pays per record and per
batch; the design load fixes each function's batch (``design_batches``). Schedules, idle polls,
alarms, metrics and the key cost by the month whatever the load: their month is shared by the
design load's posts. Prices: ``prices``.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from benchmarks import billing, in_process, machine, report
from benchmarks.billed_calls import (
    ASSUMED_LATENCY_MS,
    BilledCalls,
    timed_invocation,
    timed_invocations,
)
from benchmarks.prices import CHECKED, PRICES, REGION, dollars
from benchmarks.report import log

NAME = "cost"
PAGE = "COST.md"
BATCHES = (1, 10)
MONTH_SECONDS = 30 * 86_400
MILLION = 1_000_000

STREAM_POLLS_PER_SECOND = 4
"""Lambda polls a DynamoDB stream's shard 4 times a second (Lambda Developer Guide, "Using
Lambda with DynamoDB"): at the design load a publisher's batch is a quarter second's events."""
STREAM_SHARDS = 4
"""Stream shards of the outbox table, each polled on its own. Not measured: a new on-demand
table is ready for 4,000 writes a second, which takes at least four partitions, and a table's
stream has a shard per partition (inferred; ``DescribeStream`` on a deployed table tells).
The page also gives the write path at one shard."""
CATCH_UP_SECONDS = 60
"""A consumer's catch-up runs once a minute and folds its seen marks into its watermark."""
POSITION_DIGITS = 9
"""Archive positions pass 10^8 after 45 days at the design load (26 events a second): a seen
mark is then a 9-digit number."""
PRODUCTION_LOGS = {"POWERTOOLS_LOG_LEVEL": "INFO"}
"""The deployed stage's log level (.chalice/config.json). A logger takes it when first built,
so every stack of the run sets it."""
IDLE_POLLERS = 5
"""Lambda's SQS pollers long-poll an idle queue; each empty receive is billed (AWS Knowledge
Center, "Why are my Amazon SQS charges higher than expected?"). How many pollers is not
documented: five, the concurrency Lambda scales back to (our mappings set a maximum
concurrency, which turns off its scaling down to two)."""
IDLE_RECEIVES_PER_POLLER_MINUTE = 3  # 20 s long polls
PLATFORM_LOG_BYTES = 330
"""Not measured: the START, END and REPORT lines Lambda writes for each invocation."""
KMS_REUSE_SECONDS = 300
"""SQS's data key reuse period (the template's ``KmsDataKeyReusePeriodSeconds``), and SNS's
"up to 5 minutes"; KMS calls a month: month / reuse x (2 x producers + consumers) per queue,
month / reuse x 2 x publishers per topic (SQS and SNS Developer Guides, key management)."""
TOPIC_PUBLISHERS = 2  # the publisher's and the sweeper's roles
CONSUMER_QUEUES = 3


@dataclass(frozen=True)
class DesignLoad:
    posts_per_second: float = 2.0
    comments_per_second: float = 8.0
    reads_per_second: float = 50.0

    @property
    def comments_per_post(self) -> float:
        return self.comments_per_second / self.posts_per_second

    @property
    def reads_per_post(self) -> float:
        return self.reads_per_second / self.posts_per_second

    @property
    def events_per_second(self) -> float:
        return self.posts_per_second + 3 * self.comments_per_second

    @property
    def posts_per_month(self) -> float:
        return self.posts_per_second * MONTH_SECONDS


DESIGN = DesignLoad()


@dataclass
class Usage:
    """Billable quantities (per action, once divided)."""

    api_requests: float = 0.0
    invocations: float = 0.0
    gb_seconds: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0
    read_units: float = 0.0
    sns_requests: float = 0.0
    sqs_requests: float = 0.0
    sqs_deliveries: float = 0.0
    """Messages SNS put into a queue: counted as one SQS request each (an assumption: AWS
    says only "Standard SQS pricing applies")."""
    s3_puts: float = 0.0
    s3_gets: float = 0.0
    log_bytes: float = 0.0
    seen_marks: float = 0.0
    """Seen-mark ``ADD`` writes (already in ``write_units``), their units and their keys' bytes:
    what ``steady_seen_marks`` reprices at the size the marks' item has at the design load."""
    seen_mark_units: float = 0.0
    seen_mark_key_bytes: float = 0.0

    def plus(self, other: Usage, times: float = 1.0) -> Usage:
        return Usage(
            **{f.name: getattr(self, f.name) + times * getattr(other, f.name) for f in fields(self)}
        )

    def times(self, factor: float) -> Usage:
        return Usage().plus(self, factor)

    def __add__(self, other: Usage) -> Usage:
        return self.plus(other)


LINE_ITEMS: list[tuple[str, str, Callable[[Usage], float]]] = [
    ("api", "API Gateway requests", lambda u: dollars("api_gateway_request", u.api_requests)),
    ("lambda_requests", "Lambda requests", lambda u: dollars("lambda_request", u.invocations)),
    (
        "lambda_duration",
        "Lambda duration (GB-s at each function's memory)",
        lambda u: dollars("lambda_gb_second", u.gb_seconds),
    ),
    (
        "dynamodb_writes",
        "DynamoDB write units (tables)",
        lambda u: dollars("dynamodb_write_unit", u.write_units),
    ),
    (
        "dynamodb_index_writes",
        "DynamoDB write units (indexes)",
        lambda u: dollars("dynamodb_write_unit", u.index_write_units),
    ),
    (
        "dynamodb_reads",
        "DynamoDB read units",
        lambda u: dollars("dynamodb_read_unit", u.read_units),
    ),
    ("sns", "SNS requests", lambda u: dollars("sns_request", u.sns_requests)),
    (
        "sqs",
        "SQS requests (receives, deletes, SNS deliveries)",
        lambda u: dollars("sqs_request", u.sqs_requests + u.sqs_deliveries),
    ),
    (
        "s3",
        "S3 requests",
        lambda u: dollars("s3_put", u.s3_puts) + dollars("s3_get", u.s3_gets),
    ),
    ("logs", "CloudWatch Logs ingestion", lambda u: dollars("logs_gb", u.log_bytes / 1024**3)),
]


def priced(usage: Usage) -> dict[str, float]:
    return {key: price(usage) for key, _, price in LINE_ITEMS}


# --- from a ledger to usage -----------------------------------------------------------------


def memory_of(function: str) -> int:
    """A function's configured ``MemorySize`` (infra/functions.yaml), by its Chalice name."""
    from emulator import aws_time

    template_name = "APIHandler" if function == "api_handler" else aws_time.function_name(function)
    return int(aws_time._functions()[template_name]["MemorySize"])


def usage_by_actor(ledger: BilledCalls, log_bytes: int, actions: int) -> dict[str, Usage]:
    """Each actor's usage per action: ``function:<name>`` pays its invocations, duration and
    calls, ``poller:<name>`` its event source mapping's SQS requests; ``logs`` the log lines."""
    totals: dict[str, Usage] = defaultdict(Usage)
    for call in ledger.calls:
        if call.empty:
            continue  # idle polls: a monthly cost, whatever the load
        bill, usage = ledger.bill(call), totals[call.actor]
        usage.write_units += bill.write_units
        usage.index_write_units += bill.index_write_units
        if str(call.params.get("UpdateExpression", "")).startswith("ADD #seen"):
            usage.seen_marks += 1
            usage.seen_mark_units += bill.write_units
            usage.seen_mark_key_bytes += billing.item_size(call.params["Key"]) + len("seen")
        usage.read_units += bill.read_units
        if call.service == "sns":
            usage.sns_requests += bill.requests
        elif call.service == "sqs":
            usage.sqs_requests += bill.requests
            usage.sqs_deliveries += bill.delivered
        elif call.service == "s3":
            if call.operation in ("PutObject", "CopyObject", "ListObjectsV2", "ListObjects"):
                usage.s3_puts += bill.requests
            else:
                usage.s3_gets += bill.requests
    for invocation in ledger.invocations:
        usage = totals[f"function:{invocation.function}"]
        memory = memory_of(invocation.function)
        billed = billing.lambda_billed_ms(invocation.own_cpu_seconds, invocation.waits_ms, memory)
        usage.invocations += 1
        usage.gb_seconds += billing.gb_seconds(memory, billed)
        usage.log_bytes += PLATFORM_LOG_BYTES
        if invocation.function == "api_handler":
            usage.api_requests += 1
    totals["logs"].log_bytes += log_bytes
    return {actor: usage.times(1 / actions) for actor, usage in sorted(totals.items())}


def design_batches(load: DesignLoad = DESIGN, shards: int = STREAM_SHARDS) -> dict[str, float]:
    """Each function's batch at the design load: the publisher gets what reached its shard in a
    quarter second (Lambda polls a shard 4 times a second); a consumer's queue mapping has no
    batching window, so Lambda invokes it with what one receive returned: at a few messages a
    second, one."""
    per_shard = load.events_per_second / shards
    return {"outbox_publisher": max(1.0, per_shard / STREAM_POLLS_PER_SECOND)}


def consumer_rates(load: DesignLoad = DESIGN) -> dict[str, float]:
    """Messages a second each consumer receives at ``load``."""
    return {
        "query_consumer": load.posts_per_second + 2 * load.comments_per_second,
        "moderation_consumer": load.comments_per_second,
        "comments_consumer": load.comments_per_second,
    }


def at_batch(
    one: dict[str, Usage], ten: dict[str, Usage], batches: dict[str, float]
) -> dict[str, Usage]:
    """Each actor's usage per action at its batch: ``a + b / batch`` through the measured
    points (batch 1 and batch 10)."""
    usage = {}
    for actor in sorted(set(one) | set(ten)):
        u1, u10 = one.get(actor, Usage()), ten.get(actor, Usage())
        batch = batches.get(actor.split(":")[-1], 1.0)
        per_batch = u1.plus(u10, -1).times(10 / 9)  # b
        per_record = u1.plus(per_batch, -1)  # a
        usage[actor] = per_record.plus(per_batch, 1 / batch)
    return usage


def batching_window(load: DesignLoad = DESIGN, seconds: float = 1.0) -> dict[str, float]:
    """The consumers' batches if their queue mappings waited ``seconds`` for a batch (at most
    10): what each receives in that time."""
    windowed = {k: min(10.0, r * seconds) for k, r in consumer_rates(load).items()}
    return {**design_batches(load), **windowed}


def steady_seen_marks(usage: Usage, rate: float, batch: float) -> float:
    """Write units a consumer's seen marks add, per action, at the design load. Each ``ADD``
    rewrites the marks' item, which grows until the next catch-up folds it: the run measures
    it nearly empty, with short positions. At ``rate`` messages a second in batches of
    ``batch``, the item holds up to ``rate`` x ``CATCH_UP_SECONDS`` marks of
    ``POSITION_DIGITS`` digits."""
    if usage.seen_marks == 0:
        return 0.0
    key_bytes = usage.seen_mark_key_bytes / usage.seen_marks
    adds = max(1, round(rate * CATCH_UP_SECONDS / batch))
    mark = billing.number_size("9" * POSITION_DIGITS)
    units = [billing.write_units(round(key_bytes + k * batch * mark)) for k in range(1, adds + 1)]
    return usage.seen_marks * sum(units) / adds - usage.seen_mark_units


# --- measuring ------------------------------------------------------------------------------


def _measure(
    stack: in_process.InProcess, act: Callable[[BilledCalls], None], actions: int
) -> dict[str, Usage]:
    """``act``, then drain the pipeline, with every call billed and every invocation timed."""
    ledger, first = BilledCalls(), stack.output.bytes
    with ledger, timed_invocations(ledger):
        act(ledger)
        stack.runner.drain()
    return usage_by_actor(ledger, stack.output.bytes - first, actions)


def _request(
    stack: in_process.InProcess,
    ledger: BilledCalls,
    path: str,
    body: dict[str, Any] | None = None,
    expect: int = 200,
) -> Any:
    """One API request, timed as an invocation of the API's function: a POST with ``body``,
    else a GET."""
    with timed_invocation(ledger, "api_handler"):
        status, answer = stack.api.get(path) if body is None else stack.api.post(path, body)
    assert status == expect, answer
    return answer


def _settle(stack: in_process.InProcess) -> None:
    stack.runner.drain()
    for name in ("query_catch_up", "moderation_catch_up", "comments_catch_up"):
        stack.runner.fire(name)


def measure_posts(stack: in_process.InProcess, n: int) -> dict[str, Usage]:
    _settle(stack)

    def act(ledger: BilledCalls) -> None:
        for index in range(n):
            body = {"title": f"A post of batch {n}, number {index}", "author": "Ada"}
            _request(stack, ledger, "/posts", body, 201)

    return _measure(stack, act, n)


def measure_comments(stack: in_process.InProcess, n: int) -> dict[str, Usage]:
    posts = [stack.api.post("/posts", {"title": f"For comment {i}"})[1]["id"] for i in range(n)]
    _settle(stack)

    def act(ledger: BilledCalls) -> None:
        for post in posts:
            body = {
                "content": "A thoughtful comment on the post, a sentence long.",
                "author": "Ada",
            }
            _request(stack, ledger, f"/posts/{post}/comments", body, 201)

    return _measure(stack, act, n)


def measure_reads(stack: in_process.InProcess, comments: int, repeats: int = 10) -> Usage:
    """One read of the design load's mix: half ``GET /posts`` pages, half ``GET /posts/{id}``
    of a post with the design load's comments."""
    post = stack.api.post("/posts", {"title": "Read back"})[1]["id"]
    for index in range(comments):
        stack.api.post(f"/posts/{post}/comments", {"content": f"Comment {index}"})
    _settle(stack)

    def act(ledger: BilledCalls) -> None:
        for _ in range(repeats):
            _request(stack, ledger, "/posts")
            _request(stack, ledger, f"/posts/{post}")

    usage = _measure(stack, act, 2 * repeats)
    return sum(usage.values(), Usage())


def measure_sealing(stack: in_process.InProcess, history: int) -> tuple[Usage, int]:
    """The archive segmenter sealing ``history`` archived events (S3 segments, then each
    record's TTL): its usage per event sealed, and how many were."""
    from benchmarks.seeded_history import seed_archive
    from emulator.aws_time import CLOCK
    from functions import archive

    settings = stack.settings
    seed_archive(settings, history, segment=False)
    CLOCK.jump(settings.hole_grace_seconds + 1)  # every position is final
    sealed_before = archive.head(settings).sealed_through
    ledger, first = BilledCalls(), stack.output.bytes
    with ledger, timed_invocations(ledger):
        stack.runner.fire("archive_segmenter")
    sealed = archive.head(settings).sealed_through - sealed_before
    assert sealed >= settings.segment_size - 1, f"only {sealed} positions sealed"
    usage = usage_by_actor(ledger, stack.output.bytes - first, sealed)
    return sum(usage.values(), Usage()), sealed


def measure_schedules(stack: in_process.InProcess) -> dict[str, dict[str, Any]]:
    """Each schedule run once on a settled stack: its usage a run and its runs a month. The
    archive is sealed first: sealing is paid per event (``measure_sealing``)."""
    _settle(stack)
    stack.runner.fire("archive_segmenter")
    runs = {}
    for name, source in sorted(stack.runner.sources.items()):
        if source.kind != "schedule":
            continue
        usage = _measure(stack, _firing(stack, name), 1)
        runs[name] = {
            "usage": sum(usage.values(), Usage()),
            "per_month": MONTH_SECONDS / source.every,
        }
    return runs


def _firing(stack: in_process.InProcess, name: str) -> Callable[[BilledCalls], None]:
    def fire(_: BilledCalls) -> None:
        stack.runner.fire(name)

    return fire


def event_sizes(stack: in_process.InProcess, last: int = 200) -> dict[str, int]:
    """The archived size of each event type among the last ``last`` positions (the measured
    flows' events): the floor writes each event once, at this size."""
    from functions import archive

    settings = stack.settings
    head = archive.head(settings).position
    sizes: dict[str, int] = {}
    for event in archive.read(settings, range(max(1, head - last), head + 1)).values():
        record = billing.item_size(archive._put(settings, event)["PutRequest"]["Item"])
        sizes[event.event_type] = max(sizes.get(event.event_type, 0), record)
    return sizes


def count_alarms() -> int:
    """The alarms of the packaged template (``make package``)."""
    import json

    from tools.package import package

    with tempfile.TemporaryDirectory() as folder:
        template = json.loads(package(Path(folder)).read_text())
    return sum(1 for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")


# --- the floor, the month, the design load ---------------------------------------------------

POST_EVENTS = {"PostCreated": 1}
COMMENT_EVENTS = {"CommentCreated": 1, "CommentModerated": 1, "CommentUpdated": 1}


def floor(events: dict[str, float], sizes: dict[str, int], deliveries: dict[str, float]) -> Usage:
    """The guarantee's physical minimum for ``events``: each event written once, durably, with
    what it records (one write per started KB of it); published once, ten to a request (the
    most a ``PublishBatch`` takes); put into each queue that wants it (a request per message),
    received and deleted there ten to a request; and each delivery to the query view written
    once. No ingress, compute, archive, positions, transactions or schedules: whatever else a
    design does is above it."""
    delivered = sum(deliveries.values())
    return Usage(
        write_units=sum(n * billing.write_units(sizes[kind]) for kind, n in events.items())
        + deliveries.get("query_consumer", 0.0),
        sns_requests=sum(events.values()) / 10,
        sqs_requests=2 * delivered / 10,
        sqs_deliveries=delivered,
    )


def deliveries_of(usage: dict[str, Usage]) -> dict[str, float]:
    """Messages each consumer received per action."""
    return {
        actor.split(":")[1]: u.sqs_deliveries
        for actor, u in usage.items()
        if actor.startswith("poller:") and u.sqs_deliveries
    }


def monthly(schedules: dict[str, dict[str, Any]], alarms: int, metrics: int) -> dict[str, float]:
    """Dollars a month whatever the load."""
    runs = sum((entry["usage"].times(entry["per_month"]) for entry in schedules.values()), Usage())
    idle = CONSUMER_QUEUES * IDLE_POLLERS * IDLE_RECEIVES_PER_POLLER_MINUTE * MONTH_SECONDS / 60
    periods = MONTH_SECONDS / KMS_REUSE_SECONDS
    kms_requests = periods * (2 * TOPIC_PUBLISHERS + CONSUMER_QUEUES * (2 * 1 + 1))
    return {
        "schedules": sum(priced(runs).values()),
        "idle_polls": dollars("sqs_request", idle),
        "alarms": dollars("alarm_month", alarms),
        "metrics": dollars("custom_metric_month", metrics),
        "kms": dollars("kms_key_month", 1) + dollars("kms_request", kms_requests),
    }


def write_path(
    result: dict[str, Any], batches: dict[str, float], load: DesignLoad = DESIGN
) -> dict[str, Usage]:
    """Per post at ``batches``, by actor: the post, its comments, sealing their events, and
    the seen marks' growth at the design load."""
    flows = result["flows"]
    post = at_batch(flows["post"]["1"], flows["post"]["10"], batches)
    comment = at_batch(flows["comment"]["1"], flows["comment"]["10"], batches)
    usage = {
        actor: post.get(actor, Usage()).plus(comment.get(actor, Usage()), load.comments_per_post)
        for actor in set(post) | set(comment)
    }
    usage["sealing"] = result["sealing"].times(1 + 3 * load.comments_per_post)
    usage["seen marks at the design load"] = Usage(
        write_units=sum(
            steady_seen_marks(usage.get(f"function:{name}", Usage()), rate, batches.get(name, 1))
            for name, rate in consumer_rates(load).items()
        )
    )
    return usage


def per_million_posts(result: dict[str, Any], load: DesignLoad = DESIGN) -> dict[str, Any]:
    """The design load's cost of a million posts, by line item: the write path (a post, its
    comments, their sealing), the reads, and the month's fixed costs shared by its posts."""
    flows = result["flows"]
    by_actor = write_path(result, design_batches(load), load)
    writes = sum(by_actor.values(), Usage())
    windowed = sum(write_path(result, batching_window(load), load).values(), Usage())
    reads = result["reads"].times(load.reads_per_post)
    share = MILLION / load.posts_per_month
    fixed = {key: value * share for key, value in result["monthly"].items()}
    deliveries = {
        consumer: deliveries_of(flows["post"]["1"]).get(consumer, 0.0)
        + load.comments_per_post * deliveries_of(flows["comment"]["1"]).get(consumer, 0.0)
        for consumer in ("moderation_consumer", "comments_consumer", "query_consumer")
    }
    events = {**POST_EVENTS} | {k: load.comments_per_post * v for k, v in COMMENT_EVENTS.items()}
    minimum = floor(events, result["event_sizes"], deliveries)
    one_shard = write_path(result, design_batches(load, shards=1), load)
    return {
        "write_path": {k: v * MILLION for k, v in priced(writes).items()},
        "by_actor": {
            actor: {k: v * MILLION for k, v in priced(usage).items()}
            for actor, usage in sorted(by_actor.items())
        },
        "with_batching_window": sum(priced(windowed).values()) * MILLION,
        "at_one_shard": sum(priced(sum(one_shard.values(), Usage())).values()) * MILLION,
        "reads": {k: v * MILLION for k, v in priced(reads).items()},
        "fixed": fixed,
        "floor": {k: v * MILLION for k, v in priced(minimum).items()},
        "write_path_usage": asdict(writes.times(MILLION)),
        "floor_usage": asdict(minimum.times(MILLION)),
        "deliveries_per_post": deliveries,
        "publisher_batch": design_batches(load)["outbox_publisher"],
    }


def write_history(stack: in_process.InProcess, posts: int, comments: int) -> int:
    """A real history through the API: ``posts`` posts with ``comments`` comments each, ten posts
    at a time, drained; the events archived."""
    from functions import archive

    for start in range(0, posts, 10):
        for index in range(start, min(posts, start + 10)):
            post = stack.api.post("/posts", {"title": f"History post {index}"})[1]["id"]
            for number in range(comments):
                stack.api.post(f"/posts/{post}/comments", {"content": f"Comment {number}"})
        _settle(stack)
    return archive.head(stack.settings).position


def measure(history: int, history_posts: int, segment_size: int = 1000) -> dict[str, Any]:
    from emulator.aws_time import CLOCK

    comments = round(DESIGN.comments_per_post)
    flows: dict[str, dict[str, dict[str, Usage]]] = {"post": {}, "comment": {}}
    CLOCK.start()
    try:
        with in_process.in_process_stack(
            {"ARCHIVE_SEGMENT_SIZE": str(segment_size), **PRODUCTION_LOGS}
        ) as stack:
            log(f"sealing an archive of {history:,} events")
            sealing, sealed = measure_sealing(stack, history)
    finally:
        CLOCK.stop()
    with in_process.in_process_stack(PRODUCTION_LOGS) as stack:
        log(f"a history of {history_posts} posts with {comments} comments each")
        events = write_history(stack, history_posts, comments)
        for n in BATCHES:
            log(f"posts and comments at batch {n}")
            flows["post"][str(n)] = measure_posts(stack, n)
            flows["comment"][str(n)] = measure_comments(stack, n)
        log("reads")
        reads = measure_reads(stack, comments)
        sizes = event_sizes(stack)
        log("schedules, once each")
        schedules = measure_schedules(stack)
        metrics = len(stack.output.metrics)
    log("packaging the template to count its alarms")
    alarms = count_alarms()
    return {
        "history": history,
        "sealed": sealed,
        "history_events": events,
        "sealing": sealing,
        "flows": flows,
        "reads": reads,
        "event_sizes": sizes,
        "schedules": schedules,
        "alarms": alarms,
        "custom_metrics": metrics,
        "monthly": monthly(schedules, alarms, metrics),
    }


# --- the page -------------------------------------------------------------------------------


def _d(value: float) -> str:
    return f"${value:,.2f}"


def markdown(result: dict[str, Any]) -> str:
    cost = result["per_million_posts"]
    labels = {key: label for key, label, _ in LINE_ITEMS}
    write_path, reads, fixed, minimum = (
        cost["write_path"],
        cost["reads"],
        cost["fixed"],
        cost["floor"],
    )
    total_writes, total_floor = sum(write_path.values()), sum(minimum.values())
    total = total_writes + sum(reads.values()) + sum(fixed.values())
    everything = {
        **{f"{labels[k]}, write path": v for k, v in write_path.items()},
        **{f"{labels[k]}, reads": v for k, v in reads.items()},
        **{f"{k}, by the month": v for k, v in fixed.items()},
    }
    biggest, biggest_cost = max(everything.items(), key=lambda kv: kv[1])
    load = DESIGN
    rows = [
        [label, _d(write_path[key]), _d(minimum[key]), _d(reads[key])]
        for key, label, _ in LINE_ITEMS
    ]
    rows.append(
        [
            "**total**",
            f"**{_d(total_writes)}**",
            f"**{_d(total_floor)}**",
            f"**{_d(sum(reads.values()))}**",
        ]
    )
    fixed_rows = [
        [
            "schedules (each run measured once, idle)",
            _d(result["monthly"]["schedules"]),
            _d(fixed["schedules"]),
        ],
        [
            f"idle SQS polls ({CONSUMER_QUEUES} queues x {IDLE_POLLERS} pollers x "
            f"{IDLE_RECEIVES_PER_POLLER_MINUTE} a minute)",
            _d(result["monthly"]["idle_polls"]),
            _d(fixed["idle_polls"]),
        ],
        [
            f"alarms ({result['alarms']}, from the packaged template)",
            _d(result["monthly"]["alarms"]),
            _d(fixed["alarms"]),
        ],
        [
            f"custom metrics ({result['custom_metrics']} seen in the run)",
            _d(result["monthly"]["metrics"]),
            _d(fixed["metrics"]),
        ],
        ["KMS key and its requests", _d(result["monthly"]["kms"]), _d(fixed["kms"])],
        [
            "**total**",
            f"**{_d(sum(result['monthly'].values()))}**",
            f"**{_d(sum(fixed.values()))}**",
        ],
    ]
    quantity_rows = []
    wp, fl = cost["write_path_usage"], cost["floor_usage"]
    for name in (
        "api_requests",
        "invocations",
        "gb_seconds",
        "write_units",
        "index_write_units",
        "read_units",
        "sns_requests",
        "sqs_requests",
        "sqs_deliveries",
        "s3_puts",
        "s3_gets",
        "log_bytes",
    ):
        quantity_rows.append(
            [name.replace("_", " "), f"{wp[name] / MILLION:,.3f}", f"{fl[name] / MILLION:,.3f}"]
        )
    flow_rows = []
    for flow in ("post", "comment"):
        for n in BATCHES:
            usage = sum(result["flows"][flow][str(n)].values(), Usage())
            usage = _usage(usage)
            line = priced(usage)
            flow_rows.append(
                [
                    f"one {flow}, batch {n}",
                    f"{usage.write_units:g}",
                    f"{usage.index_write_units:g}",
                    f"{usage.read_units:g}",
                    f"{usage.invocations:g}",
                    f"{usage.gb_seconds:.4f}",
                    f"{usage.sns_requests:g}",
                    f"{usage.sqs_requests + usage.sqs_deliveries:g}",
                    f"{sum(line.values()) * MILLION:,.2f}",
                ]
            )
    sealing = _usage(result["sealing"])
    flow_rows.append(
        [
            f"sealing, per event ({result['sealed']:,} sealed)",
            f"{sealing.write_units:.3f}",
            f"{sealing.index_write_units:.3f}",
            f"{sealing.read_units:.3f}",
            f"{sealing.invocations:.4f}",
            f"{sealing.gb_seconds:.5f}",
            "0",
            "0",
            f"{sum(priced(sealing).values()) * MILLION:,.2f}",
        ]
    )
    read = _usage(result["reads"])
    flow_rows.append(
        [
            "one read (half pages, half posts)",
            f"{read.write_units:g}",
            f"{read.index_write_units:g}",
            f"{read.read_units:g}",
            f"{read.invocations:g}",
            f"{read.gb_seconds:.4f}",
            "0",
            "0",
            f"{sum(priced(read).values()) * MILLION:,.2f}",
        ]
    )
    schedule_rows = [
        [
            f"`{name}`",
            f"{entry['per_month']:,.0f}",
            f"{_usage(entry['usage']).write_units:g}",
            f"{_usage(entry['usage']).read_units:g}",
            _d(sum(priced(_usage(entry["usage"])).values()) * entry["per_month"]),
        ]
        for name, entry in result["schedules"].items()
    ]
    price_rows = [[p.per, p.quoted(), p.source, p.dated] for p in PRICES.values()]
    sizes = ", ".join(f"{k} {v} B" for k, v in sorted(result["event_sizes"].items()))
    return "\n".join(
        [
            "# What it costs to run on AWS",
            "",
            machine.machine_line(result["machine"]),
            "",
            f"Produced by `python -m benchmarks.cost`. Every billable request of a post and "
            f"of a comment, end to end, counted on the in-process stack (moto, the template, "
            f"the event-source runner, the API) after a history of "
            f"{result['history_events']:,} events written through the API (the archive's "
            f"sealing over {result['history']:,} archived events), and priced at AWS's "
            f"on-demand list prices for {REGION} (below, each with its source and date, "
            f"compiled {CHECKED}; not checked against AWS's live pages). DynamoDB units come "
            "from the items' sizes and index changes, as AWS sizes them (the seen marks' item "
            "repriced at the size it reaches at the design load, below); SNS and SQS requests "
            "by 64 KB chunk. Lambda duration is each invocation's own CPU time (botocore's work "
            "included, moto's taken out), stretched by the vCPU share of the function's "
            "configured memory, plus an assumed AWS latency per call: the latency is most of "
            "the billed time.",
            "",
            "## A million posts at the design load",
            "",
            f"The design load: {load.posts_per_second:g} posts, {load.comments_per_second:g} "
            f"comments and {load.reads_per_second:g} reads a second, so each post comes with "
            f"{load.comments_per_post:g} comments and {load.reads_per_post:g} reads, "
            f"{load.events_per_second:g} events a second, {load.posts_per_month / MILLION:.2f} "
            f"million posts a month. The publisher's batch is what reaches one of the "
            f"outbox stream's {STREAM_SHARDS} shards in a quarter second "
            f"({cost['publisher_batch']:g} events; at one shard, "
            f"{design_batches(load, shards=1)['outbox_publisher']:g}, the write path would cost "
            f"{_d(cost['at_one_shard'])}); a consumer's batch is one message (no batching "
            "window).",
            "",
            report.table(
                [
                    "per million posts",
                    "write path (this design)",
                    "write path (the guarantee's floor)",
                    "reads",
                ],
                rows,
            ),
            "",
            f"**All in: {_d(total)} per million posts** (write path {_d(total_writes)}, reads "
            f"{_d(sum(reads.values()))}, the month's fixed costs' share "
            f"{_d(sum(fixed.values()))}). "
            f"Without the user's requests (no write or publish, so not in the floor), the "
            f"write path costs **{(total_writes - write_path['api']) / total_floor:.1f} times "
            f"its floor** ({_d(total_writes - write_path['api'])} against "
            f"{_d(total_floor)}). The biggest line item: **{biggest}**, {_d(biggest_cost)}.",
            "",
            "The floor is what no design of this guarantee can avoid: each event written once, "
            "durably, with what it records (one write unit per started KB; the events measured "
            f"here: {sizes}), published once, ten to a request, put into each queue that wants "
            "it, received and deleted there ten to a request, and each delivery to the query "
            "view written once. No ingress, compute, archive, positions, transactions, "
            "schedules or alarms.",
            "",
            "Where the write path's money goes, by who pays it (per million posts):",
            "",
            report.table(
                ["who", "DynamoDB", "Lambda", "SNS and SQS", "other", "total"],
                _actor_rows(cost["by_actor"]),
            ),
            "",
            f"With a 1 s batching window on the three queue mappings (each consumer then gets up "
            f"to 10 messages an invocation; events reach the view up to a second later), the write "
            f"path would cost {_d(cost['with_batching_window'])} instead of {_d(total_writes)}.",
            "",
            "Per post at the design load (write path), against the floor:",
            "",
            report.table(["quantity", "this design", "the floor"], quantity_rows),
            "",
            "## Measured per action",
            "",
            report.table(
                [
                    "action",
                    "write units",
                    "index write units",
                    "read units",
                    "invocations",
                    "GB-s",
                    "SNS",
                    "SQS",
                    "$ per million",
                ],
                flow_rows,
            ),
            "",
            "## By the month, whatever the load",
            "",
            report.table(["what", "a month", "per million posts at the design load"], fixed_rows),
            "",
            report.table(
                ["schedule", "runs a month", "write units a run", "read units a run", "a month"],
                schedule_rows,
            ),
            "",
            "## Prices",
            "",
            f"AWS's on-demand list prices for {REGION}. AWS's own pricing pages draw their figures "
            "in the browser, so the stored copies read here carry the rules but not the dollars: "
            "each figure is as transcribed by the dated source named, where several agreed.",
            "",
            report.table(["price", "dollars", "source", "dated"], price_rows),
            "",
            "## Assumptions",
            "",
            f"- Lambda: {PLATFORM_LOG_BYTES} bytes of START/END/REPORT log lines an invocation; "
            "AWS latency a call: "
            + ", ".join(f"{k} {v:g} ms" for k, v in ASSUMED_LATENCY_MS.items())
            + ".",
            "- Each message SNS delivers into a queue is counted as one SQS request (AWS says "
            '"standard SQS pricing applies").',
            f"- An idle queue's mapping: {IDLE_POLLERS} pollers, a 20 s long poll each "
            "(not documented).",
            f"- KMS: SNS and SQS reuse a data key for {KMS_REUSE_SECONDS} s; requests by their "
            "documented formulas.",
            f"- The outbox stream has {STREAM_SHARDS} shards (a new on-demand table's "
            "partitions; not measured).",
            f"- Seen marks: a consumer's marks' item holds up to a minute of marks "
            f"({CATCH_UP_SECONDS} s between catch-ups) of {POSITION_DIGITS}-digit positions "
            "(10^8 is passed after 45 days); each ADD pays the item's size.",
            "- Schedules are priced by an idle run: at load each catch-up also reads the "
            "positions its consumer does not subscribe to (a lower bound).",
            "- No request carries an `Idempotency-Key` (with one, a write's transaction has a "
            "third item: 2 more write units).",
            "- Left out: free tiers, storage (tables, S3, logs), data transfer out of the "
            "reads' answers, the tables' AWS-managed KMS key's requests, the events key's "
            "rotations, Lambda's INIT on cold starts, and WAF (off by default).",
        ]
    )


def _actor_rows(by_actor: dict[str, dict[str, float]]) -> list[list[str]]:
    groups = {
        "DynamoDB": ("dynamodb_writes", "dynamodb_index_writes", "dynamodb_reads"),
        "Lambda": ("lambda_requests", "lambda_duration"),
        "SNS and SQS": ("sns", "sqs"),
        "other": ("api", "s3", "logs"),
    }
    rows = []
    for actor, line in sorted(by_actor.items(), key=lambda kv: -sum(kv[1].values())):
        if sum(line.values()) < 0.005:
            continue
        cells = [_d(sum(line[k] for k in keys)) for keys in groups.values()]
        rows.append([f"`{actor}`", *cells, _d(sum(line.values()))])
    return rows


def _usage(value: Any) -> Usage:
    return value if isinstance(value, Usage) else Usage(**value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Usage):
        return asdict(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def run(
    output: Path, history: int = 5000, history_posts: int = 100, segment_size: int = 1000
) -> dict[str, Any]:
    """Measure, price, and write ``cost.json`` and ``COST.md`` into ``output``. The archive's
    segments hold ``segment_size`` positions (production's 1,000: smaller only to check that
    it runs)."""
    measured = measure(history, history_posts, segment_size)
    result: dict[str, Any] = {"machine": machine.machine(), **measured}
    result["per_million_posts"] = per_million_posts(result)
    result["markdown"] = markdown(result)
    report.write_page(NAME, _jsonable(result), PAGE, output)
    return result


def main() -> None:
    arguments = report.arguments("What the blog costs to run on AWS, against its floor.")
    if arguments.quick:
        result = run(arguments.output, history=1200, history_posts=5)
    else:
        result = run(arguments.output)
    print(result["markdown"])


if __name__ == "__main__":
    main()
