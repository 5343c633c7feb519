"""Bounded reads of the partitioned view: GET /posts pages and GET /posts/{id}
as the view grows, and the rebuild against a floor that writes the same items.

**Reads.** The view is seeded with N posts (two comments each; ids 30 s apart, so about 560
posts per listing bucket of 2**24 ms) in bulk through the project's own store
(``store.put_rows``, the rebuild's writer: 25 items a ``BatchWriteItem``) straight into the
active version, in steps up to the largest size: seeding tens of thousands of posts through
``POST /posts`` and the pipeline would take far longer on moto, and the reads do not depend
on how the rows got there. At each size, through the HTTP API (``chalice.test.Client``, in-process
moto), the median of ``REPEATS`` requests of: the first page of ``GET /posts`` (limit 50), a
page deep in the middle (a cursor after the middle post), and ``GET /posts/{id}``. It reports
the AWS calls, the wall and CPU seconds per request and moto's own ``Query`` time, and the
ratio largest / smallest.

**Rebuild.** ``benchmarks/rebuild.py``'s measurement (the rebuild against the floor of the same
reads and item writes as bare boto3 calls, in alternating order), at 5,000 and 20,000 events.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks import aws_calls, in_process, machine, report, stats, timers
from benchmarks.report import log

NAME = "paged_view"
FULL: dict[str, Any] = {
    "sizes": [1_000, 10_000, 50_000],
    "rebuilds": [(5_000, 500), (20_000, 2_000)],
    "rebuild_repeats": 7,
}
QUICK: dict[str, Any] = {"sizes": [200, 1_000], "rebuilds": [(2_000, 500)], "rebuild_repeats": 1}
REPEATS = 31
LIMIT = 50
START_MS = 0x019A00000000
STEP_MS = 30_000


def post_id(index: int) -> str:
    return f"{START_MS + index * STEP_MS:012x}{index:016x}"


def seed(settings: Any, first: int, last: int) -> None:
    """Posts ``first`` to ``last - 1``, each with an approved and a rejected comment."""
    from functions.query import store
    from functions.query.projection import CommentRow, PostRow

    rows: list[Any] = []
    for index in range(first, last):
        pid = post_id(index)
        rows.append(PostRow(post_id=pid, title=f"post {index}", version=1))
        for n, status in enumerate(("approved", "rejected")):
            rows.append(
                CommentRow(
                    post_id=pid,
                    comment_id=f"{pid}{n}",
                    content=f"comment {n} on post {index}",
                    status=status,  # type: ignore[arg-type]
                    version=2,
                )
            )
    store.put_rows(settings, store.DEFAULT_VERSION, rows)


def timed(stack: in_process.InProcess, path: str) -> dict[str, Any]:
    """Median wall and CPU seconds, moto query seconds and calls of ``REPEATS`` GETs of
    ``path``."""
    seconds, cpu_seconds, moto_seconds, calls = [], [], [], []
    for _ in range(REPEATS + 1):  # the first is a warm-up
        with aws_calls.CallCounter() as counter, timers.MotoQueryTimer() as moto:
            start, cpu = time.perf_counter(), time.process_time()
            response = stack.api.request("GET", path)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert response.status == 200, response.body
        seconds.append(elapsed)
        cpu_seconds.append(cpu)
        moto_seconds.append(moto.seconds)
        calls.append(counter.by_operation())
    body = response.json()
    return {
        "path": path.split("?")[0],
        "seconds": stats.median(seconds[1:]),
        "cpu_seconds": stats.median(cpu_seconds[1:]),
        "moto_query_seconds": stats.median(moto_seconds[1:]),
        "calls": calls[-1],
        "call_count": sum(calls[-1].values()),
        "posts": len(body) if "comments" not in body else 1,
    }


def reads(sizes: list[int]) -> list[dict[str, Any]]:
    from functions.query.cursor import Cursor

    results = []
    with in_process.in_process_stack() as stack:
        seeded = 0
        for size in sizes:
            log(f"seeding posts {seeded} to {size}")
            seed(stack.settings, seeded, size)
            seeded = size
            in_process.settle_memory()
            middle = post_id(size // 2)
            deep = f"/posts?limit={LIMIT}&after={Cursor.after_post(middle).encode()}"
            measured = {
                "first page": timed(stack, f"/posts?limit={LIMIT}"),
                "deep page": timed(stack, deep),
                "one post": timed(stack, f"/posts/{post_id(size // 3)}"),
            }
            assert measured["first page"]["posts"] == measured["deep page"]["posts"] == LIMIT
            log(
                f"{size} posts: "
                + ", ".join(
                    f"{k} {v['call_count']} calls {v['seconds'] * 1000:.1f} ms"
                    for k, v in measured.items()
                )
            )
            results.append({"posts": size, **measured})
    return results


def rebuilds(sizes: list[tuple[int, int]], repeats: int) -> list[dict[str, Any]]:
    """``rebuild.measure`` at each (events, tail): the rebuild against its floor."""
    from benchmarks import rebuild

    results = []
    for events, tail in sizes:
        results.append({**rebuild.measure(events, tail, repeats), "segment_size": 1000})
    return results


def ratio(results: list[dict[str, Any]], kind: str, field: str) -> float:
    return float(results[-1][kind][field] / results[0][kind][field])


def cell(measured: dict[str, Any]) -> str:
    return (
        f"{measured['call_count']} / {measured['seconds'] * 1000:.1f} ms / "
        f"{measured['cpu_seconds'] * 1000:.1f} ms ({measured['moto_query_seconds'] * 1000:.1f})"
    )


def markdown(result: dict[str, Any]) -> str:
    from benchmarks import rebuild

    reads_ = result["reads"]
    kinds = ("first page", "deep page", "one post")
    rows = [[f"{r['posts']:,}", *(cell(r[k]) for k in kinds)] for r in reads_]
    rows.append(
        [
            f"**ratio {reads_[-1]['posts']:,} / {reads_[0]['posts']:,}**",
            *(
                f"**{ratio(reads_, k, 'call_count'):.2f} / {ratio(reads_, k, 'seconds'):.2f} / "
                f"{ratio(reads_, k, 'cpu_seconds'):.2f}**"
                for k in kinds
            ),
        ]
    )
    if len(reads_) > 2:
        rows.append(
            [
                f"ratio {reads_[1]['posts']:,} / {reads_[0]['posts']:,}",
                *(
                    f"{reads_[1][k]['call_count'] / reads_[0][k]['call_count']:.2f} / "
                    f"{reads_[1][k]['seconds'] / reads_[0][k]['seconds']:.2f} / "
                    f"{reads_[1][k]['cpu_seconds'] / reads_[0][k]['cpu_seconds']:.2f}"
                    for k in kinds
                ),
            ]
        )
    sections = [
        "## Paged reads and the rebuild of the partitioned view",
        "",
        machine.machine_line(result["machine"]),
        f"The machine is shared with other jobs: load average {result['load'][0]} at the start, "
        f"{result['load'][1]} at the end (1-minute, on {result['machine']['cores']} cores).",
        "",
        "### Reads as the view grows",
        "",
        "The view is seeded in bulk through the project's own store (`store.put_rows`, the "
        "rebuild's writer), not through `POST /posts`; the reads go through the HTTP API "
        f"(`chalice.test.Client`) on in-process moto, median of {REPEATS} after a warm-up; "
        f"each post has two comments; limit {LIMIT}. Each cell: AWS calls / wall ms / CPU ms "
        "per request (ms of it inside moto's `Query`).",
        "",
        report.table(["posts in the view", *kinds], rows),
    ]
    for built in result["rebuilds"]:
        sections += [
            "",
            f"### Rebuild of {built['events']:,} archived events",
            "",
            f"{built['rows']:,} view rows; the last {built['tail']:,} events only in the "
            "archive table, the rest in S3 segments. Against the floor of the same reads and "
            "the same item writes as bare boto3 calls (rows with their listing key, and the "
            f"bucket directory); median of {built['repeats']} repeats in alternating order "
            "after a warm-up. CPU seconds are this process's (moto runs in it), split into the "
            "time inside AWS calls and the side's own.",
            "",
            rebuild.comparison(built),
            "",
            "Ratios of each repeat, wall: "
            + ", ".join(f"{r:.2f}" for r in built["ratios"])
            + "; CPU: "
            + ", ".join(f"{r:.2f}" for r in built["cpu_ratios"])
            + ". Phases of the repeat with the median wall ratio, seconds:",
            "",
            rebuild.phases_table(built),
        ]
    return "\n".join(sections)


def main() -> None:
    arguments = report.arguments("Paged reads and the rebuild of the partitioned view.")
    sizes = QUICK if arguments.quick else FULL
    result: dict[str, Any] = {"machine": machine.machine()}
    load = [f"{os.getloadavg()[0]:.1f}"]
    result["reads"] = reads(sizes["sizes"])
    result["rebuilds"] = rebuilds(sizes["rebuilds"], sizes["rebuild_repeats"])
    result["load"] = [*load, f"{os.getloadavg()[0]:.1f}"]
    result["markdown"] = markdown(result)
    report.write_page(NAME, result, "PAGED_VIEW.md", arguments.output)
    print(result["markdown"])


if __name__ == "__main__":
    main()
