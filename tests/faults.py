"""Fault injection at the AWS client: a botocore hook that makes chosen calls fail.

The call fails before it leaves the client, as it would with the service unreachable; every
other call, and every other hop, is real.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from functions import aws


@contextmanager
def failing(
    service: str,
    operation: str,
    error: BaseException,
    times: int | None = None,
    when: Callable[[dict[str, Any]], bool] = lambda params: True,
) -> Iterator[list[dict[str, Any]]]:
    """Make ``service.operation`` raise ``error`` (``times`` times, or always) while open.

    Yields the list of the failed calls' parameters.
    """
    failed: list[dict[str, Any]] = []
    event = f"provide-client-params.{service}.{operation}"  # the call's own parameters

    def fail(params: dict[str, Any], **_: Any) -> None:
        if when(params) and (times is None or len(failed) < times):
            failed.append(params)
            raise error

    client = aws.client(service)
    client.meta.events.register(event, fail)
    try:
        yield failed
    finally:
        client.meta.events.unregister(event, fail)


def transaction_conflict(operations: int) -> ClientError:
    """A transaction of ``operations`` items cancelled by a conflicting transaction."""
    reasons = [{"Code": "TransactionConflict"}] * operations
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
        "TransactWriteItems",
    )


Entry = dict[str, Any]


@contextmanager
def failing_entries(
    when: Callable[[Entry], bool], times: int | None = None
) -> Iterator[list[Entry]]:
    """Make SNS report chosen ``PublishBatch`` entries under ``Failed``, undelivered, as it
    does for an entry it throttled or refused; the rest of the batch is published for real.

    ``when`` picks entries (``times`` of them, or all it matches). Yields the failed entries.
    A call whose every entry fails does not reach SNS at all.
    """
    failed: list[Entry] = []
    in_flight: list[Entry] = []  # the entries taken out of the call being made
    nothing_kept: list[bool] = []  # whether that call kept no entry
    client = aws.client("sns")

    def take_out(params: dict[str, Any], **_: Any) -> None:
        kept: list[Entry] = []
        for entry in params["PublishBatchRequestEntries"]:
            if when(entry) and (times is None or len(failed) < times):
                failed.append(entry)
                in_flight.append(entry)
            else:
                kept.append(entry)
        nothing_kept[:] = [not kept]
        if kept:  # SNS refuses an empty batch: with nothing kept, `answer_alone` answers
            params["PublishBatchRequestEntries"] = kept

    def answer_alone(**_: Any) -> Any:
        if not nothing_kept or not nothing_kept[0]:
            return None
        return AWSResponse("https://sns.invalid", 200, {}, None), {"Successful": []}

    def report_failed(parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", []).extend(
            {"Id": e["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": False}
            for e in in_flight
        )
        in_flight.clear()

    hooks = [
        ("provide-client-params.sns.PublishBatch", take_out),
        ("before-call.sns.PublishBatch", answer_alone),
        ("after-call.sns.PublishBatch", report_failed),
    ]
    for event, hook in hooks:
        client.meta.events.register(event, hook)
    try:
        yield failed
    finally:
        for event, hook in hooks:
            client.meta.events.unregister(event, hook)


def crash_marking_sent(table: str, error: Exception) -> Any:
    """Make the publisher's first ``sent`` flip on ``table`` raise ``error``: it dies between
    archiving (and publishing) and marking sent. Yields the failed calls' parameters."""

    def marks_sent(params: dict[str, Any]) -> bool:
        updates = [op.get("Update", {}) for op in params["TransactItems"]]
        return any(
            u.get("TableName") == table and u["UpdateExpression"].startswith("SET sent")
            for u in updates
        )

    return failing("dynamodb", "TransactWriteItems", error, times=1, when=marks_sent)
