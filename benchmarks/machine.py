"""Where and when a number was measured: stated in every result.

``machine()`` gives the date, cores, CPU, system, Python, the AWS and Chalice library versions
and the commit (with ``+ uncommitted changes`` when the code differs from it);
``machine_line()`` says it in one sentence for the results' markdown.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks run from."""


def git(*arguments: str) -> str:
    """``git <arguments>`` in this checkout; its output, stripped."""
    return subprocess.run(  # noqa: S603 (git from PATH, fixed arguments)
        ["git", *arguments],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def machine() -> dict[str, Any]:
    """What a reader needs to weigh a number: where and when it was measured."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "moto": _version("moto"),
        "boto3": _version("boto3"),
        "botocore": _version("botocore"),
        "chalice": _version("chalice"),
        "commit": _commit(),
    }


def machine_line(info: Mapping[str, Any]) -> str:
    return (
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), {info['system']}, "
        f"Python {info['python']}, moto {info['moto']}, boto3 {info['boto3']}, "
        f"chalice {info['chalice']}, commit {info['commit']}."
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        head = git("rev-parse", "--short", "HEAD")
        # results written by an earlier benchmark of the same run are not code changes
        dirty = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
