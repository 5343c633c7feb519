"""Profiles of the slow paths (pyinstrument), with the time split by whose code it is.

``python -m benchmarks.profile_paths [--quick]`` profiles, on the in-process stack:

- ``live``: posts and comments written through the API until the view shows them (the whole
  pipeline per action);
- ``recovery``: ``ops.outage_end`` after 100 missed posts, with a history of 50,000 events;
- ``rebuild``: ``recovery.rebuild`` of a view from 20,000 archived events;
- ``local`` (with ``--local``): the `make dev` stack under 20 writes a second for 20 s, sampled
  with py-spy from outside (the emulator process, which runs moto's server and the runner, and
  ``chalice local``), by thread.

Each sample's time goes to the innermost frame that belongs to a known body of code, so the
standard library's time goes to whoever called it (moto's ``copy.deepcopy`` is moto's). It
writes ``results/profiles/<path>.txt`` (the split, the project's own hottest functions, and
pyinstrument's call tree) and ``results/profiles/summary.json``; PROFILE.md discusses them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import in_process, local_stack, machine, report, seeded_history
from benchmarks.report import log

ROOT = machine.ROOT
CATEGORIES = (
    (
        "project",
        (f"{ROOT}/functions/", f"{ROOT}/operations/", f"{ROOT}/emulator/", f"{ROOT}/app.py"),
    ),
    # werkzeug parses moto's requests in-process too, and serves them in moto's server
    ("moto (the emulated AWS)", ("/moto/", "/werkzeug/", "/flask/")),
    ("botocore/boto3 (the AWS client)", ("/botocore/", "/boto3/", "/s3transfer/", "/urllib3/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("chalice", ("/chalice/",)),
    ("powertools", ("/aws_lambda_powertools/",)),
    ("benchmark", (f"{machine.ROOT}/benchmarks/",)),
)
OTHER = "standard library and other"
MOTO, BOTOCORE = CATEGORIES[1][0], CATEGORIES[2][0]


def category(path: str | None) -> str | None:
    if not path:
        return None
    for name, markers in CATEGORIES:
        if any(marker in path for marker in markers):
            return name
    return None


def split(root: Any) -> tuple[dict[str, float], Counter[str], Counter[str]]:
    """Seconds by category (innermost known owner); the project's functions' self time; and
    the self time of moto's and botocore's functions, with the standard library they call."""
    seconds: Counter[str] = Counter()
    own: Counter[str] = Counter()
    libraries: Counter[str] = Counter()

    def walk(frame: Any, owner: str, library: str) -> None:
        if frame.is_synthetic:  # "[self]" and similar: counted in their parent's self time
            return
        known = category(frame.file_path)
        here = known or owner
        if known in (MOTO, BOTOCORE):
            short = frame.file_path.split("site-packages/", 1)[-1]
            library = f"{short}:{frame.line_no} {frame.function}"
        elif known is not None:
            library = ""
        self_time = frame.total_self_time
        if self_time > 0:
            seconds[here] += self_time
            if known == "project":
                where = frame.file_path.replace(f"{machine.ROOT}/", "")
                own[f"{where}:{frame.line_no} {frame.function}"] += self_time
            if library and here in (MOTO, BOTOCORE):
                libraries[library] += self_time
        for child in frame.children:
            walk(child, here, library)

    walk(root, OTHER, "")
    return dict(seconds), own, libraries


def profile(name: str, prepare: Callable[[], Any], work: Callable[[Any], object]) -> dict[str, Any]:
    from pyinstrument import Profiler

    state = prepare()
    profiler = Profiler(interval=0.001)
    profiler.start()
    work(state)
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    seconds, own, libraries = split(session.root_frame())
    total = sum(seconds.values())
    return {
        "name": name,
        "seconds": session.duration,
        "split": {k: v / total for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
        "project_hottest": [[f, s] for f, s in own.most_common(12)],
        "library_hottest": [[f, s] for f, s in libraries.most_common(12)],
        "tree": profiler.output_text(unicode=False, color=False, show_all=False),
    }


def live(posts: int) -> dict[str, Any]:
    with in_process.in_process_stack() as stack:
        stack.api.post("/posts", {"title": "warm-up"})
        stack.runner.drain()

        def work(_: Any) -> None:
            for index in range(posts):
                _, post = stack.api.post("/posts", {"title": f"profiled {index}"})
                stack.api.post(f"/posts/{post['id']}/comments", {"content": "Nice"})
                stack.api.post(f"/posts/{post['id']}/comments", {"content": "An orange"})
                stack.runner.drain()

        return profile("live", lambda: None, work)


def recovery_path(history: int, missed: int) -> dict[str, Any]:
    from functions.query import recovery
    from operations import ops

    with in_process.in_process_stack() as stack:

        def prepare() -> None:
            seeded_history.seed_archive(stack.settings, history)
            recovery.rebuild(stack.settings)
            ops.outage_start(stack.consumers, "query", "unsubscribe")
            for index in range(missed):
                stack.api.post("/posts", {"title": f"missed {index}"})
            stack.runner.drain()

        return profile("recovery", prepare, lambda _: ops.outage_end(stack.consumers, "query"))


def rebuild_path(events: int) -> dict[str, Any]:
    from benchmarks import rebuild
    from functions.query import recovery

    with in_process.in_process_stack() as stack:

        def prepare() -> None:
            rebuild.seed(stack, events, min(2_000, events // 4))

        return profile("rebuild", prepare, lambda _: recovery.rebuild(stack.settings))


SPY_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*):\d+\)$")


def spy_category(path: str) -> str | None:
    """py-spy's paths are short: ``functions/x.py``, ``moto/...``, ``threading.py``."""
    if path.startswith(("functions/", "operations/", "emulator/", "app.py")):
        return "project"
    return category("/" + path)


def spy_split(raw: Path) -> dict[str, Any]:
    """py-spy's collapsed stacks (``--format raw``), split by owner and by thread's job."""
    owners: Counter[str] = Counter()
    jobs: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        owner = OTHER
        innermost_project = None
        frames = stack.split(";")
        for frame in frames:
            match = SPY_FRAME.match(frame)
            path = match.group("file") if match else ""
            found = spy_category(path)
            if found:
                owner = found
            if found == "project" and match:
                innermost_project = f"{path} {match.group('function')}"
        owners[owner] += count
        if innermost_project:
            own[innermost_project] += count
        jobs[_job(stack)] += count
    return {
        "samples": total,
        "split": {k: v / total for k, v in owners.most_common()},
        "threads": {k: v / total for k, v in jobs.most_common()},
        "project_hottest": [[f, n / total] for f, n in own.most_common(12)],
    }


def _job(stack: str) -> str:
    if "EventSourceRunner" in stack:
        return "event-source runner (the handlers' code and their AWS calls)"
    if "werkzeug" in stack or "moto/server" in stack or "moto/core" in stack:
        return "moto's server, answering requests"
    if "chalice/local.py" in stack or "chalice/app.py" in stack:
        return "chalice local, serving requests"
    return "other"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def local_path(rate: float, seconds: float) -> list[dict[str, Any]]:
    """py-spy on the emulator and chalice local processes while writes arrive at ``rate``."""
    with tempfile.TemporaryDirectory(prefix="bench-spy-") as folder:
        return _spy(rate, seconds, Path(folder))


def _spy(rate: float, seconds: float, output: Path) -> list[dict[str, Any]]:
    from benchmarks import local_latency

    spy = Path(sys.executable).parent / "py-spy"
    results = []
    with local_stack.local_stack() as stack:
        local_latency.latency(stack, 5)
        targets = {"local-emulator": stack.pid}
        chalice = [p for p in _children(stack.pid) if b"chalice" in _cmdline(p)]
        if chalice:
            targets["local-chalice"] = chalice[0]
        recorders = {
            name: subprocess.Popen(  # noqa: S603 (py-spy from our environment)
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(output / f"{name}.raw"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in targets.items()
        }
        with local_stack.stack_status(stack) as status:
            step = local_latency.step(stack, status, rate, seconds)
        for recorder in recorders.values():
            recorder.wait(timeout=seconds + 60)
    for name in targets:
        raw = output / f"{name}.raw"
        if raw.exists():
            results.append(
                {
                    "name": name,
                    "seconds": seconds,
                    "rate": rate,
                    "accepted": step["accepted"],
                    "backlog_at_end": step["backlog_at_end"],
                    **spy_split(raw),
                }
            )
    return results


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def write_spy(results: list[dict[str, Any]], output: Path) -> None:
    for result in results:
        lines = [
            f"# {result['name']}: py-spy, 100 samples/s for {result['seconds']:.0f} s, while "
            f"{result['rate']:g} writes/s arrived ({result['accepted']} accepted; backlog at "
            f"the end {result['backlog_at_end']:.0f})",
            "",
            f"{result['samples']} samples (a sample per busy thread, so threads add up).",
            "",
            "By whose code (innermost known owner):",
            *(f"  {share:6.1%}  {name}" for name, share in result["split"].items()),
            "",
            "By thread's job:",
            *(f"  {share:6.1%}  {name}" for name, share in result["threads"].items()),
            "",
            "The project's innermost frames (share of samples):",
            *(f"  {share:6.1%}  {where}" for where, share in result["project_hottest"]),
        ]
        (output / f"{result['name']}.txt").write_text("\n".join(lines) + "\n")


def write(results: list[dict[str, Any]], output: Path) -> None:
    folder = output / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    profiles: list[dict[str, Any]] = []
    summary = {"machine": machine.machine(), "profiles": profiles}
    for result in results:
        lines = [
            f"# {result['name']}: {result['seconds']:.2f} s under pyinstrument (1 ms samples)",
            "",
            "Time by whose code it is (innermost known owner):",
            *(f"  {share:6.1%}  {name}" for name, share in result["split"].items()),
            "",
            "The project's own hottest functions (self time, s):",
            *(f"  {seconds:7.3f}  {where}" for where, seconds in result["project_hottest"]),
            "",
            "moto's and botocore's hottest functions (self time, with the standard library "
            "they call, s):",
            *(f"  {seconds:7.3f}  {where}" for where, seconds in result["library_hottest"]),
            "",
            result["tree"],
        ]
        (folder / f"{result['name']}.txt").write_text("\n".join(lines))
        profiles.append({k: v for k, v in result.items() if k != "tree"})
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    arguments = report.arguments("Profiles of the slow paths, by whose code it is.", "--local")
    quick = arguments.quick
    if arguments.local:
        folder = arguments.output / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        log("profiling the local stack under load (py-spy)")
        spied = local_path(20, 6 if quick else 20)
        write_spy(spied, folder)
        for result in spied:
            print(f"{result['name']}: {result['split']} {result['threads']}")
        return
    results = []
    log("profiling the live path")
    results.append(live(10 if quick else 50))
    log("profiling recovery")
    results.append(recovery_path(2_000 if quick else 50_000, 100))
    log("profiling rebuild")
    results.append(rebuild_path(2_000 if quick else 20_000))
    write(results, arguments.output)
    for result in results:
        split_text = ", ".join(f"{name} {share:.0%}" for name, share in result["split"].items())
        print(f"{result['name']}: {result['seconds']:.2f}s: {split_text}", file=sys.stdout)


if __name__ == "__main__":
    main()
