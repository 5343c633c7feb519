"""Bounded reads of the partitioned view (issue 13): GET /posts pages and GET /posts/{id}
as the view grows, and the rebuild against a floor that writes the same items.

**Reads.** The view is seeded with N posts (two comments each; ids 30 s apart, so about 560
posts per listing bucket of 2**24 ms) straight into the active version, in steps up to the
largest size. At each size, through the HTTP API (``chalice.test.Client``, in-process moto),
the median of ``REPEATS`` requests of: the first page of ``GET /posts`` (limit 50), a page deep
in the middle (a cursor after the middle post), and ``GET /posts/{id}``. It reports the AWS
calls and the seconds per request, moto's own ``Query`` time apart (moto's index query visits
every item of the table, which DynamoDB does not), and the ratio largest / smallest.

**Rebuild.** ``benchmarks/rebuild.py``'s measurement, with its floor writing the items the
partitioned view writes (each row with its listing key, and the bucket directory), since those
are the writes any rebuild of this layout must make.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import log

NAME = "paged_view"
FULL = {"sizes": [1_000, 10_000, 50_000], "events": 20_000, "tail": 2_000}
QUICK = {"sizes": [200, 1_000], "events": 2_000, "tail": 500}
REPEATS = 15
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


def timed(stack: common.InProcess, path: str) -> dict[str, Any]:
    """Median seconds, moto query seconds and calls of ``REPEATS`` GETs of ``path``."""
    seconds, moto_seconds, calls = [], [], []
    for _ in range(REPEATS + 1):  # the first is a warm-up
        with common.CallCounter() as counter, common.MotoQueryTimer() as moto:
            start = time.perf_counter()
            response = stack.api.client.http.get(path)
            elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.body
        seconds.append(elapsed)
        moto_seconds.append(moto.seconds)
        calls.append(counter.by_operation())
    body = json.loads(response.body)
    return {
        "path": path.split("?")[0],
        "seconds": common.median(seconds[1:]),
        "moto_query_seconds": common.median(moto_seconds[1:]),
        "calls": calls[-1],
        "call_count": sum(calls[-1].values()),
        "posts": len(body) if "comments" not in body else 1,
    }


def reads(sizes: list[int]) -> list[dict[str, Any]]:
    from functions.query.cursor import Cursor

    results = []
    with common.in_process_stack() as stack:
        seeded = 0
        for size in sizes:
            log(f"seeding posts {seeded} to {size}")
            seed(stack.settings, seeded, size)
            seeded = size
            common.settle_memory()
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


def floor_items(settings: Any) -> list[dict[str, Any]]:
    """The items a rebuild of the partitioned view writes, as put requests (made untimed)."""
    from benchmarks import rebuild
    from functions import archive
    from functions.dynamo import to_item
    from functions.events import parse_event
    from functions.query import projection, store

    head = archive.head(settings).position
    view = projection.fold(parse_event(e.payload) for e in archive.history(settings, head))
    rows = [store.row_item(rebuild.FLOOR_VERSION, row) for row in view.values()]
    buckets = {store.bucket(r.post_id) for r in view.values() if isinstance(r, projection.PostRow)}
    directory = [
        {store.PARTITION: f"{rebuild.FLOOR_VERSION}/buckets", store.SORT: b} for b in buckets
    ]
    return [{"PutRequest": {"Item": to_item(item)}} for item in rows + directory]


def rebuild_ratio(events: int, tail: int) -> dict[str, Any]:
    from benchmarks import rebuild

    measure_floor = rebuild.floor

    def floor(settings: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The floor, counting view rows as the rebuild does (not the directory's items)."""
        result = measure_floor(settings, items)
        directory = sum(1 for i in items if "post_id" not in i["PutRequest"]["Item"])
        return {**result, "rows": result["rows"] - directory}

    # The same items the partitioned view's rebuild writes (in this process only).
    rebuild.floor_items = floor_items
    rebuild.floor = floor
    return rebuild.measure(events, tail, rebuild.REPEATS)


def ratio(results: list[dict[str, Any]], kind: str, field: str) -> float:
    return float(results[-1][kind][field] / results[0][kind][field])


def own_seconds(measured: dict[str, Any]) -> float:
    """Seconds of a request without moto's own ``Query`` time."""
    return float(measured["seconds"] - measured["moto_query_seconds"])


def markdown(result: dict[str, Any]) -> str:
    reads_ = result["reads"]
    kinds = ("first page", "deep page", "one post")
    rows = [
        [
            f"{r['posts']:,}",
            *(
                f"{r[k]['call_count']} / {r[k]['seconds'] * 1000:.1f} ms "
                f"({own_seconds(r[k]) * 1000:.1f})"
                for k in kinds
            ),
        ]
        for r in reads_
    ]
    rows.append(
        [
            f"**ratio {reads_[-1]['posts']:,} / {reads_[0]['posts']:,}**",
            *(
                f"{ratio(reads_, k, 'call_count'):.2f} / {ratio(reads_, k, 'seconds'):.2f} "
                f"({own_seconds(reads_[-1][k]) / own_seconds(reads_[0][k]):.2f})"
                for k in kinds
            ),
        ]
    )
    built = result["rebuild"]
    run = built["median_run"]
    phases = run["rebuild"]["phases"]
    return "\n".join(
        [
            "## Paged reads and the rebuild of the partitioned view",
            "",
            common.machine_line(result["machine"]),
            "",
            f"GET requests through the HTTP API on in-process moto, median of {REPEATS} after a "
            f"warm-up; each post has two comments; limit {LIMIT}. Each cell: AWS calls / "
            "milliseconds per request (milliseconds without moto's own `Query` time).",
            "",
            common.table(["posts in the view", *kinds], rows),
            "",
            f"Rebuild of {built['events']:,} archived events ({built['rows']:,} rows) against "
            "the floor of the same reads and the same item writes (rows with their listing "
            f"key, and the bucket directory), median of {built['repeats']} repeats:",
            "",
            common.table(
                ["", "seconds", "events/s", "rebuild / floor"],
                [
                    [
                        "rebuild",
                        common.fmt(built["rebuild_seconds"], 2),
                        f"{built['rebuild_events_per_second']:,.0f}",
                        f"**{built['ratio_median']:.2f}**",
                    ],
                    [
                        "floor",
                        common.fmt(built["floor_seconds"], 2),
                        f"{built['floor_events_per_second']:,.0f}",
                        "1",
                    ],
                ],
            ),
            "",
            "Rebuild phases (the median repeat), seconds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
            + ". The old version is only retired here (one write): the scheduled catch-up "
            "drops it later, so `drop old version` is 0.",
        ]
    )


def main() -> None:
    arguments = common.arguments("Paged reads and the rebuild of the partitioned view.")
    sizes = QUICK if arguments.quick else FULL
    result: dict[str, Any] = {"machine": common.machine()}
    result["reads"] = reads(sizes["sizes"])  # type: ignore[arg-type]
    result["rebuild"] = rebuild_ratio(sizes["events"], sizes["tail"])  # type: ignore[arg-type]
    result["markdown"] = markdown(result)
    output: Path = arguments.output
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{NAME}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (output / "PAGED_VIEW.md").write_text(result["markdown"] + "\n")
    print(result["markdown"])


if __name__ == "__main__":
    main()
