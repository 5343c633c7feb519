"""The local stack's POST -> visible latency, for a side-by-side of moto's speed patches.

``python -m tools.post_visible --switch on --switch off`` starts what ``make dev`` runs once for
each ``BLOG_MOTO_SPEED_PATCHES`` value given, then writes one post at a time to each in turn
(so a load that comes and goes on the machine falls on every stack alike), timing each from
sending ``POST /posts`` until ``GET /posts`` (polled every 5 ms) lists it, after a few writes
to warm up, and stops the stacks. It prints one JSON object: for each switch value, the samples
(seconds) and their median.
"""

import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.request
from typing import Any

from emulator.local import start_dev_stack, stop_process_group, wait_for_http
from emulator.moto_patches import SWITCH

POLL_SECONDS = 0.005
VISIBLE_TIMEOUT = 30.0


def _call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback only)
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=VISIBLE_TIMEOUT) as response:  # noqa: S310
        return json.loads(response.read())


def post_until_visible(url: str, title: str) -> float:
    """Seconds from sending the post until ``GET /posts`` lists it."""
    start = time.perf_counter()
    post_id = str(_call(f"{url}/posts", {"title": title})["id"])
    while post_id not in _call(f"{url}/posts"):
        if time.perf_counter() - start > VISIBLE_TIMEOUT:
            raise TimeoutError(f"post {post_id} not visible after {VISIBLE_TIMEOUT:.0f}s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - start


def measure(switches: list[str], samples: int, warmup: int) -> dict[str, Any]:
    stacks = []
    try:
        for switch in switches:
            os.environ[SWITCH] = switch  # the stack's moto process reads it
            stacks.append(start_dev_stack(stderr=subprocess.DEVNULL))
        for stack in stacks:
            wait_for_http(f"{stack.url}/posts", timeout=300, process=stack.process)
            for index in range(warmup):
                post_until_visible(stack.url, f"warm-up {index}")
        seconds: list[list[float]] = [[] for _ in stacks]
        for index in range(samples):
            for stack, taken in zip(stacks, seconds, strict=True):
                taken.append(post_until_visible(stack.url, f"sample {index}"))
    finally:
        for stack in stacks:
            stop_process_group(stack.process)
    return {
        switch: {"samples": taken, "p50_ms": round(statistics.median(taken) * 1000, 1)}
        for switch, taken in zip(switches, seconds, strict=True)
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.post_visible", description=__doc__)
    parser.add_argument(
        "--switch",
        action="append",
        required=True,
        help=f"a {SWITCH} value (on, off, or speed patch names); one stack for each",
    )
    parser.add_argument("--samples", type=int, default=100, help="timed writes a stack (100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed writes first (default 5)")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.switch, arguments.samples, arguments.warmup)))


if __name__ == "__main__":
    main()
