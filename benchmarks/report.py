"""A benchmark's command line, its markdown and where its results are written.

- ``arguments()``: ``--quick`` and ``--output`` (and any extra flags) for ``python -m
  benchmarks.<name>``;
- ``write_result()``: ``<name>.json`` (the result, its machine, its markdown) and
  ``RESULTS.md``, rebuilt from every result JSON present (``refresh_results``);
  ``write_page()``: ``<name>.json`` and a page of its own (``PAGED_VIEW.md``, ...);
- ``table()``, ``fmt()``, ``pyplot()``: markdown tables, numbers, plots;
- ``log()``: progress on stderr (the markdown goes to stdout).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

SECTIONS = (
    "recovery_vs_history",
    "rebuild",
    "requests_per_action",
    "local_latency",
    "compare_commits",
    "hold_under_load",
)
"""The benchmarks with a section in RESULTS.md, in its order."""


def arguments(description: str, *extra: str) -> argparse.Namespace:
    """--quick and --output, and any ``extra`` flags (``store_true``)."""
    parser = argparse.ArgumentParser(description=description)
    for flag in extra:
        parser.add_argument(flag, action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a check that it runs, not a result"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="where to write <name>.json and RESULTS.md (default: benchmarks/results)",
    )
    return parser.parse_args()


def write_result(name: str, result: dict[str, Any], markdown: str, output: Path) -> Path:
    """Write ``<name>.json`` (the result, its machine and its markdown) and refresh RESULTS.md."""
    output.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, **result, "markdown": markdown}
    path = output / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    refresh_results(output)
    return path


def write_page(name: str, result: dict[str, Any], page: str, output: Path) -> Path:
    """Write ``<name>.json`` and ``page`` (a markdown file of its own) from ``result``'s
    ``markdown``."""
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    path = output / page
    path.write_text(result["markdown"] + "\n")
    return path


def refresh_results(output: Path) -> Path:
    """RESULTS.md: the markdown section of every result JSON in ``output``, in a fixed order."""
    sections = []
    for name in SECTIONS:
        path = output / f"{name}.json"
        if path.exists():
            sections.append(json.loads(path.read_text())["markdown"].strip())
    intro = (
        "# Benchmark results\n\n"
        "Produced by `make bench` (all) or `python -m benchmarks.<name>` (one), from "
        "[benchmarks/](../). Each section states the machine, the versions and the date it was "
        "measured; the raw numbers are in the JSON file beside this one. Profile findings: "
        "[PROFILE.md](../PROFILE.md).\n"
    )
    path = output / "RESULTS.md"
    path.write_text("\n\n".join([intro, *sections]) + "\n")
    return path


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 3) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def pyplot() -> Any:
    """matplotlib's pyplot for files (no display), or None when matplotlib is not installed:
    a plot is a convenience, the table is the result."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot")
        return None
    return plt


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
