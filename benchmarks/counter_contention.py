"""Allocation contention on the archive's counter row, for docs/scaling.md.

Every publisher batch allocates its positions with one ``UpdateItem ADD`` on one item, so the
counter row is a serial point: DynamoDB serves at most about 1,000 writes/s on one item (one
partition's write limit; each update of the small counter item is 1 WCU).

1. **Measured** on in-process moto: N threads (concurrent publishers) allocate batches for a
   fixed time. It checks what must hold at any N (the ranges are disjoint and contiguous: no
   position given twice, none skipped) and reports allocations/s and the latency percentiles
   as N grows. moto serialises every call under a lock, so its throughput is flat and its
   latency grows with N: the shape of one serial item, at moto's speed.
2. **Modelled** for AWS with exact mean value analysis of a closed network: N publishers,
   each spending ``THINK`` seconds on the rest of its batch (archive write, PublishBatch, flips)
   between allocations, and the counter as one queue served at ``COUNTER_RATE`` updates/s.
   It gives the allocations/s, the counter's utilisation and the wait per allocation, and the
   events/s that carries at the stream's batch size.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks import in_process, machine, report, stats
from benchmarks.report import log

NAME = "counter_contention"
THREADS = [1, 2, 4, 8, 16]
SECONDS = 3.0
COUNTER_RATE = 1000.0
"""Updates per second one DynamoDB item sustains (its partition's 1,000 WCU/s)."""
SERVICE = 0.005
"""Seconds of one UpdateItem round trip when nobody waits (a typical in-region latency)."""
THINK = 0.05
"""Seconds a publisher spends on the rest of a batch between allocations."""
PUBLISHERS = [1, 10, 50, 100, 200, 500, 1000]
"""Concurrent publisher invocations: one per stream shard (parallelization factor 1)."""
EVENTS_PER_BATCH = [1, 10, 100]


def measure(threads: int, seconds: float) -> dict[str, Any]:
    from functions import archive, settings

    config = settings.load()
    ranges: list[range] = []
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def publisher(batch: int) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            allocated = archive.allocate(config, batch)
            elapsed = time.perf_counter() - start
            with lock:
                ranges.append(allocated)
                latencies.append(elapsed)

    workers = [threading.Thread(target=publisher, args=(1 + i % 10,)) for i in range(threads)]
    before = archive.head(config).position
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    positions = sorted(p for r in ranges for p in r)
    assert positions == list(range(before + 1, before + 1 + len(positions))), "gap or repeat"
    return {
        "threads": threads,
        "allocations_per_second": len(ranges) / seconds,
        "p50_ms": stats.percentile(latencies, 50) * 1000,
        "p99_ms": stats.percentile(latencies, 99) * 1000,
        "positions": len(positions),
    }


def mva(publishers: int) -> dict[str, float]:
    """Exact MVA: a delay station (THINK) and one queue (the counter, 1 / COUNTER_RATE a
    visit, plus the round trip as a delay)."""
    demand = 1 / COUNTER_RATE
    queue = 0.0
    throughput = 0.0
    response = demand
    for n in range(1, publishers + 1):
        response = demand * (1 + queue)
        throughput = n / (THINK + SERVICE + response)
        queue = throughput * response
    return {
        "publishers": publishers,
        "allocations_per_second": throughput,
        "utilisation": throughput * demand,
        "wait_ms": (response - demand) * 1000,
    }


def markdown(result: dict[str, Any]) -> str:
    measured = report.table(
        ["threads", "allocations/s", "p50 ms", "p99 ms"],
        [
            [
                m["threads"],
                f"{m['allocations_per_second']:,.0f}",
                f"{m['p50_ms']:.1f}",
                f"{m['p99_ms']:.1f}",
            ]
            for m in result["measured"]
        ],
    )
    modelled = report.table(
        [
            "publishers",
            "allocations/s",
            "counter busy",
            "wait per allocation",
            *(f"events/s at {b}/batch" for b in EVENTS_PER_BATCH),
        ],
        [
            [
                m["publishers"],
                f"{m['allocations_per_second']:,.0f}",
                f"{m['utilisation']:.0%}",
                f"{m['wait_ms']:.1f} ms",
                *(f"{m['allocations_per_second'] * b:,.0f}" for b in EVENTS_PER_BATCH),
            ]
            for m in result["modelled"]
        ],
    )
    return "\n".join(
        [
            "## Allocation contention on the archive's counter row",
            "",
            machine.machine_line(result["machine"]),
            "",
            f"Measured on in-process moto, {SECONDS:.0f} s per row; every run checked that "
            "the allocated ranges are disjoint and contiguous:",
            "",
            measured,
            "",
            f"Modelled for DynamoDB (exact mean value analysis; counter {COUNTER_RATE:,.0f} "
            f"updates/s, round trip {SERVICE * 1000:.0f} ms, {THINK * 1000:.0f} ms of other "
            "work per publisher batch):",
            "",
            modelled,
        ]
    )


def main() -> None:
    arguments = report.arguments("Allocation contention on the archive's counter row.")
    threads = THREADS[:3] if arguments.quick else THREADS
    result: dict[str, Any] = {"machine": machine.machine()}
    with in_process.in_process_stack():
        result["measured"] = []
        for n in threads:
            result["measured"].append(measure(n, SECONDS))
            log(f"{n} threads: {result['measured'][-1]}")
    result["modelled"] = [mva(n) for n in PUBLISHERS]
    result["markdown"] = markdown(result)
    report.write_page(NAME, result, "COUNTER_CONTENTION.md", arguments.output)
    print(result["markdown"])


if __name__ == "__main__":
    main()
