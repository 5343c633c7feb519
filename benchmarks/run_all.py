"""``make bench``: every benchmark, one after the other, each in a fresh process.

``python -m benchmarks.run_all [--quick] [--output DIR] [--only NAME ...]``. Each benchmark
writes its JSON (and PNG) under ``benchmarks/results/`` and refreshes ``RESULTS.md``; a failed
one is reported and the rest still run. The profiles (``benchmarks.profile_paths``) are not
part of it: they are run by hand, ahead of the numbers (see PROFILE.md).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import machine, report

BENCHMARKS = {
    "recovery_vs_history": 40 * 60,
    "rebuild": 20 * 60,
    "requests_per_action": 5 * 60,
    "cost": 15 * 60,
    "local_latency": 25 * 60,
    "hold_under_load": 40 * 60,
}
"""Each benchmark and how long it may take (seconds) before it is stopped."""


def run(command: list[str], timeout: float) -> bool:
    """Run one benchmark; past ``timeout``, Ctrl+C it (so it stops what it started), then kill."""
    process = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
        command,
        cwd=machine.ROOT,
        stdout=subprocess.DEVNULL,  # the markdown is in RESULTS.md; progress goes to stderr
    )
    try:
        return process.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        report.log(f"timed out after {timeout:.0f}s: interrupting")
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check, not a result")
    parser.add_argument("--output", type=Path, default=report.RESULTS)
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    arguments = parser.parse_args()
    failed = []
    for name in arguments.only:
        command = [sys.executable, "-m", f"benchmarks.{name}", "--output", str(arguments.output)]
        if arguments.quick:
            command.append("--quick")
        report.log(f"{name}: {' '.join(command[1:])}")
        start = time.perf_counter()
        ok = run(command, BENCHMARKS[name])
        report.log(f"{name}: {'done' if ok else 'FAILED'} in {time.perf_counter() - start:.0f}s")
        if not ok:
            failed.append(name)
    results = report.refresh_results(arguments.output)
    report.log(f"results: {results}")
    if failed:
        report.log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
