"""The chaos run's totals: kept while the state machine runs, printed and saved at the end.

``tests/chaos/test_pipeline_machine.py`` adds every finished scenario to ``TALLY``; the
terminal summary prints it (no ``-s`` needed) and writes ``build/chaos-totals.json``.
"""

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emulator.template import ROOT

TOTALS_FILE = ROOT / "build" / "chaos-totals.json"


@dataclass
class Tally:
    scenarios: int = 0
    steps: int = 0
    posts: int = 0
    comments: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    events_lost: int = 0
    duplicates_visible: int = 0
    pending_left: int = 0
    """Comments still pending at the end: a decision some consumer never made or applied."""
    archive_records: int = 0
    distinct_events: int = 0
    """Archive records and the distinct event ids among them, summed over the scenarios: a
    republished event (a publisher crash, a batch SNS failed in part) is archived again."""
    seconds: float = 0.0
    """Time spent in finished scenarios, setup and checks included."""

    def as_json(self) -> dict[str, Any]:
        return {
            "chaos_examples": os.environ.get("CHAOS_EXAMPLES", "unset: the make test slice"),
            "scenarios_run": self.scenarios,
            "steps": self.steps,
            "posts_written": self.posts,
            "comments_written": self.comments,
            "faults_injected": dict(sorted(self.faults.items())),
            "faults_injected_total": sum(self.faults.values()),
            "operations": dict(sorted(self.operations.items())),
            "events_lost": self.events_lost,
            "duplicates_visible": self.duplicates_visible,
            "comments_left_pending": self.pending_left,
            "archive_records": self.archive_records,
            "distinct_event_ids": self.distinct_events,
            "archive_records_per_event": round(self.archive_records / self.distinct_events, 3)
            if self.distinct_events
            else None,
            "seconds": round(self.seconds, 1),
        }


TALLY = Tally()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.scenarios == 0:
        return
    totals = TALLY.as_json()
    TOTALS_FILE.parent.mkdir(parents=True, exist_ok=True)
    TOTALS_FILE.write_text(json.dumps(totals, indent=2) + "\n")
    terminalreporter.section("chaos totals")
    for key in ("scenarios_run", "steps", "posts_written", "comments_written", "seconds"):
        terminalreporter.write_line(f"{key.replace('_', ' ')}: {totals[key]}")
    terminalreporter.write_line(f"faults injected: {totals['faults_injected_total']}")
    for kind, count in totals["faults_injected"].items():
        terminalreporter.write_line(f"  {kind}: {count}")
    operations = ", ".join(f"{k} {v}" for k, v in totals["operations"].items())
    terminalreporter.write_line(f"operations: {operations or 'none'}")
    terminalreporter.write_line(f"events lost: {totals['events_lost']} (must be 0)")
    terminalreporter.write_line(f"duplicates visible: {totals['duplicates_visible']} (must be 0)")
    terminalreporter.write_line(
        f"comments left pending: {totals['comments_left_pending']} (must be 0)"
    )
    terminalreporter.write_line(
        "archive records / distinct event ids: "
        f"{totals['archive_records']} / {totals['distinct_event_ids']}"
        f" = {totals['archive_records_per_event']}"
    )
    terminalreporter.write_line(f"written to {TOTALS_FILE.relative_to(ROOT)}")
