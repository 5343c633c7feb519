"""The local stack's targets under load, on the `make dev` stack, in one run: latency against
its floor, flat in history, a burst, a drain, with the archive counted.

Starts ``python -m emulator dev`` (what ``make dev`` runs) on free loopback ports, then:

1. **Floor**, alternating with step 2's posts so that both see the same machine load: the
   AWS calls one post makes on its way to the view (the write transaction, the stream read,
   the claim, the position, the archive write, the publish, the mark-sent, the receive, the
   pointer read, the directory, view and seen writes, the delete, and the read back), made
   back to back with boto3 against the same emulator, on scratch resources of the same shape.
   No poll waits, no handler code: what the pipeline cannot beat on this emulator.
2. **Latency, fresh**: ``POST /posts`` until ``GET /posts/{id}`` shows it, one at a time; and a
   comment's moderation round trip (``POST`` a comment until it shows ``approved``).
3. **Burst**: ``load.generator`` at 50 writes/s for 60 s (posts and comments, a quarter of the
   comments rejected); the time from the last write until every write is visible with its
   verdict, and the archive census (records ÷ distinct event ids).
4. **Drain**: 2,000 writes as fast as the API takes them (8 writers); the time from the last
   write until all are visible; then single posts, each of which should be visible within 1 s.
5. **Latency, after history**: step 2 again, the history now thousands of events deep, and the
   floor again.

Ratios are taken within this one run. The machine's load average is recorded at each phase:
on a shared machine, other processes' load weighs on every number.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import machine, report, stats
from benchmarks.local_stack import LocalStack, create_post, local_stack, shown, stack_status
from benchmarks.report import log

NAME = "hold_under_load"
FULL: dict[str, Any] = {
    "rounds": 100,
    "comments": 30,
    "burst_rate": 50.0,
    "burst_seconds": 60.0,
    "drain_writes": 2000,
    "after_drain_posts": 5,
}
QUICK: dict[str, Any] = {
    "rounds": 5,
    "comments": 2,
    "burst_rate": 5.0,
    "burst_seconds": 3.0,
    "drain_writes": 20,
    "after_drain_posts": 3,
}
POLL_SECONDS = 0.005
VISIBLE_TIMEOUT = 30.0
SAMPLE_EVERY = 2.0
"""Seconds between status samples. A sample counts the unsent backlog and reads every queue's
depth: sampled more often, the observer takes a noticeable share of the emulator's CPU."""
CONVERGE_TIMEOUT = 120.0
"""How long the burst and the drain may take to become visible (targets: 30 s and 60 s)."""


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _until(check: Callable[[], bool], started: float) -> float:
    """Seconds until ``check`` holds; ``inf`` if not within VISIBLE_TIMEOUT (a backlog)."""
    while not check():
        if time.perf_counter() - started > VISIBLE_TIMEOUT:
            return float("inf")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def post_latency(stack: LocalStack, writes: int, tag: str) -> list[float]:
    """Seconds from ``POST /posts`` until ``GET /posts/{id}`` shows the post, one at a time."""
    seconds = []
    for index in range(writes):
        started = time.perf_counter()
        post_id = create_post(stack, f"{tag} {index}")

        def arrived(post: str = post_id) -> bool:
            return shown(stack, post) is not None

        seconds.append(_until(arrived, started))
    return seconds


def comment_latency(stack: LocalStack, comments: int, tag: str) -> list[float]:
    """Seconds from ``POST /posts/{id}/comments`` until the comment shows as approved."""
    post_id = create_post(stack, f"{tag} comments")
    _until(lambda: shown(stack, post_id) is not None, time.perf_counter())
    seconds = []
    for index in range(comments):
        content = f"{tag} comment {index}"
        started = time.perf_counter()
        status, _ = stack.api.post(f"/posts/{post_id}/comments", {"content": content})
        if status != 201:
            raise RuntimeError(f"POST /posts/{post_id}/comments answered {status}")

        def approved(text: str = content) -> bool:
            post = shown(stack, post_id) or {"comments": []}
            return any(
                c.get("content") == text and c["status"] == "approved" for c in post["comments"]
            )

        seconds.append(_until(approved, started))
    return seconds


def summary(samples: list[float]) -> dict[str, Any]:
    """Percentiles; a sample not visible within VISIBLE_TIMEOUT counts as infinitely late."""
    return {
        "n": len(samples),
        "not_visible_within_timeout": sum(1 for s in samples if s == float("inf")),
        "p50": stats.percentile(samples, 50),
        "p95": stats.percentile(samples, 95),
        "max": max(samples) if samples else None,
    }


# --- the floor ------------------------------------------------------------------------------


@contextmanager
def scratch(client: Callable[[str], Any]) -> Iterator[dict[str, Any]]:
    """A table with a stream, a topic and a raw-delivery queue, like the stack's, for the floor."""
    name = f"floor-{uuid.uuid4().hex[:8]}"
    dynamodb, sns, sqs = client("dynamodb"), client("sns"), client("sqs")
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    streams = client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=table["LatestStreamArn"], ShardId=shard, ShardIteratorType="LATEST"
    )["ShardIterator"]
    try:
        yield {"table": name, "topic": topic, "queue": queue, "iterator": iterator}
    finally:
        dynamodb.delete_table(TableName=name)
        sns.delete_topic(TopicArn=topic)
        sqs.delete_queue(QueueUrl=queue)


def floor(stack: LocalStack, rounds: int, between: Callable[[], None]) -> list[float]:
    """One post's AWS calls, back to back, ``rounds`` times: seconds per round.

    ``between`` runs after each round (one latency measurement): interleaved, the floor and
    the latency see the same machine load, which drifts on a shared machine.
    """
    with stack_status(stack):
        from functions import aws

        d, s, q, st = (aws.client(n) for n in ("dynamodb", "sns", "sqs", "dynamodbstreams"))
        with scratch(aws.client) as r:
            t, iterator = r["table"], r["iterator"]

            def item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
                return {"pk": {"S": pk}, "sk": {"S": sk}, **extra}

            seconds = []
            for index in range(rounds):
                key = f"post-{index}"
                started = time.perf_counter()
                d.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": t, "Item": item(key, "post")}},
                        {"Put": {"TableName": t, "Item": item(key, "outbox")}},
                    ]
                )
                page = st.get_records(ShardIterator=iterator, Limit=100)
                iterator = page["NextShardIterator"]
                d.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": t,
                                "Key": item(key, "outbox"),
                                "UpdateExpression": "SET claimed_at = :now",
                                "ConditionExpression": "attribute_not_exists(claimed_at)",
                                "ExpressionAttributeValues": {":now": {"N": "1"}},
                            }
                        }
                    ]
                )
                d.update_item(
                    TableName=t,
                    Key=item("counter", "head"),
                    UpdateExpression="ADD head :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW",
                )
                d.batch_write_item(
                    RequestItems={t: [{"PutRequest": {"Item": item("archive", key)}}]}
                )
                s.publish_batch(
                    TopicArn=r["topic"],
                    PublishBatchRequestEntries=[{"Id": "0", "Message": json.dumps({"id": key})}],
                )
                d.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": t,
                                "Key": item(key, "outbox"),
                                "UpdateExpression": "SET sent = :true",
                                "ExpressionAttributeValues": {":true": {"BOOL": True}},
                            }
                        }
                    ]
                )
                messages = q.receive_message(QueueUrl=r["queue"], MaxNumberOfMessages=10)[
                    "Messages"
                ]
                d.get_item(TableName=t, Key=item("meta", "active"))
                d.put_item(TableName=t, Item=item("v1/buckets", key[:3]))
                d.put_item(TableName=t, Item=item("v1", f"{key}#"))
                d.update_item(
                    TableName=t,
                    Key=item("v1#seen", "0"),
                    UpdateExpression="ADD seen :position",
                    ExpressionAttributeValues={":position": {"NS": [str(index + 1)]}},
                )
                q.delete_message_batch(
                    QueueUrl=r["queue"],
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
                d.get_item(TableName=t, Key=item("meta", "active"))
                d.query(
                    TableName=t,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :post)",
                    ExpressionAttributeValues={":pk": {"S": "v1"}, ":post": {"S": f"{key}#"}},
                )
                seconds.append(time.perf_counter() - started)
                between()
            return seconds


# --- load -----------------------------------------------------------------------------------


def load_run(stack: LocalStack, **plan: Any) -> dict[str, Any]:
    """``load.generator`` against the stack; its summary, with the load average around it."""
    from dataclasses import asdict

    from load import generator

    before = load_average()
    with stack_status(stack) as status:
        result = generator.run(
            generator.Plan(
                url=stack.url,
                aws_port=stack.aws_port,
                workers=8,
                sample_every=SAMPLE_EVERY,
                **plan,
            ),
            log=_Log(),
        )
        left = status()
    return {
        **asdict(result),
        "left_at_the_end": {
            "unsent_outbox": left.unsent_outbox,
            "queues": {c.consumer: c.queue_depth for c in left.consumers},
        },
        "load_average_before": before,
        "load_average_after": load_average(),
    }


class _Log:
    def write(self, text: str) -> None:
        log(text.rstrip())


def paired(stack: LocalStack, rounds: int, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(floor, POST → visible), ``rounds`` of each, alternating."""
    posts: list[float] = []
    floors = floor(stack, rounds, lambda: posts.extend(post_latency(stack, 1, tag)))
    return summary(floors), summary(posts)


def measure(sizes: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"sizes": sizes, "load_average": {}}
    with local_stack() as stack:
        log(f"local stack on {stack.url} (moto on port {stack.aws_port})")
        post_latency(stack, 3, "warm-up")
        load = result["load_average"]
        load["start"] = load_average()
        result["floor_fresh"], result["post_fresh"] = paired(stack, sizes["rounds"], "fresh")
        log(f"floor p50 {result['floor_fresh']['p50'] * 1000:.1f} ms")
        result["comment_fresh"] = summary(comment_latency(stack, sizes["comments"], "fresh"))
        log(
            f"fresh: post p50 {result['post_fresh']['p50'] * 1000:.1f} ms, comment round trip "
            f"p50 {result['comment_fresh']['p50'] * 1000:.1f} ms"
        )
        load["after_fresh_latency"] = load_average()
        log(f"burst: {sizes['burst_rate']}/s for {sizes['burst_seconds']:.0f} s")
        result["burst"] = load_run(
            stack,
            rate=sizes["burst_rate"],
            seconds=sizes["burst_seconds"],
            converge_timeout=CONVERGE_TIMEOUT,
        )
        log(f"burst: visible {result['burst']['converged_after_s']} s after the last write")
        log(f"drain: {sizes['drain_writes']} writes as fast as the API takes them")
        result["drain"] = load_run(
            stack,
            rate=200.0,
            seconds=600.0,
            max_writes=sizes["drain_writes"],
            converge_timeout=CONVERGE_TIMEOUT,
        )
        log(f"drain: visible {result['drain']['converged_after_s']} s after the last write")
        result["after_drain"] = summary(
            post_latency(stack, sizes["after_drain_posts"], "after the drain")
        )
        result["history_events"] = result["drain"]["archive"]["distinct_events"]
        if not result["drain"]["converged"]:
            log("the drain did not converge: latency after history not measured")
            return result
        result["floor_history"], result["post_history"] = paired(stack, sizes["rounds"], "history")
        result["comment_history"] = summary(comment_latency(stack, sizes["comments"], "history"))
        load["end"] = load_average()
        log(
            f"after {result['history_events']} events: post p50 "
            f"{result['post_history']['p50'] * 1000:.1f} ms, floor p50 "
            f"{result['floor_history']['p50'] * 1000:.1f} ms"
        )
    return result


# --- report ---------------------------------------------------------------------------------


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, threshold, met) for each target this run measures."""
    fresh_ratio = r["post_fresh"]["p50"] / r["floor_fresh"]["p50"]
    burst, drain = r["burst"], r["drain"]
    ms = 1000
    history_target = f"POST → visible p50 after {r['history_events']:,} events vs fresh"
    if "post_history" in r:
        history_ratio = r["post_history"]["p50"] / r["post_fresh"]["p50"]
        history = (
            history_target,
            f"{r['post_history']['p50'] * ms:.1f} ms / {r['post_fresh']['p50'] * ms:.1f} ms "
            f"= {history_ratio:.2f}x",
            "≤ 1.3x",
            history_ratio <= 1.3,
        )
    else:
        history = (
            history_target,
            "not measured: the drain's backlog had not cleared",
            "≤ 1.3x",
            False,
        )
    return [
        (
            "POST → visible p50 vs its floor (fresh)",
            f"{r['post_fresh']['p50'] * ms:.1f} ms / {r['floor_fresh']['p50'] * ms:.1f} ms "
            f"= {fresh_ratio:.2f}x",
            "≤ 2x",
            fresh_ratio <= 2,
        ),
        (
            "POST → visible p50, absolute (fresh)",
            f"{r['post_fresh']['p50'] * ms:.1f} ms",
            "< about 60 ms on an idle machine",
            r["post_fresh"]["p50"] < 0.060,
        ),
        (
            "comment moderation round trip p50 (fresh)",
            f"{r['comment_fresh']['p50'] * ms:.1f} ms",
            "< about 120 ms on an idle machine",
            r["comment_fresh"]["p50"] < 0.120,
        ),
        history,
        (
            f"burst {burst['rate_per_s']:g}/s for {burst['seconds']:g} s: visible after the "
            "last write",
            f"{burst['converged_after_s']} s ({burst['writes']} writes, lost {burst['lost']})",
            "≤ 30 s",
            burst["converged"] and burst["converged_after_s"] <= 30 and burst["lost"] == 0,
        ),
        (
            "burst: archive records ÷ distinct event ids",
            f"{burst['archive']['records']} ÷ {burst['archive']['distinct_events']} = "
            f"{burst['archive']['ratio']:.2f} (rearchived {burst['archive']['rearchived']})",
            "1.00",
            burst["archive"]["records"] == burst["archive"]["distinct_events"],
        ),
        (
            f"drain: {drain['writes']} writes at {drain['throughput_per_s']}/s, visible after "
            "the last write",
            f"{drain['converged_after_s']} s (lost {drain['lost']})",
            "≤ 60 s",
            drain["converged"] and drain["converged_after_s"] <= 60 and drain["lost"] == 0,
        ),
        (
            "after the drain: each new post visible",
            f"max {r['after_drain']['max'] * ms:.0f} ms over {r['after_drain']['n']} posts",
            "≤ 1 s",
            r["after_drain"]["max"] <= 1.0,
        ),
        (
            "drain: archive records ÷ distinct event ids",
            f"{drain['archive']['records']} ÷ {drain['archive']['distinct_events']} = "
            f"{drain['archive']['ratio']:.2f}",
            "1.00",
            drain["archive"]["records"] == drain["archive"]["distinct_events"],
        ),
    ]


def markdown(r: dict[str, Any]) -> str:
    ms = 1000
    rows = [[t, m, th, "yes" if ok else "**no**"] for t, m, th, ok in verdicts(r)]
    latency_rows = [
        [
            label,
            f"{r[key]['p50'] * ms:.1f}",
            f"{r[key]['p95'] * ms:.1f}",
            f"{r[key]['max'] * ms:.1f}",
            r[key]["n"],
        ]
        for label, key in (
            ("floor: one post's AWS calls back to back (fresh)", "floor_fresh"),
            ("POST → visible (fresh)", "post_fresh"),
            ("comment → approved (fresh)", "comment_fresh"),
            ("POST → visible, right after the drain", "after_drain"),
            (f"floor (after {r['history_events']:,} events)", "floor_history"),
            (f"POST → visible (after {r['history_events']:,} events)", "post_history"),
            (f"comment → approved (after {r['history_events']:,} events)", "comment_history"),
        )
        if key in r
    ]
    load = r["load_average"]
    load_text = ", ".join(f"{phase} {values}" for phase, values in load.items())
    for phase in ("burst", "drain"):
        load_text += (
            f", {phase} {r[phase]['load_average_before']} → {r[phase]['load_average_after']}"
        )
    burst, drain = r["burst"], r["drain"]
    note = f" {r['note']}" if r.get("note") else ""
    return "\n".join(
        [
            "## 6. Hold under load",
            "",
            machine.machine_line(r["machine"]),
            "",
            f"The load averages include whatever else the machine ran meanwhile (1, 5, 15 min): "
            f"{load_text}.{note}",
            "",
            "One run of `python -m benchmarks.hold_under_load` against `python -m emulator dev` "
            "(the concurrent runner, moto's server); every ratio is within this run. See the "
            "module's docstring for what each phase does.",
            "",
            report.table(["target", "measured", "threshold", "met"], rows),
            "",
            report.table(["latency", "p50 ms", "p95 ms", "max ms", "n"], latency_rows),
            "",
            f"- Burst: {burst['writes']} writes ({burst['posts']} posts, {burst['comments']} "
            f"comments) at {burst['throughput_per_s']}/s; largest query backlog "
            f"{burst['largest_backlog']}; errors {burst['errors'] or 'none'}; left on the way "
            f"at the end: {burst['left_at_the_end']}.",
            f"- Drain: {drain['writes']} writes at {drain['throughput_per_s']}/s; largest query "
            f"backlog {drain['largest_backlog']}; errors {drain['errors'] or 'none'}; left on the "
            f"way at the end: {drain['left_at_the_end']}.",
            "- `lost` is what the view did not show when the wait for convergence "
            f"({CONVERGE_TIMEOUT:g} s) ended: still on the way (see what was left), not lost.",
        ]
    )


def run(output: Path, sizes: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine.machine()}
    result.update(measure(sizes))
    result["markdown"] = markdown(result)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments("The local stack's targets under load, in one run.")
    print(run(arguments.output, QUICK if arguments.quick else FULL)["markdown"])


if __name__ == "__main__":
    main()
