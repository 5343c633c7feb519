"""Turn mutmut's results (``mutants/**/*.py.meta``) into docs/mutants-report.md.

Usage: ``python -m tools.mutants_report --seconds N [--meta-dir mutants] [--output PATH]``
(``make mutants`` runs it after ``mutmut run`` with the run's wall-clock seconds).
"""

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# mutmut 3's exit codes (mutmut.stats.status_by_exit_code), folded into the report's columns.
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    5: "no tests",
    33: "no tests",
}
COLUMNS = ("killed", "survived", "timeout", "no tests", "other", "not run")


@dataclass
class Module:
    path: str
    counts: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def score(self) -> str:
        """Killed, of the mutants that were run (a timeout is not counted as a kill)."""
        ran = self.total - self.counts["not run"]
        return f"{100 * self.counts['killed'] / ran:.1f}%" if ran else "-"


def status(exit_code: int | None) -> str:
    if exit_code is None:
        return "not run"
    return STATUS.get(exit_code, "other")


def load(meta_dir: Path) -> list[Module]:
    modules = []
    for meta in sorted(meta_dir.glob("**/*.py.meta")):
        data = json.loads(meta.read_text())
        module = Module(path=str(meta.relative_to(meta_dir)).removesuffix(".meta"))
        for name, exit_code in sorted(data["exit_code_by_key"].items()):
            module.counts[status(exit_code)] += 1
            if status(exit_code) == "survived":
                module.survivors.append(name)
            if status(exit_code) == "timeout":
                module.timeouts.append(name)
        module.seconds = sum(data.get("durations_by_key", {}).values())
        if module.total:
            modules.append(module)
    return modules


def render(modules: list[Module], seconds: float) -> str:
    everything = Module(path="**all**")
    for module in modules:
        everything.counts.update(module.counts)
        everything.seconds += module.seconds
    header = ["module", *COLUMNS, "total", "score", "worker s"]
    lines = [
        "# Mutation testing report",
        "",
        f"Written by `make mutants` (mutmut 3) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"the last run took {seconds / 60:.1f} min of wall-clock time (nice 10, 2 children).",
        "Score: killed, of the mutants run (timeouts are listed, not counted). `worker s`: the",
        "seconds the mutants' test runs took, summed over every run of them. How to read it, and",
        "why each survivor is left: [testing.md](testing.md#mutation-testing-make-mutants).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for module in [*modules, everything]:
        cells = [f"`{module.path}`" if module is not everything else module.path]
        cells += [str(module.counts[column]) for column in COLUMNS]
        cells += [str(module.total), module.score, f"{module.seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    survivors = [name for module in modules for name in module.survivors]
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    lines += [f"- `{name}`" for name in survivors] or ["None."]
    timeouts = [name for module in modules for name in module.timeouts]
    lines += ["", f"## Timed out ({len(timeouts)})", ""]
    lines += [f"- `{name}`" for name in timeouts] or ["None."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, required=True, help="the run's wall-clock time")
    parser.add_argument("--meta-dir", type=Path, default=Path("mutants"))
    parser.add_argument("--output", type=Path, default=Path("docs/mutants-report.md"))
    args = parser.parse_args()
    args.output.write_text(render(load(args.meta_dir), args.seconds))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
