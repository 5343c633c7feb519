"""Full rebuild: the query view rebuilt from an archive of N events, against its floor.

The archive holds N events (default 20,000): complete buckets in S3 segments, the last
``TAIL`` events only in the DynamoDB table, as between two runs of the archiver. The view is
current (built once, untimed). Each repeat then times, one after the other, in alternating
order (floor first in odd repeats, rebuild first in even ones, so a drift of the machine's
load falls on both):

- **the floor**: the calls any rebuild of the partitioned view must make, as bare boto3 calls
  and nothing else: read the archive head, every S3 segment (``GetObject`` and the body), every
  table bucket not in S3 (``Query``, paginated), and write the items the rebuild writes with
  ``BatchWriteItem``, 25 a call: every view row with its listing key, and one bucket
  directory item per time bucket (made beforehand, untimed, and deleted afterwards, untimed);
- **the rebuild**: ``recovery.rebuild`` (what ``blog rebuild query`` runs): read and parse the
  history, fold it, write the new version, catch it up and switch reads. The old version is
  retired with one write; the scheduled catch-up drops it (run here untimed after each repeat).

Each side is timed in wall seconds and in this process's CPU seconds (everything, moto
included, runs in-process, so CPU time is what a shared machine's other load disturbs least),
and the CPU seconds spent inside AWS calls (botocore and moto) are counted apart: the rest is
the side's own work. It reports events per second and the median ratio rebuild / floor of
each, with the rebuild's phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import aws_calls, in_process, machine, report, seeded_history, stats, timers
from benchmarks.report import log

NAME = "rebuild"
FULL = {"events": 20_000, "tail": 2_000}
QUICK = {"events": 2_000, "tail": 500}
REPEATS = 5
FLOOR_VERSION = "floor"


def seed(stack: in_process.InProcess, events: int, tail: int) -> None:
    """``events`` archived events; all but the last ``tail`` or so in S3 segments."""
    from functions.query import recovery

    seeded_history.seed_archive(stack.settings, events - tail)  # complete buckets go to S3
    seeded_history.seed_archive(stack.settings, tail, segment=False)
    recovery.rebuild(stack.settings)  # the current view, which the measured rebuilds replace
    recovery.drop_retired(stack.settings)


def floor_items(settings: Any) -> list[dict[str, Any]]:
    """The items a rebuild of the partitioned view writes, as put requests (made untimed):
    each row with its listing key, and the bucket directory."""
    from functions import archive
    from functions.dynamo import to_item
    from functions.events import parse_event
    from functions.query import projection, store

    head = archive.head(settings).position
    view = projection.fold(parse_event(e.payload) for e in archive.history(settings, head))
    rows = [store.row_item(FLOOR_VERSION, row) for row in view.values()]
    buckets = {store.bucket(r.post_id) for r in view.values() if isinstance(r, projection.PostRow)}
    directory = [store.directory_item(FLOOR_VERSION, b) for b in sorted(buckets)]
    return [{"PutRequest": {"Item": to_item(item)}} for item in rows + directory]


def floor(settings: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The minimal calls of a rebuild, timed by part; the events read and rows written."""
    from functions import archive, aws, names

    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    table = settings.table(names.ARCHIVE_TABLE)
    view_table = settings.table(names.VIEW_TABLE)
    events = 0
    with stats.stopwatch() as total:
        head = archive.head(settings)
        last_bucket = archive.bucket_of(settings, head.position)
        with stats.stopwatch() as read_s3:
            for bucket in range(head.segmented_through):
                body = s3.get_object(
                    Bucket=settings.archive_bucket,
                    Key=archive._segment_key(bucket),  # the archive's own object key
                )["Body"].read()
                events += body.count(b"\n")
        with stats.stopwatch() as read_table:
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
        with stats.stopwatch() as write:
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
        "rows": sum(1 for i in items if "post_id" in i["PutRequest"]["Item"]),
    }


def _rebuild(settings: Any) -> dict[str, Any]:
    from functions.query import recovery, store

    phases = {
        "write new version": (store, "put_rows"),
        "catch up": (recovery, "catch_up"),
        "drop old version": (store, "drop_version"),
    }
    with timers.PhaseTimer(phases) as timer, stats.stopwatch() as total:
        rebuilt = recovery.rebuild(settings)
    seconds = total()
    breakdown = {"read + parse + fold": seconds - sum(timer.seconds.values()), **timer.seconds}
    return {
        "seconds": seconds,
        "events": rebuilt.events,
        "rows": rebuilt.rows,
        "phases": breakdown,
    }


def _timed(side: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one side; its result with its calls, CPU seconds and their split."""
    with (
        aws_calls.CallCounter() as calls,
        timers.MotoQueryTimer() as moto,
        timers.ApiTimer() as api,
    ):
        cpu = time.process_time()
        result = side()
        cpu = time.process_time() - cpu
    return {
        **result,
        "cpu_seconds": cpu,
        "aws_cpu_seconds": api.seconds,
        "own_cpu_seconds": cpu - api.seconds,
        "calls": calls.by_operation(),
        "moto_query_seconds": moto.seconds,
    }


def measure(events: int, tail: int, repeats: int, segment_size: int = 1000) -> dict[str, Any]:
    from functions.query import recovery, store

    with in_process.in_process_stack({"ARCHIVE_SEGMENT_SIZE": str(segment_size)}) as stack:
        log(f"seeding {events} events")
        seed(stack, events, tail)
        settings = stack.settings
        items = floor_items(settings)
        in_process.settle_memory()
        runs = []
        for repeat in range(repeats + 1):  # the first is a warm-up
            run: dict[str, Any] = {}
            for side in ("floor", "rebuild") if repeat % 2 else ("rebuild", "floor"):
                if side == "floor":
                    run["floor"] = _timed(lambda: floor(settings, items))
                    store.drop_version(settings, FLOOR_VERSION)
                else:
                    run["rebuild"] = _timed(lambda: _rebuild(settings))
                    recovery.drop_retired(settings)  # as the scheduled catch-up does
            rebuilt, minimal = run["rebuild"], run["floor"]
            assert rebuilt["events"] == minimal["events"], (rebuilt, minimal)
            assert rebuilt["rows"] == minimal["rows"], (rebuilt, minimal)
            if repeat == 0:
                continue
            run["ratio"] = rebuilt["seconds"] / minimal["seconds"]
            run["cpu_ratio"] = rebuilt["cpu_seconds"] / minimal["cpu_seconds"]
            log(
                f"#{repeat}: rebuild {rebuilt['seconds']:.2f}s ({rebuilt['cpu_seconds']:.2f} CPU),"
                f" floor {minimal['seconds']:.2f}s ({minimal['cpu_seconds']:.2f} CPU),"
                f" ratio {run['ratio']:.2f} (CPU {run['cpu_ratio']:.2f})"
            )
            runs.append(run)
    middle = sorted(runs, key=lambda r: r["ratio"])[stats.rank(len(runs), 50)]
    rebuild_seconds = stats.median([r["rebuild"]["seconds"] for r in runs])
    floor_seconds = stats.median([r["floor"]["seconds"] for r in runs])
    return {
        "events": runs[0]["rebuild"]["events"],
        "tail": tail,
        "rows": runs[0]["rebuild"]["rows"],
        "repeats": repeats,
        "rebuild_seconds": rebuild_seconds,
        "floor_seconds": floor_seconds,
        "rebuild_events_per_second": runs[0]["rebuild"]["events"] / rebuild_seconds,
        "floor_events_per_second": runs[0]["rebuild"]["events"] / floor_seconds,
        "ratio_median": stats.median([r["ratio"] for r in runs]),
        "ratios": [r["ratio"] for r in runs],
        **{
            f"{side}_{part}_cpu_seconds": stats.median(
                [r[side][f"{part}_cpu_seconds"] for r in runs]
            )
            for side in ("rebuild", "floor")
            for part in ("aws", "own")
        },
        "rebuild_cpu_seconds": stats.median([r["rebuild"]["cpu_seconds"] for r in runs]),
        "floor_cpu_seconds": stats.median([r["floor"]["cpu_seconds"] for r in runs]),
        "cpu_ratio_median": stats.median([r["cpu_ratio"] for r in runs]),
        "cpu_ratios": [r["cpu_ratio"] for r in runs],
        "median_run": middle,
        "runs": runs,
    }


def comparison(result: dict[str, Any]) -> str:
    """The rebuild against its floor: seconds, CPU seconds and their split, and the ratios."""
    rows = []
    for side in ("rebuild", "floor"):
        rows.append(
            [
                side,
                report.fmt(result[f"{side}_seconds"], 2),
                f"{result['events'] / result[f'{side}_seconds']:,.0f}",
                report.fmt(result[f"{side}_cpu_seconds"], 2),
                report.fmt(result[f"{side}_aws_cpu_seconds"], 2),
                report.fmt(result[f"{side}_own_cpu_seconds"], 2),
                f"**{result['ratio_median']:.2f}**" if side == "rebuild" else "1",
                f"**{result['cpu_ratio_median']:.2f}**" if side == "rebuild" else "1",
            ]
        )
    return report.table(
        [
            "",
            "wall s",
            "events/s",
            "CPU s",
            "in AWS calls",
            "own",
            "rebuild / floor (wall)",
            "rebuild / floor (CPU)",
        ],
        rows,
    )


def phases_table(result: dict[str, Any]) -> str:
    run = result["median_run"]
    phases = run["rebuild"]["phases"]
    floor_run = run["floor"]
    return report.table(
        ["rebuild phase", "s", "floor part", "s"],
        [
            [
                "read + parse + fold the history",
                report.fmt(phases["read + parse + fold"], 2),
                "read S3 segments",
                report.fmt(floor_run["read_s3_seconds"], 2),
            ],
            ["", "", "read the table tail", report.fmt(floor_run["read_table_seconds"], 2)],
            [
                "write the new version",
                report.fmt(phases["write new version"], 2),
                "write the rows and the directory",
                report.fmt(floor_run["write_seconds"], 2),
            ],
            ["catch up the new version", report.fmt(phases["catch up"], 2), "", ""],
        ],
    )


def markdown(result: dict[str, Any]) -> str:
    run = result["median_run"]
    operations = sorted(set(run["floor"]["calls"]) | set(run["rebuild"]["calls"]))
    calls = [
        [op, run["floor"]["calls"].get(op, 0), run["rebuild"]["calls"].get(op, 0)]
        for op in operations
    ]
    return "\n".join(
        [
            "## 2. Full rebuild",
            "",
            machine.machine_line(result["machine"]),
            "",
            f"`recovery.rebuild` of the query view from {result['events']:,} archived events "
            f"(the last {result['tail']:,} or so only in the DynamoDB table, the rest in S3 "
            f"segments of {result['segment_size']:,}), writing {result['rows']:,} view rows; "
            "against the floor: the same reads and writes as bare boto3 calls (head `GetItem`, "
            "one `GetObject` per segment, a paginated `Query` per table bucket, "
            "`BatchWriteItem` of every row with its listing key and of the bucket directory). "
            f"Median of {result['repeats']} repeats in alternating order after a warm-up, "
            "in-process moto; CPU seconds are this process's, split into the time inside AWS "
            "calls (botocore and moto) and the side's own.",
            "",
            comparison(result),
            "",
            "Where the time goes (the repeat with the median wall ratio), seconds:",
            "",
            phases_table(result),
            "",
            "AWS calls (the same repeat):",
            "",
            report.table(["operation", "floor", "rebuild"], calls),
        ]
    )


def run(
    output: Path, events: int, tail: int, repeats: int = REPEATS, segment_size: int = 1000
) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine.machine(), "segment_size": segment_size}
    result.update(measure(events, tail, repeats, segment_size))
    result["markdown"] = markdown(result)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments("Full rebuild vs the floor of its calls.")
    sizes = QUICK if arguments.quick else FULL
    print(run(arguments.output, sizes["events"], sizes["tail"])["markdown"])


if __name__ == "__main__":
    main()
