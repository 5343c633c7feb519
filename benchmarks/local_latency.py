"""Local end-to-end latency and sustained write rate, on the `make dev` stack.

Starts ``python -m emulator dev`` (what ``make dev`` runs) on free loopback ports, in its own
process group, and stops it with Ctrl+C (SIGINT) at the end, whatever happens.

- **Latency**: one write at a time, the time from sending ``POST /posts`` until the post is in
  ``GET /posts`` (polled every 20 ms): the stream poll, the publisher, SNS, the query queue
  poll and the view write, through moto's server. p50/p95/p99 over 200 writes.
- **Sustained rate**: writes at a fixed rate (open loop, from a pool of senders) for 60 s per
  step, at rising rates, sampling the stack's status (``ops.status`` through the runner's
  control API) every 2 s. The backlog is what is written but not yet in the view: unsent
  outbox records (the publisher's backlog) plus the query queue's depth. A step holds if at
  least 90% of its writes were accepted on time and the backlog did not grow (its slope over
  the step under 5% of the rate, or it ended under two seconds' worth of writes). The search
  stops at the first step that does not hold.

The stack's watermark lags the head by up to a minute of writes by design (the live path marks
positions; the catch-up folds them into the watermark once a minute), so head - watermark is
recorded but is not the backlog.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import machine, report, stats
from benchmarks.local_stack import LocalStack, create_post, local_stack, shown, stack_status
from benchmarks.report import log

NAME = "local_latency"
FULL: dict[str, Any] = {"writes": 200, "rates": [2, 5, 10, 15, 17.5, 20, 30], "window": 60.0}
QUICK: dict[str, Any] = {"writes": 20, "rates": [2, 5], "window": 5.0}
POLL_SECONDS = 0.02
SAMPLE_SECONDS = 2.0
SENDERS = 8
VISIBLE_TIMEOUT = 30.0
DRAIN_TIMEOUT = 60.0


def visible(stack: LocalStack, post_id: str, probe: str) -> bool:
    """Whether the post is in ``GET /posts`` (``probe="list"``) or ``GET /posts/{id}`` ("one")."""
    if probe == "list":
        status, page = stack.api.get("/posts")
        if status != 200:
            raise RuntimeError(f"GET /posts answered {status}: {page}")
        return post_id in page
    return shown(stack, post_id) is not None


def latency(stack: LocalStack, writes: int, probe: str = "list") -> dict[str, Any]:
    """POST one post, poll until it is visible; ``writes`` times, one at a time."""
    seconds: list[float] = []
    posts: list[float] = []
    probes: list[float] = []
    for index in range(writes):
        start = time.perf_counter()
        post_id = create_post(stack, f"latency {probe} {index}")
        posts.append(time.perf_counter() - start)
        deadline = start + VISIBLE_TIMEOUT
        while True:
            asked = time.perf_counter()
            seen = visible(stack, post_id, probe)
            probes.append(time.perf_counter() - asked)
            if seen:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"post {post_id} not visible after {VISIBLE_TIMEOUT}s")
            time.sleep(POLL_SECONDS)
        seconds.append(time.perf_counter() - start)
    quarter = max(1, writes // 4)
    return {
        "probe": probe,
        "writes": writes,
        "probe_p50": stats.percentile(probes, 50),
        "first_quarter_p50": stats.percentile(seconds[:quarter], 50),
        "last_quarter_p50": stats.percentile(seconds[-quarter:], 50),
        "p50": stats.percentile(seconds, 50),
        "p95": stats.percentile(seconds, 95),
        "p99": stats.percentile(seconds, 99),
        "max": max(seconds),
        "post_p50": stats.percentile(posts, 50),
        "post_p99": stats.percentile(posts, 99),
        "samples": seconds,
    }


def _sample(status: Any, since: float) -> dict[str, Any]:
    snapshot = status()
    query = next(c for c in snapshot.consumers if c.consumer == "query")
    return {
        "t": time.perf_counter() - since,
        "unsent_outbox": snapshot.unsent_outbox,
        "query_queue": query.queue_depth,
        "backlog": snapshot.unsent_outbox + query.queue_depth,
        "head": snapshot.archive_head,
        "head_minus_watermark": snapshot.archive_head - (query.watermark or 0),
    }


def step(stack: LocalStack, status: Any, rate: float, window: float) -> dict[str, Any]:
    """Write at ``rate`` per second for ``window`` seconds; the backlog over time."""
    accepted: list[float] = []
    failed: list[str] = []
    late = 0
    lock = threading.Lock()
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    start = time.perf_counter()

    def send(index: int) -> None:
        sent = time.perf_counter()
        try:
            create_post(stack, f"rate {rate} post {index}")
        except (OSError, RuntimeError, ValueError) as error:
            with lock:
                failed.append(repr(error))
            return
        with lock:
            accepted.append(time.perf_counter() - sent)

    def sampler() -> None:
        while not stop.is_set():
            samples.append(_sample(status, start))
            stop.wait(SAMPLE_SECONDS)

    watcher = threading.Thread(target=sampler, name="bench-sampler", daemon=True)
    watcher.start()
    total = int(rate * window)
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="bench-sender") as senders:
        for index in range(total):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            elif pause < -1.0:
                late += 1  # the senders are more than a second behind the schedule
            pending = [f for f in pending if not f.done()]
            pending.append(senders.submit(send, index))
        elapsed_sending = time.perf_counter() - start
    sent_seconds = time.perf_counter() - start
    drained_at = None
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while time.perf_counter() < deadline:
        if samples and samples[-1]["t"] > sent_seconds and samples[-1]["backlog"] == 0:
            drained_at = samples[-1]["t"] - sent_seconds
            break
        time.sleep(0.5)
    stop.set()
    watcher.join(timeout=30)
    in_window = [(s["t"], float(s["backlog"])) for s in samples if s["t"] <= sent_seconds]
    growth = stats.slope(in_window[1:])  # the first sample is the empty stack
    end_backlog = in_window[-1][1] if in_window else 0.0
    achieved = len(accepted) / max(sent_seconds, total / rate)
    holds = (
        len(accepted) >= 0.9 * total
        and not failed
        and (growth <= 0.05 * rate or end_backlog <= 2 * rate)
    )
    return {
        "rate": rate,
        "window_seconds": window,
        "offered": total,
        "accepted": len(accepted),
        "failed": len(failed),
        "failures": failed[:5],
        "late_sends": late,
        "sending_seconds": elapsed_sending,
        "achieved_rate": achieved,
        "post_p50": stats.percentile(accepted, 50),
        "post_p99": stats.percentile(accepted, 99),
        "backlog_slope_per_second": growth,
        "backlog_at_end": end_backlog,
        "backlog_max": max((b for _, b in in_window), default=0.0),
        "drain_seconds": drained_at,
        "holds": holds,
        "samples": samples,
    }


def measure(writes: int, rates: list[float], window: float) -> dict[str, Any]:
    with local_stack() as stack:
        log(f"local stack on {stack.url} (moto on port {stack.aws_port})")
        latency(stack, 5)  # warm-up
        log(f"latency: {writes} writes, one at a time, polling GET /posts")
        measured = latency(stack, writes, "list")
        log(f"latency p50 {measured['p50']:.3f}s p99 {measured['p99']:.3f}s")
        log(f"latency: {writes} writes, one at a time, polling GET /posts/{{id}}")
        one = latency(stack, writes, "one")
        log(f"latency p50 {one['p50']:.3f}s p99 {one['p99']:.3f}s")
        steps: list[dict[str, Any]] = []
        with stack_status(stack) as status:
            for rate in rates:
                log(f"sustained: {rate}/s for {window:.0f}s")
                result = step(stack, status, rate, window)
                log(
                    f"  accepted {result['accepted']}/{result['offered']}, backlog at end "
                    f"{result['backlog_at_end']:.0f}, slope "
                    f"{result['backlog_slope_per_second']:.2f}/s, drained in "
                    f"{result['drain_seconds']}: "
                    f"{'holds' if result['holds'] else 'does not hold'}"
                )
                steps.append(result)
                if not result["holds"]:
                    break
    held = [s["rate"] for s in steps if s["holds"]]
    return {
        "latency": measured,
        "latency_one_post": one,
        "steps": steps,
        "sustained_rate": max(held) if held else 0,
        "first_failing_rate": next((s["rate"] for s in steps if not s["holds"]), None),
    }


def markdown(result: dict[str, Any], plot: str | None) -> str:
    lat = result["latency"]
    rows = [
        [
            f"{s['rate']:g}/s",
            f"{s['window_seconds']:.0f}",
            f"{s['accepted']}/{s['offered']}",
            f"{s['achieved_rate']:.1f}",
            report.fmt(s["post_p50"]),
            f"{s['backlog_slope_per_second']:.2f}",
            f"{s['backlog_at_end']:.0f}",
            f"{s['backlog_max']:.0f}",
            "n/a" if s["drain_seconds"] is None else f"{s['drain_seconds']:.1f}",
            "**yes**" if s["holds"] else "no",
        ]
        for s in result["steps"]
    ]
    failing = result["first_failing_rate"]
    verdict = (
        f"**Sustained: {result['sustained_rate']:g} writes/s** held for "
        f"{result['window']:.0f} s; {failing:g}/s did not."
        if failing is not None
        else f"**Sustained: every step held, up to {result['sustained_rate']:g} writes/s** "
        "(the search stopped at its last step)."
    )
    lines = [
        "## 4. Local end-to-end latency and sustained rate",
        "",
        machine.machine_line(result["machine"]),
        "",
        "The `make dev` stack (`python -m emulator dev`: moto's server, the event-source "
        "runner, `chalice local`), on loopback; the writes are sent from the same machine.",
        "",
        f"Time from `POST /posts` until the post is visible (polled every "
        f"{1000 * POLL_SECONDS:.0f} ms after each answer), one write at a time, "
        f"{lat['writes']} writes; then the same with the cheaper probe `GET /posts/{{id}}`:",
        "",
        report.table(
            [
                "visible in",
                "p50, s",
                "p95, s",
                "p99, s",
                "max, s",
                "p50, first quarter / last quarter, s",
                "one probe, p50, s",
                "the POST alone, p50, s",
            ],
            [
                [
                    label,
                    report.fmt(run["p50"]),
                    report.fmt(run["p95"]),
                    report.fmt(run["p99"]),
                    report.fmt(run["max"]),
                    f"{report.fmt(run['first_quarter_p50'])} / "
                    f"{report.fmt(run['last_quarter_p50'])}",
                    report.fmt(run["probe_p50"]),
                    report.fmt(run["post_p50"]),
                ]
                for label, run in (
                    ("**`GET /posts`**", lat),
                    ("`GET /posts/{id}`", result["latency_one_post"]),
                )
            ],
        ),
        "",
        "`GET /posts` answers with one page of the newest posts; `GET /posts/{id}` returns one "
        "post.",
        "",
        "Sustained rate: open-loop writes at each rate; backlog = unsent outbox records + the "
        "query queue's depth, sampled every 2 s with `ops.status`. A step holds if at least 90% "
        "of its writes were accepted and the backlog did not grow (slope under 5% of the rate, "
        "or under two seconds' worth at the end).",
        "",
        report.table(
            [
                "rate",
                "s",
                "accepted",
                "achieved/s",
                "POST p50, s",
                "backlog slope, /s",
                "backlog at end",
                "max backlog",
                "drained after, s",
                "holds",
            ],
            rows,
        ),
        "",
        verdict,
    ]
    if plot:
        lines += ["", f"![local latency and backlog]({plot})"]
    return "\n".join(lines)


def draw(result: dict[str, Any], path: Path) -> str | None:
    plt = report.pyplot()
    if plt is None:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, label in (
        (result["latency"], "visible in GET /posts"),
        (result["latency_one_post"], "visible in GET /posts/{id}"),
    ):
        samples = sorted(run["samples"])
        left.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], label=label)
    for p in (50, 95, 99):
        left.axvline(result["latency"][f"p{p}"], linestyle=":", color="grey")
        left.text(result["latency"][f"p{p}"], 0.02, f" p{p}", fontsize=8)
    left.legend(fontsize=8)
    left.set_xlabel("seconds from POST until visible")
    left.set_ylabel("fraction of writes")
    left.set_title(f"End-to-end latency, {result['latency']['writes']} writes")
    for s in result["steps"]:
        right.plot(
            [x["t"] for x in s["samples"]],
            [x["backlog"] for x in s["samples"]],
            marker=".",
            label=f"{s['rate']:g}/s{'' if s['holds'] else ' (does not hold)'}",
        )
    right.axvline(result["window"], linestyle=":", color="grey")
    right.set_xlabel("seconds since the step started (writes stop at the dotted line)")
    right.set_ylabel("backlog (unsent outbox + query queue)")
    right.set_title("Backlog at each write rate")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def run(
    output: Path, writes: int, rates: list[float], window: float, plot: bool = True
) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine.machine(), "window": window, "rates": rates}
    result.update(measure(writes, rates, window))
    output.mkdir(parents=True, exist_ok=True)
    image = draw(result, output / f"{NAME}.png") if plot else None
    result["markdown"] = markdown(result, image)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments("Local end-to-end latency and sustained write rate.")
    sizes = QUICK if arguments.quick else FULL
    print(run(arguments.output, sizes["writes"], sizes["rates"], sizes["window"])["markdown"])


if __name__ == "__main__":
    main()
