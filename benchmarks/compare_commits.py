"""The local stack at two commits, side by side in one run: the sustained-rate steps of
benchmark 4 against each, alternating, so that a change's effect is a ratio measured under the
same machine load and not two runs an hour apart.

``python -m benchmarks.compare_commits --baseline REV [--rates 17.5 20] [--repeats 2]``

The baseline is checked out in a temporary ``git worktree`` (removed at the end) and its stack
runs from there with the same interpreter and packages; the current side is this checkout.
Each step starts a fresh stack, warms it with five writes, optionally writes at the rate for
``--history`` seconds (unmeasured: tables grow, and moto's cost with them), then writes at the
rate for the window (``local_latency.step``). Repeats alternate which side goes first.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import local_latency, local_stack, machine, report, stats
from benchmarks.report import log

NAME = "compare_commits"


@contextmanager
def worktree(revision: str) -> Iterator[tuple[Path, str]]:
    """``revision`` checked out in a temporary worktree; its path and its short commit id."""
    commit = machine.git("rev-parse", "--short", revision)
    path = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    machine.git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path, commit
    finally:
        machine.git("worktree", "remove", "--force", str(path))


def one_step(root: Path, rate: float, window: float, history: float) -> dict[str, Any]:
    """A fresh stack; ``history`` seconds of writes at ``rate`` (not measured), then the step."""
    with local_stack.local_stack(root=root) as stack:
        local_latency.latency(stack, 5)  # warm-up
        with local_stack.stack_status(stack) as status:
            if history:
                local_latency.step(stack, status, rate, history)
            return local_latency.step(stack, status, rate, window)


def measure(
    baseline: Path, rates: list[float], window: float, repeats: int, history: float
) -> list[dict[str, Any]]:
    sides = {"baseline": baseline, "current": machine.ROOT}
    steps = []
    for repeat in range(repeats):
        order = ["baseline", "current"] if repeat % 2 == 0 else ["current", "baseline"]
        for rate in rates:
            for side in order:
                log(f"repeat {repeat + 1}: {side} at {rate}/s for {window:.0f}s")
                result = one_step(sides[side], rate, window, history)
                log(
                    f"  max backlog {result['backlog_max']:.0f}, slope "
                    f"{result['backlog_slope_per_second']:.2f}/s, "
                    f"{'holds' if result['holds'] else 'does not hold'}"
                )
                steps.append({"side": side, "repeat": repeat + 1, **result})
    return steps


def summary(steps: list[dict[str, Any]], rates: list[float]) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        row: dict[str, Any] = {"rate": rate}
        for side in ("baseline", "current"):
            mine = [s for s in steps if s["rate"] == rate and s["side"] == side]
            row[side] = {
                "backlog_max": stats.median([s["backlog_max"] for s in mine]),
                "slope": stats.median([s["backlog_slope_per_second"] for s in mine]),
                "held": sum(1 for s in mine if s["holds"]),
                "runs": len(mine),
            }
        paired = [
            b["backlog_max"] / max(c["backlog_max"], 1.0)  # a backlog of 0 counts as 1
            for b in steps
            for c in steps
            if b["side"] == "baseline"
            and c["side"] == "current"
            and b["rate"] == c["rate"] == rate
            and b["repeat"] == c["repeat"]
        ]
        row["max_backlog_ratio"] = stats.median(paired)
        rows.append(row)
    return rows


def markdown(result: dict[str, Any]) -> str:
    rows = [
        [
            f"{r['rate']:g}/s",
            f"{r['baseline']['backlog_max']:.0f}",
            f"{r['current']['backlog_max']:.0f}",
            f"**{r['max_backlog_ratio']:.2f}**",
            f"{r['baseline']['slope']:.2f}",
            f"{r['current']['slope']:.2f}",
            f"{r['baseline']['held']}/{r['baseline']['runs']}",
            f"{r['current']['held']}/{r['current']['runs']}",
        ]
        for r in result["summary"]
    ]
    return "\n".join(
        [
            "## 5. The local stack at two commits, side by side",
            "",
            machine.machine_line(result["machine"]),
            "",
            f"Baseline: commit {result['baseline']}; current: {result['machine']['commit']}. "
            f"{result['note']} Each cell is the median over {result['repeats']} repeats; each "
            "repeat runs both sides at each rate (a fresh stack each, alternating which goes "
            f"first): {result['history']:.0f} s of writes at the rate to build up history, not "
            f"measured, then the measured {result['window']:.0f} s. The ratio is the median of "
            "the paired ratios, baseline / current.",
            "",
            report.table(
                [
                    "rate",
                    "max backlog, baseline",
                    "max backlog, current",
                    "baseline / current",
                    "slope /s, baseline",
                    "slope /s, current",
                    "held, baseline",
                    "held, current",
                ],
                rows,
            ),
        ]
    )


def run(
    output: Path,
    baseline: str,
    rates: list[float],
    window: float,
    repeats: int,
    note: str = "",
    history: float = 0.0,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine.machine(),
        "window": window,
        "history": history,
        "repeats": repeats,
        "note": note,
    }
    with worktree(baseline) as (path, commit):
        result["baseline"] = commit
        result["steps"] = measure(path, rates, window, repeats, history)
    result["summary"] = summary(result["steps"], rates)
    result["markdown"] = markdown(result)
    report.write_result(NAME, result, result["markdown"], output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--baseline", required=True, help="the commit to compare against")
    parser.add_argument("--note", default="", help="what differs between the two, for the table")
    parser.add_argument("--rates", type=float, nargs="+", default=[17.5, 20.0])
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--history", type=float, default=0.0, help="seconds of writes before each step, unmeasured"
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS)
    arguments = parser.parse_args()
    result = run(
        arguments.output,
        arguments.baseline,
        arguments.rates,
        arguments.window,
        arguments.repeats,
        arguments.note,
        arguments.history,
    )
    print(result["markdown"])


if __name__ == "__main__":
    main()
