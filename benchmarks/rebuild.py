"""Full rebuild: the query view rebuilt from an archive of N events, against the floor.

The archive holds N events (default 20,000): complete buckets in S3 segments, the last
``TAIL`` events only in the DynamoDB table, as between two runs of the archiver. The view is
current (built once, untimed). Each repeat then times, one after the other:

- **the floor**: the calls any rebuild must make, with nothing else: read the archive head,
  every S3 segment (``GetObject`` and the body), every table bucket not in S3 (``Query``,
  paginated), and write every view row the rebuild writes with ``BatchWriteItem``, 25 a call
  (the rows are made beforehand, untimed, and deleted afterwards, untimed);
- **the rebuild**: ``recovery.rebuild`` (what ``blog rebuild query`` runs): read and parse the
  history, fold it, write the new version, catch it up, switch reads, drop the old version.

It reports events per second and the ratio rebuild / floor, with the rebuild's phases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import log

NAME = "rebuild"
FULL = {"events": 20_000, "tail": 2_000}
QUICK = {"events": 2_000, "tail": 500}
REPEATS = 3
FLOOR_VERSION = "floor"


def seed(stack: common.InProcess, events: int, tail: int) -> None:
    """``events`` archived events; all but the last ``tail`` or so in S3 segments."""
    from functions.query import recovery

    common.seed_archive(stack.settings, events - tail)  # complete buckets go to S3
    common.seed_archive(stack.settings, tail, segment=False)
    recovery.rebuild(stack.settings)  # the current view, which the measured rebuilds replace


def floor_items(settings: Any) -> list[dict[str, Any]]:
    """The view rows a rebuild writes, as ``BatchWriteItem`` put requests (made untimed)."""
    from functions import archive
    from functions.dynamo import to_item
    from functions.events import parse_event
    from functions.query import projection, store

    head = archive.head(settings).position
    view = projection.fold(parse_event(e.payload) for e in archive.history(settings, head))
    return [
        {
            "PutRequest": {
                "Item": to_item(
                    {store.PARTITION: FLOOR_VERSION, store.SORT: row.key, **row.model_dump()}
                )
            }
        }
        for row in view.values()
    ]


def floor(settings: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The minimal calls of a rebuild, timed by part; the events read and rows written."""
    from functions import archive, aws, names

    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    table = settings.table(names.ARCHIVE_TABLE)
    view_table = settings.table(names.VIEW_TABLE)
    events = 0
    with common.stopwatch() as total:
        head = archive.head(settings)
        last_bucket = archive.bucket_of(settings, head.position)
        with common.stopwatch() as read_s3:
            for bucket in range(head.segmented_through):
                body = s3.get_object(
                    Bucket=settings.archive_bucket,
                    Key=archive._segment_key(bucket),  # the archive's own object key
                )["Body"].read()
                events += body.count(b"\n")
        with common.stopwatch() as read_table:
            pages = dynamodb.get_paginator("query")
            for bucket in range(head.segmented_through, last_bucket + 1):
                for page in pages.paginate(
                    TableName=table,
                    KeyConditionExpression="#b = :b",
                    ExpressionAttributeNames={"#b": archive.BUCKET},
                    ExpressionAttributeValues={":b": {"N": str(bucket)}},
                    ConsistentRead=True,
                ):
                    events += page["Count"]
        with common.stopwatch() as write:
            for start in range(0, len(items), 25):
                pending: dict[str, Any] = {view_table: items[start : start + 25]}
                while pending:
                    pending = dynamodb.batch_write_item(RequestItems=pending).get(
                        "UnprocessedItems"
                    )
    return {
        "seconds": total(),
        "read_s3_seconds": read_s3(),
        "read_table_seconds": read_table(),
        "write_seconds": write(),
        "events": events,
        "rows": len(items),
    }


def _rebuild(settings: Any) -> dict[str, Any]:
    from functions.query import recovery, store

    phases = {
        "write new version": (store, "put_rows"),
        "catch up": (recovery, "catch_up"),
        "drop old version": (store, "drop_version"),
    }
    with common.PhaseTimer(phases) as timer, common.stopwatch() as total:
        report = recovery.rebuild(settings)
    seconds = total()
    breakdown = {"read + parse + fold": seconds - sum(timer.seconds.values()), **timer.seconds}
    return {
        "seconds": seconds,
        "events": report.events,
        "rows": report.rows,
        "phases": breakdown,
    }


def measure(events: int, tail: int, repeats: int, segment_size: int = 1000) -> dict[str, Any]:
    from functions.query import store

    with common.in_process_stack({"ARCHIVE_SEGMENT_SIZE": str(segment_size)}) as stack:
        log(f"seeding {events} events")
        seed(stack, events, tail)
        settings = stack.settings
        items = floor_items(settings)
        common.settle_memory()
        runs = []
        for repeat in range(repeats + 1):  # the first is a warm-up
            with common.CallCounter() as floor_calls, common.MotoQueryTimer() as floor_moto:
                minimal = floor(settings, items)
            store.drop_version(settings, FLOOR_VERSION)
            with common.CallCounter() as rebuild_calls, common.MotoQueryTimer() as rebuild_moto:
                rebuilt = _rebuild(settings)
            assert rebuilt["events"] == minimal["events"], (rebuilt, minimal)
            assert rebuilt["rows"] == minimal["rows"], (rebuilt, minimal)
            if repeat == 0:
                continue
            run = {
                "floor": {
                    **minimal,
                    "calls": floor_calls.by_operation(),
                    "moto_query_seconds": floor_moto.seconds,
                },
                "rebuild": {
                    **rebuilt,
                    "calls": rebuild_calls.by_operation(),
                    "moto_query_seconds": rebuild_moto.seconds,
                },
                "ratio": rebuilt["seconds"] / minimal["seconds"],
            }
            log(
                f"#{repeat}: rebuild {rebuilt['seconds']:.2f}s, floor {minimal['seconds']:.2f}s,"
                f" ratio {run['ratio']:.2f}"
            )
            runs.append(run)
    middle = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    rebuild_seconds = common.median([r["rebuild"]["seconds"] for r in runs])
    floor_seconds = common.median([r["floor"]["seconds"] for r in runs])
    return {
        "events": runs[0]["rebuild"]["events"],
        "tail": tail,
        "rows": runs[0]["rebuild"]["rows"],
        "repeats": repeats,
        "rebuild_seconds": rebuild_seconds,
        "floor_seconds": floor_seconds,
        "rebuild_events_per_second": runs[0]["rebuild"]["events"] / rebuild_seconds,
        "floor_events_per_second": runs[0]["rebuild"]["events"] / floor_seconds,
        "ratio_median": common.median([r["ratio"] for r in runs]),
        "ratios": [r["ratio"] for r in runs],
        "median_run": middle,
        "runs": runs,
    }


def markdown(result: dict[str, Any]) -> str:
    run = result["median_run"]
    phases = run["rebuild"]["phases"]
    floor_run = run["floor"]
    operations = sorted(set(run["floor"]["calls"]) | set(run["rebuild"]["calls"]))
    calls = [
        [op, run["floor"]["calls"].get(op, 0), run["rebuild"]["calls"].get(op, 0)]
        for op in operations
    ]
    return "\n".join(
        [
            "## 2. Full rebuild",
            "",
            common.machine_line(result["machine"]),
            "",
            f"`recovery.rebuild` of the query view from {result['events']:,} archived events "
            f"(the last {result['tail']:,} or so only in the DynamoDB table, the rest in S3 "
            f"segments of {result['segment_size']:,}), writing {result['rows']:,} view rows; "
            "against the floor: "
            "the same reads and writes as bare boto3 calls (head `GetItem`, one `GetObject` per "
            "segment, a paginated `Query` per table bucket, `BatchWriteItem` of every row). "
            f"Median of {result['repeats']} alternating repeats after a warm-up, in-process moto.",
            "",
            common.table(
                ["", "seconds (median)", "events per second", "rebuild / floor (median ratio)"],
                [
                    [
                        "rebuild",
                        common.fmt(result["rebuild_seconds"], 2),
                        f"{result['rebuild_events_per_second']:,.0f}",
                        f"**{result['ratio_median']:.2f}**",
                    ],
                    [
                        "floor",
                        common.fmt(result["floor_seconds"], 2),
                        f"{result['floor_events_per_second']:,.0f}",
                        "1",
                    ],
                ],
            ),
            "",
            "Where the time goes (the repeat with the median ratio), seconds:",
            "",
            common.table(
                ["rebuild phase", "s", "floor part", "s"],
                [
                    [
                        "read + parse + fold the history",
                        common.fmt(phases["read + parse + fold"], 2),
                        "read S3 segments",
                        common.fmt(floor_run["read_s3_seconds"], 2),
                    ],
                    ["", "", "read the table tail", common.fmt(floor_run["read_table_seconds"], 2)],
                    [
                        "write the new version",
                        common.fmt(phases["write new version"], 2),
                        "write the rows",
                        common.fmt(floor_run["write_seconds"], 2),
                    ],
                    ["catch up the new version", common.fmt(phases["catch up"], 2), "", ""],
                    ["drop the old version", common.fmt(phases["drop old version"], 2), "", ""],
                ],
            ),
            "",
            "AWS calls (the same repeat):",
            "",
            common.table(["operation", "floor", "rebuild"], calls),
        ]
    )


def run(
    output: Path, events: int, tail: int, repeats: int = REPEATS, segment_size: int = 1000
) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": common.machine(), "segment_size": segment_size}
    result.update(measure(events, tail, repeats, segment_size))
    result["markdown"] = markdown(result)
    common.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = common.arguments("Full rebuild vs the floor of its calls.")
    sizes = QUICK if arguments.quick else FULL
    print(run(arguments.output, sizes["events"], sizes["tail"])["markdown"])


if __name__ == "__main__":
    main()
