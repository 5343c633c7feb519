"""Requests per user action: every AWS call one post, and one comment through its lifecycle,
costs, against the minimum the design needs, and what a million posts cost at list prices.

Calls are counted with botocore's ``before-call``/``after-call`` event hooks on the clients
every piece of code uses (``functions.aws``), on the in-process stack, and attributed by the
call stack: ``function:<name>`` is a Lambda function's own code (``api_handler`` serves every
route), ``poller:<name>`` is the Lambda event source mapping polling for it (here the runner:
``GetRecords``, ``ReceiveMessage``, ``DeleteMessageBatch``). Polls that found nothing are
counted apart: on AWS they happen whatever the load.

Each action runs at batch size 1 (one action, then the pipeline drains) and 10 (ten actions,
then one drain, so each event source delivers batches of ten); counts are per action.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import aws_calls, in_process, machine, report
from benchmarks.report import log

NAME = "requests_per_action"
BATCHES = (1, 10)
MILLION = 1_000_000


@dataclass(frozen=True)
class Step:
    """One call of the design's minimum, for ``n`` actions in one batch."""

    what: str
    actor: str
    call: str
    per_batch: str
    """``"n"`` (once per action), ``"1"`` (once per batch) or ``"n/10"``, ``"n/25"`` (per
    batch of at most 10 or 25)."""

    def count(self, n: int) -> float:
        calls = {"n": n, "1": 1, "n/10": math.ceil(n / 10), "n/25": math.ceil(n / 25)}
        return calls[self.per_batch] / n


API = "function:api_handler"
PUBLISHER = "function:outbox_publisher"
PUBLISHER_POLL = "poller:outbox_publisher"


def _publish(event: str) -> list[Step]:
    return [
        Step(f"{event}: read the outbox stream", PUBLISHER_POLL, "dynamodbstreams.GetRecords", "1"),
        Step(
            f"{event}: claim the outbox records (one transaction)",
            PUBLISHER,
            "dynamodb.TransactWriteItems",
            "1",
        ),
        Step(f"{event}: allocate archive positions", PUBLISHER, "dynamodb.UpdateItem", "1"),
        Step(f"{event}: record in the archive", PUBLISHER, "dynamodb.BatchWriteItem", "n/25"),
        Step(f"{event}: publish", PUBLISHER, "sns.PublishBatch", "n/10"),
        Step(
            f"{event}: mark the outbox records sent (one transaction)",
            PUBLISHER,
            "dynamodb.TransactWriteItems",
            "1",
        ),
    ]


def _consume(event: str, consumer: str, work: list[tuple[str, str, str]]) -> list[Step]:
    return [
        Step(f"{event}: receive", f"poller:{consumer}", "sqs.ReceiveMessage", "n/10"),
        *(Step(f"{event}: {what}", f"function:{consumer}", call, per) for what, call, per in work),
        Step(f"{event}: delete the batch", f"poller:{consumer}", "sqs.DeleteMessageBatch", "n/10"),
    ]


_SEEN = ("mark the batch's positions seen (one ADD)", "dynamodb.UpdateItem", "n/10")
_PROJECT = [
    ("read the view pointer (which versions to write)", "dynamodb.GetItem", "n/10"),
    ("write the view row, if newer", "dynamodb.PutItem", "n"),
    _SEEN,
]
_LIST = ("put the batch's bucket in the listing directory", "dynamodb.PutItem", "n/10")

MINIMUM: dict[str, list[Step]] = {
    "post": [
        Step("store the post and its outbox record", API, "dynamodb.TransactWriteItems", "n"),
        *_publish("PostCreated"),
        *_consume("PostCreated", "query_consumer", [_PROJECT[0], _LIST, *_PROJECT[1:]]),
    ],
    "comment": [
        Step(
            "check the post, store the comment and its outbox record",
            API,
            "dynamodb.TransactWriteItems",
            "n",
        ),
        Step("answer with the post's comments", API, "dynamodb.Query", "n"),
        *_publish("CommentCreated"),
        *_consume(
            "CommentCreated",
            "moderation_consumer",
            [
                ("store the decision and its outbox record", "dynamodb.TransactWriteItems", "n"),
                _SEEN,
            ],
        ),
        *_consume("CommentCreated", "query_consumer", _PROJECT),
        *_publish("CommentModerated"),
        *_consume(
            "CommentModerated",
            "comments_consumer",
            [
                ("read the comment", "dynamodb.GetItem", "n"),
                ("update it and store its outbox record", "dynamodb.TransactWriteItems", "n"),
                _SEEN,
            ],
        ),
        *_publish("CommentUpdated"),
        *_consume("CommentUpdated", "query_consumer", _PROJECT),
    ],
}
MINIMUM_INVOCATIONS = {
    # api_handler once per action; each function once per batch it is sent
    "post": {"api_handler": "n", "outbox_publisher": "1", "query_consumer": "n/10"},
    "comment": {
        "api_handler": "n",
        "outbox_publisher": "3",
        "moderation_consumer": "n/10",
        "comments_consumer": "n/10",
        "query_consumer": "2n/10",
    },
}


def _invocations_minimum(flow: str, n: int) -> dict[str, float]:
    counts = {"n": n, "1": 1, "3": 3, "n/10": math.ceil(n / 10), "2n/10": 2 * math.ceil(n / 10)}
    return {name: counts[per] / n for name, per in MINIMUM_INVOCATIONS[flow].items()}


# --- list prices ----------------------------------------------------------------------------

PRICES_AS_OF = "2025-01"
PRICES_CHECKED = "2026-11-23"
CROSS_CHECKS = (
    "DynamoDB's on-demand $0.625 and $0.125 per million units in airbyte.com's DynamoDB "
    "pricing guide (2025-07); SQS's $0.40 and SNS's $0.50 per million requests in "
    "factualminds.com's SQS and SNS pricing posts (2026-06), SQS's also in cloudburn.io's "
    "(2026-03)"
)
PRICES = {
    "api_gateway_rest_request": 3.50 / MILLION,
    "lambda_request": 0.20 / MILLION,
    "lambda_gb_second": 0.0000166667,
    "dynamodb_write_request_unit": 0.625 / MILLION,
    "dynamodb_read_request_unit": 0.125 / MILLION,
    "sns_request": 0.50 / MILLION,
    "sqs_request": 0.40 / MILLION,
}
PRICE_SOURCES = {
    "API Gateway REST API, per request (first 333 million a month)": (
        "$3.50 per million",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "Lambda, per request": ("$0.20 per million", "https://aws.amazon.com/lambda/pricing/"),
    "Lambda, duration (x86)": (
        "$0.0000166667 per GB-second",
        "https://aws.amazon.com/lambda/pricing/",
    ),
    "DynamoDB on-demand, write request unit": (
        "$0.625 per million (after the November 2024 cut)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "DynamoDB on-demand, read request unit": (
        "$0.125 per million",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "DynamoDB Streams read by a Lambda trigger": (
        "free",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "SNS standard topic, per request (64 KB chunk; a PublishBatch of small messages is one)": (
        "$0.50 per million",
        "https://aws.amazon.com/sns/pricing/",
    ),
    "SNS delivery to SQS": ("free", "https://aws.amazon.com/sns/pricing/"),
    "SQS standard queue, per request (64 KB chunk; a batch is one)": (
        "$0.40 per million",
        "https://aws.amazon.com/sqs/pricing/",
    ),
}
LAMBDA_GB_SECONDS_ASSUMED = 0.128 * 0.1
"""Not measured: 128 MB (Chalice's default) for 100 ms per invocation."""


def request_units(call: aws_calls.Call) -> tuple[float, float]:
    """(write, read) request units of a DynamoDB call, for items under 1 KB (4 KB for reads).

    Transactions cost two units per item (ConditionCheck counted like a write: an assumption);
    a failed conditional write still costs its unit; a strongly consistent read one unit, an
    eventually consistent one half.
    """
    if call.service != "dynamodb":
        return 0.0, 0.0
    params = call.params
    read = 1.0 if params.get("ConsistentRead") else 0.5
    match call.operation:
        case "TransactWriteItems":
            return 2.0 * len(params["TransactItems"]), 0.0
        case "BatchWriteItem":
            return float(sum(len(r) for r in params["RequestItems"].values())), 0.0
        case "PutItem" | "UpdateItem" | "DeleteItem":
            return 1.0, 0.0
        case "GetItem" | "Query":
            return 0.0, read
    return 0.0, 0.0


def cost(calls: list[aws_calls.Call], invocations: float, actions: int) -> dict[str, float]:
    """Dollars per action, by service, from the calls of ``actions`` actions (polls that found
    nothing left out), ``invocations`` Lambda invocations per action and one API request."""
    wru = rru = 0.0
    sns = sqs = 0.0
    for call in calls:
        if call.empty:
            continue
        write, read = request_units(call)
        wru, rru = wru + write, rru + read
        if call.service == "sns" and call.operation in ("Publish", "PublishBatch"):
            sns += 1
        if call.service == "sqs":
            sqs += 1
            if call.operation == "ReceiveMessage":
                sqs += call.items  # each message SNS delivered was one SQS request
    return {
        "api_gateway": PRICES["api_gateway_rest_request"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "lambda_duration_assumed": invocations
        * LAMBDA_GB_SECONDS_ASSUMED
        * PRICES["lambda_gb_second"],
        "dynamodb_writes": wru * PRICES["dynamodb_write_request_unit"] / actions,
        "dynamodb_reads": rru * PRICES["dynamodb_read_request_unit"] / actions,
        "sns": sns * PRICES["sns_request"] / actions,
        "sqs": sqs * PRICES["sqs_request"] / actions,
    }


# --- measuring ------------------------------------------------------------------------------


def _invocations(stack: in_process.InProcess) -> dict[str, int]:
    return {name: source.stats.invocations for name, source in stack.runner.sources.items()}


def _settle(stack: in_process.InProcess) -> None:
    stack.runner.drain()
    stack.runner.fire("query_catch_up")


def _count(
    stack: in_process.InProcess, act: Any, actions: int
) -> tuple[aws_calls.CallCounter, dict[str, float]]:
    """Run ``act`` then drain the pipeline, counting calls and Lambda invocations."""
    before = _invocations(stack)
    with aws_calls.CallCounter() as calls:
        act()
        stack.runner.drain()
    after = _invocations(stack)
    invoked = {name: (after[name] - before[name]) / actions for name in after}
    invoked = {name: count for name, count in invoked.items() if count}
    invoked["api_handler"] = 1.0  # one HTTP request per action
    return calls, invoked


def _per_action(calls: aws_calls.CallCounter, actions: int) -> dict[str, float]:
    counts = Counter(f"{c.actor} {c.service}.{c.operation}" for c in calls.calls if not c.empty)
    return {key: n / actions for key, n in sorted(counts.items())}


def _empty_polls(calls: aws_calls.CallCounter) -> int:
    return sum(1 for c in calls.calls if c.empty)


def measure_post(stack: in_process.InProcess, n: int) -> dict[str, Any]:
    _settle(stack)

    def act() -> None:
        for index in range(n):
            status, _ = stack.api.post("/posts", {"title": f"batch {n} post {index}"})
            assert status == 201

    calls, invoked = _count(stack, act, n)
    return _flow_result(stack, "post", n, calls, invoked)


def measure_comment(stack: in_process.InProcess, n: int) -> dict[str, Any]:
    posts = [stack.api.post("/posts", {"title": f"for comment {i}"})[1]["id"] for i in range(n)]
    _settle(stack)

    def act() -> None:
        for post_id in posts:
            status, _ = stack.api.post(f"/posts/{post_id}/comments", {"content": "Nice post"})
            assert status == 201

    calls, invoked = _count(stack, act, n)
    result = _flow_result(stack, "comment", n, calls, invoked)
    with aws_calls.CallCounter() as reads:
        for post_id in posts:
            status, post = stack.api.get(f"/posts/{post_id}")
            assert status == 200, post
            assert post["comments"][0]["status"] == "approved", post
    result["read_one_post"] = _per_action(reads, n)
    return result


def _flow_result(
    stack: in_process.InProcess,
    flow: str,
    n: int,
    calls: aws_calls.CallCounter,
    invoked: dict[str, float],
) -> dict[str, Any]:
    with aws_calls.CallCounter() as catch_up:
        stack.runner.fire("query_catch_up")
    minimum: dict[str, float] = {}
    for step in MINIMUM[flow]:
        key = f"{step.actor} {step.call}"
        minimum[key] = minimum.get(key, 0.0) + step.count(n)
    minimum_invocations = _invocations_minimum(flow, n)
    measured_cost = cost(calls.calls, sum(invoked.values()), n)
    minimal_calls = [
        aws_calls.Call(
            actor=actor,
            service=call.split(".", 1)[0],
            operation=call.split(".", 1)[1],
            params=_minimal_params(actor, call, n),
            items=min(n, 10) if call == "sqs.ReceiveMessage" else 0,
        )
        for key, per in minimum.items()
        for actor, call in [key.split(" ", 1)]
        for _ in range(round(per * n))
    ]
    minimum_cost = cost(minimal_calls, sum(minimum_invocations.values()), n)
    return {
        "flow": flow,
        "batch": n,
        "per_action": _per_action(calls, n),
        "minimum": minimum,
        "empty_polls": _empty_polls(calls),
        "invocations": invoked,
        "minimum_invocations": minimum_invocations,
        "catch_up_calls": catch_up.by_operation(),
        "cost": measured_cost,
        "minimum_cost": minimum_cost,
    }


def _minimal_params(actor: str, call: str, n: int) -> dict[str, Any]:
    """Enough parameters for ``request_units`` on the design's minimum for a batch of ``n``."""
    if call == "dynamodb.TransactWriteItems" and actor == PUBLISHER:
        return {"TransactItems": [{}] * n}  # the publisher's claim: one item per record
    if call == "dynamodb.TransactWriteItems":
        return {"TransactItems": [{}, {}]}  # two items (the comment's also checks the post)
    if call == "dynamodb.BatchWriteItem":
        return {"RequestItems": {"t": [{}] * min(n, 25)}}  # the batch's events, 25 a call
    if call in ("dynamodb.GetItem", "dynamodb.Query"):
        return {"ConsistentRead": True}
    return {}


def measure() -> dict[str, Any]:
    flows: list[dict[str, Any]] = []
    with in_process.in_process_stack() as stack:
        measure_post(stack, 1)  # warm-up
        for n in BATCHES:
            log(f"post, batch {n}")
            flows.append(measure_post(stack, n))
            log(f"comment, batch {n}")
            flows.append(measure_comment(stack, n))
    return {"flows": flows}


def _flow(result: dict[str, Any], flow: str, n: int) -> dict[str, Any]:
    return next(f for f in result["flows"] if f["flow"] == flow and f["batch"] == n)


def per_million_posts(result: dict[str, Any], n: int, which: str) -> dict[str, float]:
    """Dollars for a million posts, each with two comments, at batch size ``n``."""
    post, comment = _flow(result, "post", n)[which], _flow(result, "comment", n)[which]
    return {k: MILLION * (post[k] + 2 * comment[k]) for k in post}


def _n(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "## 3. Requests per user action",
        "",
        machine.machine_line(result["machine"]),
        "",
        "Every AWS call, counted with botocore event hooks on the in-process stack, per action, "
        "at batch size 1 (one action, then the pipeline drains) and 10 (ten actions, one "
        "drain). `function:` is a Lambda function's own code, `poller:` its event source "
        "mapping (Lambda's poller; `GetRecords` on a stream trigger is free, SQS requests are "
        "billed). Polls that found nothing are left out (on AWS they run whatever the load).",
    ]
    for flow, title in (
        ("post", "One post (`POST /posts` until it is in the view)"),
        ("comment", "One comment: created, moderated, updated, visible in the view"),
    ):
        one, ten = _flow(result, flow, 1), _flow(result, flow, 10)
        keys = sorted(
            set(one["per_action"]) | set(one["minimum"]) | set(ten["per_action"]),
            key=lambda k: (k.split(" ")[0].split(":")[1], k),
        )
        rows = []
        for key in keys:
            actor, call = key.split(" ", 1)
            rows.append(
                [
                    f"`{actor}`",
                    call,
                    _n(one["per_action"].get(key, 0)),
                    _n(one["minimum"].get(key, 0)),
                    _n(ten["per_action"].get(key, 0)),
                    _n(ten["minimum"].get(key, 0)),
                ]
            )
        rows.append(
            [
                "**all**",
                "AWS calls",
                f"**{_n(sum(one['per_action'].values()))}**",
                f"**{_n(sum(one['minimum'].values()))}**",
                f"**{_n(sum(ten['per_action'].values()))}**",
                f"**{_n(sum(ten['minimum'].values()))}**",
            ]
        )
        rows.append(
            [
                "**all**",
                "Lambda invocations",
                _n(sum(one["invocations"].values())),
                _n(sum(one["minimum_invocations"].values())),
                _n(sum(ten["invocations"].values())),
                _n(sum(ten["minimum_invocations"].values())),
            ]
        )
        lines += [
            "",
            f"### {title}",
            "",
            report.table(
                [
                    "who",
                    "call",
                    "measured, batch 1",
                    "minimum, batch 1",
                    "measured, batch 10",
                    "minimum, batch 10",
                ],
                rows,
            ),
            "",
            "Invocations measured per action, batch 1: "
            + ", ".join(f"{k} {_n(v)}" for k, v in sorted(one["invocations"].items()))
            + "; batch 10: "
            + ", ".join(f"{k} {_n(v)}" for k, v in sorted(ten["invocations"].items()))
            + ".",
        ]
        if flow == "comment":
            read = ten["read_one_post"]
            lines += [
                "",
                "Reading it back (`GET /posts/{id}`, not counted above): "
                + ", ".join(f"{k} {_n(v)}" for k, v in read.items())
                + ".",
            ]
    lines += ["", "### The design's minimum, call by call", ""]
    for flow in ("post", "comment"):
        lines.append(
            report.table(
                ["step", "who", "call", "calls per batch of n"],
                [[s.what, f"`{s.actor}`", s.call, s.per_batch] for s in MINIMUM[flow]],
            )
        )
        lines.append("")
    lines += _cost_section(result)
    return "\n".join(lines)


def _cost_section(result: dict[str, Any]) -> list[str]:
    headers = ["per million posts, each with two comments", "batch 1", "batch 10"]
    parts = [
        ("API Gateway", "api_gateway"),
        ("Lambda requests", "lambda_requests"),
        ("Lambda duration (assumed 128 MB x 100 ms)", "lambda_duration_assumed"),
        ("DynamoDB writes", "dynamodb_writes"),
        ("DynamoDB reads", "dynamodb_reads"),
        ("SNS", "sns"),
        ("SQS", "sqs"),
    ]
    rows = []
    totals = {}
    for which, label in (("cost", "measured"), ("minimum_cost", "minimum")):
        one = per_million_posts(result, 1, which)
        ten = per_million_posts(result, 10, which)
        totals[label] = (sum(one.values()), sum(ten.values()))
        if which == "cost":
            rows += [[name, f"${one[key]:,.2f}", f"${ten[key]:,.2f}"] for name, key in parts]
    measured, minimum = totals["measured"], totals["minimum"]
    rows.append(["**total, measured**", f"**${measured[0]:,.2f}**", f"**${measured[1]:,.2f}**"])
    rows.append(["total, the design's minimum", f"${minimum[0]:,.2f}", f"${minimum[1]:,.2f}"])
    prices = [[name, price, url] for name, (price, url) in PRICE_SOURCES.items()]
    return [
        "### Cost per million posts (each with two comments)",
        "",
        report.table(headers, rows),
        "",
        f"**Prices**: AWS list prices for us-east-1 as of {PRICES_AS_OF}, not read from AWS's "
        "pricing pages (out of the benchmark's reach): cited from memory, then cross-checked "
        f"({PRICES_CHECKED}) against third-party pages found in stored copies: {CROSS_CHECKS}. "
        "API Gateway's and Lambda's were not cross-checked. Check the current pricing pages "
        "before relying on them. Free tiers, storage, data transfer, "
        "CloudWatch Logs and the once-a-minute schedules (catch-up, sweeper: about 43,000 "
        "invocations a month each, whatever the load) are left out. Lambda duration is not "
        "measured here: 128 MB for 100 ms per invocation is an assumption. DynamoDB units "
        "assume items under 1 KB: a transaction costs 2 write units per item (its "
        "ConditionCheck counted as one), a strongly consistent read 1 unit. SQS counts each "
        "message SNS delivers as one request, plus every receive and delete. The scheduled "
        "catch-up folds the live path's seen marks into its watermark with one write per "
        "10,000-position bucket a run, whatever the load: left out with the schedules.",
        "",
        report.table(["price", "list price", "page"], prices),
    ]


def run(output: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine.machine(), "prices_as_of": PRICES_AS_OF}
    result.update(measure())
    result["per_million_posts"] = {
        str(n): {
            "measured": sum(per_million_posts(result, n, "cost").values()),
            "minimum": sum(per_million_posts(result, n, "minimum_cost").values()),
        }
        for n in BATCHES
    }
    result["markdown"] = markdown(result)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments("AWS requests per user action, and their cost.")
    print(run(arguments.output)["markdown"])  # one size: --quick changes nothing


if __name__ == "__main__":
    main()
