"""Requests per user action: every AWS call one post, and one comment through its lifecycle,
costs, against the minimum the design needs. What they cost in dollars: ``benchmarks.cost``.

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
    return {
        "flow": flow,
        "batch": n,
        "per_action": _per_action(calls, n),
        "minimum": minimum,
        "empty_polls": _empty_polls(calls),
        "invocations": invoked,
        "minimum_invocations": minimum_invocations,
        "catch_up_calls": catch_up.by_operation(),
    }


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
    lines += [
        "What these calls cost in dollars, with the items' real sizes, at the design load: "
        "[COST.md](COST.md) (`python -m benchmarks.cost`).",
    ]
    return "\n".join(lines)


def run(output: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine.machine()}
    result.update(measure())
    result["markdown"] = markdown(result)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments("AWS requests per user action.")
    print(run(arguments.output)["markdown"])  # one size: --quick changes nothing


if __name__ == "__main__":
    main()
