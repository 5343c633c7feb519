"""Recovery vs history: how long the query view takes to converge after missing M events,
with H events already in the archive.

The design's claim (docs/design.md): catch-up reads exactly the positions the view
missed, so its cost is flat in H and linear in M.

For each H, a fresh in-process stack gets a history of H events written straight into the
archive (the publisher's own archive functions; complete buckets copied to S3 segments by the
archiver's function), and a view rebuilt from it, so the view is current at position H, as
before an outage. Then, each repeat: the query consumer is unsubscribed from the topic
(``blog outage start query --mode unsubscribe``); M posts go through the real write path
(``POST /posts``, the outbox, the stream, the publisher, SNS); the runner drains; and the
clock runs over ``ops.outage_end`` (resubscribe, catch up from the archive), after which the
view holds all M posts (checked with ``GET /posts``, outside the clock).

Beside the time, each repeat records the AWS calls the recovery made (by operation) and the
seconds moto spent inside its DynamoDB ``Table.query``, whose cost grows with the table (moto
lists every item of the table for each query), unlike DynamoDB's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import aws_calls, in_process, machine, report, seeded_history, stats, timers
from benchmarks.report import log

NAME = "recovery_vs_history"
FULL: dict[str, Any] = {
    "histories": [1_000, 10_000, 50_000],
    "missed": 100,
    "linear": (10_000, [100, 300, 1_000]),
}
QUICK: dict[str, Any] = {"histories": [200, 1_000], "missed": 20, "linear": (1_000, [20, 50, 100])}
Linear = tuple[int, list[int]]
"""(H, the values of M measured at that H)."""
REPEATS = 3


def _one_repeat(stack: in_process.InProcess, missed: int, tag: str) -> dict[str, Any]:
    from functions import archive
    from functions.query.service import SUBSCRIPTION
    from functions.subscriptions import checkpoint, follower
    from operations import ops

    ops.outage_start(stack.consumers, "query", "unsubscribe")
    ids = []
    for index in range(missed):
        status, post = stack.api.post("/posts", {"title": f"{tag} missed {index}"})
        assert status == 201, post
        ids.append(post["id"])
    stack.runner.drain()
    settings = stack.settings
    head = archive.head(settings).position
    watermark = checkpoint.watermark(settings, SUBSCRIPTION, SUBSCRIPTION.main_track(settings))
    assert head - watermark == missed, (head, watermark, missed)

    with (
        timers.PhaseTimer({"catch-up": (follower, "catch_up")}) as phases,
        aws_calls.CallCounter() as calls,
        timers.MotoQueryTimer() as moto_query,
        stats.stopwatch() as elapsed,
    ):
        caught_up = ops.outage_end(stack.consumers, "query")
    converged = elapsed()
    assert caught_up is not None
    assert caught_up.recovered == missed, caught_up

    with stats.stopwatch() as get_time:  # the first page, as a reader sees it
        status, view = stack.api.get("/posts")
    assert status == 200
    assert view, "the first page is empty after recovery"
    # (GET /posts is one page since the view is paged: each missed post is checked by id)
    absent = [i for i in ids if stack.api.get(f"/posts/{i}")[0] != 200]
    assert not absent, f"{len(absent)} missed posts not in the view after recovery"
    assert stack.runner.drain() == 0  # nothing was left for the live path
    return {
        "history": head - missed,
        "missed": missed,
        "converge_seconds": converged,
        "catch_up_seconds": phases.seconds["catch-up"],
        "moto_query_seconds": moto_query.seconds,
        "moto_queries": moto_query.calls,
        "calls": calls.by_operation(),
        "calls_total": len(calls.calls),
        "report": caught_up.model_dump(),
        "get_posts_seconds": get_time(),
        "view_posts": len(view),
    }


def _seed(stack: in_process.InProcess, history: int) -> dict[str, float]:
    from functions.query import recovery

    with stats.stopwatch() as seeding:
        seeded_history.seed_archive(stack.settings, history)
    with stats.stopwatch() as building:
        recovery.rebuild(stack.settings)  # the view, current at H: as before an outage
    return {"seed_seconds": seeding(), "view_build_seconds": building()}


def measure(
    histories: list[int], missed: int, linear: Linear, repeats: int, segment_size: int = 1000
) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    seeding: dict[str, Any] = {}
    for history in sorted({*histories, linear[0]}):
        with in_process.in_process_stack({"ARCHIVE_SEGMENT_SIZE": str(segment_size)}) as stack:
            log(f"H={history}: seeding")
            seeding[str(history)] = _seed(stack, history)
            _one_repeat(stack, 5, "warm-up")  # imports, first calls: not measured
            in_process.settle_memory()
            sizes = [missed] if history in histories else []
            if history == linear[0]:
                sizes += linear[1]
            for size in sorted(set(sizes)):
                runs = []
                for repeat in range(repeats):
                    run = _one_repeat(stack, size, f"H{history} M{size} r{repeat}")
                    log(
                        f"H={history} M={size} #{repeat + 1}: converged in "
                        f"{run['converge_seconds']:.3f}s "
                        f"(moto Table.query {run['moto_query_seconds']:.3f}s)"
                    )
                    runs.append(run)
                points.append(_summary(history, size, runs))
    return {"points": points, "seeding": seeding, "repeats": repeats}


def _summary(history: int, missed: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    converge = [r["converge_seconds"] for r in runs]
    moto = [r["moto_query_seconds"] for r in runs]
    own = [r["converge_seconds"] - r["moto_query_seconds"] for r in runs]
    return {
        "history": history,
        "missed": missed,
        "converge_median": stats.median(converge),
        "converge_min": min(converge),
        "converge_max": max(converge),
        "catch_up_median": stats.median([r["catch_up_seconds"] for r in runs]),
        "moto_query_median": stats.median(moto),
        "without_moto_query_median": stats.median(own),
        "per_event_ms": 1000 * stats.median(converge) / missed,
        "calls": runs[len(runs) // 2]["calls"],
        "calls_total": [r["calls_total"] for r in runs],
        "get_posts_median": stats.median([r["get_posts_seconds"] for r in runs]),
        "runs": runs,
    }


def _point(result: dict[str, Any], history: int, missed: int) -> dict[str, Any]:
    return next(p for p in result["points"] if p["history"] == history and p["missed"] == missed)


def verdicts(
    result: dict[str, Any], histories: list[int], missed: int, linear: Linear
) -> dict[str, Any]:
    """The two claims, as ratios of medians measured in this run, and a line fitted to M."""
    small, large = _point(result, min(histories), missed), _point(result, max(histories), missed)
    h_linear, ms = linear
    fitted = [(m, _point(result, h_linear, m)["converge_median"]) for m in sorted(ms)]
    per_event = stats.slope(fitted)
    mean_m = sum(m for m, _ in fitted) / len(fitted)
    fixed = sum(t for _, t in fitted) / len(fitted) - per_event * mean_m
    worst = max(abs(t - (fixed + per_event * m)) / t for m, t in fitted)
    base, big = fitted[0], fitted[-1]
    return {
        "flat_in_h_ratio": large["converge_median"] / small["converge_median"],
        "flat_in_h_ratio_without_moto_query": large["without_moto_query_median"]
        / small["without_moto_query_median"],
        "history_ratio": max(histories) / min(histories),
        "calls_equal_across_h": len(
            {sum(p["calls"].values()) for p in result["points"] if p["missed"] == missed}
        )
        == 1,
        "linear_in_m_ratio": big[1] / base[1],
        "missed_ratio": big[0] / base[0],
        "marginal_ms_per_event": 1000 * per_event,
        "fixed_seconds": fixed,
        "worst_fit_error": worst,
    }


def markdown(result: dict[str, Any], plot: str | None) -> str:
    rows = [
        [
            f"{p['history']:,}",
            f"{p['missed']:,}",
            report.fmt(p["converge_median"]),
            f"{report.fmt(p['converge_min'])} to {report.fmt(p['converge_max'])}",
            report.fmt(p["catch_up_median"]),
            report.fmt(p["moto_query_median"]),
            report.fmt(p["without_moto_query_median"]),
            report.fmt(p["per_event_ms"], 2),
            sum(p["calls"].values()),
            report.fmt(p["get_posts_median"], 2),
        ]
        for p in result["points"]
    ]
    v = result["verdicts"]
    calls = result["points"][0]["calls"]
    lines = [
        "## 1. Recovery vs history",
        "",
        machine.machine_line(result["machine"]),
        "",
        "Time from `ops.outage_end` (resubscribe + catch-up from the archive) until the view "
        "holds every missed post, after M posts written through `POST /posts` while the query "
        "consumer was unsubscribed, with H events already archived (segment size "
        f"{result['segment_size']:,}; complete buckets in S3). In-process moto; median of "
        f"{result['repeats']} repeats on one seeded stack (H grows by M per repeat).",
        "",
        report.table(
            [
                "H (history)",
                "M (missed)",
                "converged, s (median)",
                "range, s",
                "of which catch-up, s",
                "in moto `Table.query`, s",
                "the rest, s (median of the differences)",
                "ms per missed event",
                "AWS calls",
                "one `GET /posts` after, s",
            ],
            rows,
        ),
        "",
        f"- **Flat in H?** From H = {min(result['histories']):,} to "
        f"{max(result['histories']):,} ({v['history_ratio']:.0f}x the history) the time "
        f"went {v['flat_in_h_ratio']:.2f}x; without the time inside moto's `Table.query` "
        f"{v['flat_in_h_ratio_without_moto_query']:.2f}x. The AWS calls recovery makes are "
        f"{'the same at every H' if v['calls_equal_across_h'] else 'not the same at every H'} "
        "(listed below). What grows with H is moto's: it answers every Query by listing "
        "the whole table (see PROFILE.md); DynamoDB's Query cost follows the items returned.",
        f"- **Linear in M?** At H = {result['linear'][0]:,}, the time per missed event was "
        + ", ".join(
            f"{p['per_event_ms']:.2f} ms (M = {p['missed']:,})"
            for p in result["points"]
            if p["history"] == result["linear"][0]
        )
        + f"; {v['missed_ratio']:.0f}x the missed events took {v['linear_in_m_ratio']:.2f}x "
        "the time, not more: the fixed part (resubscription, the catch-up's constant reads) "
        f"spreads thinner as M grows. Least squares: {v['fixed_seconds']:.3f} s + "
        f"{v['marginal_ms_per_event']:.2f} ms x M.",
        "- `GET /posts` (its first page) and a `GET /posts/{id}` per missed post are the "
        "convergence check, outside the clock.",
        "",
        f"AWS calls of one recovery at M = {result['missed']}: "
        + ", ".join(f"{op} {n}" for op, n in calls.items())
        + ".",
    ]
    if plot:
        lines += ["", f"![recovery vs history]({plot})"]
    return "\n".join(lines)


def draw(result: dict[str, Any], path: Path) -> str | None:
    plt = report.pyplot()
    if plt is None:
        return None
    missed = result["missed"]
    flat = [p for p in result["points"] if p["missed"] == missed]
    hs = [p["history"] for p in flat]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.errorbar(
        hs,
        [p["converge_median"] for p in flat],
        yerr=[
            [p["converge_median"] - p["converge_min"] for p in flat],
            [p["converge_max"] - p["converge_median"] for p in flat],
        ],
        marker="o",
        capsize=4,
        label="converged (median, min-max)",
    )
    left.plot(
        hs,
        [p["without_moto_query_median"] for p in flat],
        marker="s",
        linestyle="--",
        label="minus time in moto's Table.query",
    )
    left.set_xscale("log")
    left.set_ylim(bottom=0)
    left.set_xlabel("H: events in the archive")
    left.set_ylabel("seconds")
    left.set_title(f"M = {missed} missed events")
    left.legend(fontsize=8)
    h_linear, ms = result["linear"]
    pair = sorted(
        (p for p in result["points"] if p["history"] == h_linear and p["missed"] in ms),
        key=lambda p: p["missed"],
    )
    right.plot(
        [p["missed"] for p in pair],
        [p["converge_median"] for p in pair],
        marker="o",
        label="converged (median)",
    )
    v = result["verdicts"]
    right.plot(
        [0, max(ms)],
        [v["fixed_seconds"], v["fixed_seconds"] + v["marginal_ms_per_event"] * max(ms) / 1000],
        linestyle=":",
        label="fitted line",
    )
    right.set_xlabel("M: missed events")
    right.set_ylabel("seconds")
    right.set_title(f"H = {h_linear:,}")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    figure.suptitle("Query view recovery time (in-process moto)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def run(
    output: Path,
    histories: list[int],
    missed: int,
    linear: Linear,
    repeats: int = REPEATS,
    plot: bool = True,
    segment_size: int = 1000,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine.machine(),
        "histories": histories,
        "missed": missed,
        "linear": [linear[0], list(linear[1])],
    }
    result.update(measure(histories, missed, linear, repeats, segment_size))
    result["segment_size"] = segment_size
    result["verdicts"] = verdicts(result, histories, missed, linear)
    output.mkdir(parents=True, exist_ok=True)
    image = draw(result, output / f"{NAME}.png") if plot else None
    result["markdown"] = markdown(result, image)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    arguments = report.arguments(__doc__.split("\n\n")[0] if __doc__ else NAME)
    sizes = QUICK if arguments.quick else FULL
    result = run(arguments.output, sizes["histories"], sizes["missed"], sizes["linear"])
    print(result["markdown"])


if __name__ == "__main__":
    main()
