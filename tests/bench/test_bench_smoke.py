"""Each benchmark of ``benchmarks/`` runs, at a tiny size, into a temporary folder.

The numbers mean nothing at this size (``make bench`` measures); these check that every
benchmark still runs end to end against the current code, writes its JSON and its section of
RESULTS.md, and that what it asserts along the way (the view converges, the rebuild reads every
event, the calls are counted) holds.
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

from benchmarks import (
    compare_commits,
    cost,
    in_process,
    local_latency,
    rebuild,
    recovery_vs_history,
    requests_per_action,
)


def written(output: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((output / f"{name}.json").read_text())
    assert document["machine"]["cores"] >= 1
    assert document["machine"]["moto"]
    assert document["markdown"].strip() in (output / "RESULTS.md").read_text()
    return document


def test_recovery_vs_history_smoke(tmp_path: Path) -> None:
    recovery_vs_history.run(
        tmp_path, histories=[20, 60], missed=3, linear=(60, [3, 6]), repeats=1, segment_size=20
    )
    result = written(tmp_path, "recovery_vs_history")
    assert [(p["history"], p["missed"]) for p in result["points"]] == [
        (20, 3),
        (60, 3),
        (60, 6),
    ]
    assert all(p["runs"][0]["report"]["recovered"] == p["missed"] for p in result["points"])
    assert result["verdicts"]["calls_equal_across_h"]
    assert (tmp_path / "recovery_vs_history.png").stat().st_size > 0


def test_rebuild_smoke(tmp_path: Path) -> None:
    rebuild.run(tmp_path, events=120, tail=30, repeats=1, segment_size=20)
    result = written(tmp_path, "rebuild")
    assert result["events"] == 120
    calls = result["median_run"]["floor"]["calls"]
    assert calls["s3.GetObject"] == 4  # buckets 0 to 3 (positions 1 to 79) are in S3
    assert result["ratio_median"] > 0


def test_requests_per_action_smoke(tmp_path: Path) -> None:
    requests_per_action.run(tmp_path)
    result = written(tmp_path, "requests_per_action")
    post = next(f for f in result["flows"] if f["flow"] == "post" and f["batch"] == 1)
    assert post["per_action"]["function:api_handler dynamodb.TransactWriteItems"] == 1
    assert post["per_action"]["function:outbox_publisher sns.PublishBatch"] == 1


def test_cost_smoke(tmp_path: Path) -> None:
    result = cost.run(tmp_path, history=120, history_posts=1, segment_size=50)
    page = (tmp_path / "COST.md").read_text()
    assert "per million posts" in page
    assert "The biggest line item" in page
    post = sum(result["flows"]["post"]["1"].values(), cost.Usage())
    # a post's transaction (2 items, twice), the publisher's claim, position, record and flip,
    # the view's pointer row, post row and seen mark: at least 10 write units, one publish
    assert post.write_units >= 10
    assert (post.sns_requests, post.api_requests) == (1, 1)
    cost_per_million = result["per_million_posts"]
    assert sum(cost_per_million["write_path"].values()) > sum(cost_per_million["floor"].values())
    assert json.loads((tmp_path / "cost.json").read_text())["alarms"] > 0


def test_a_second_stack_counts_the_lines_of_loggers_built_in_the_first() -> None:
    # GIVEN a logger built while a first stack held stdout (as the functions' loggers are)
    logger = logging.getLogger("bench-smoke")
    with in_process.in_process_stack():
        logger.addHandler(logging.StreamHandler(sys.stdout))
    try:
        # WHEN it logs inside a second stack
        with in_process.in_process_stack() as second:
            before = second.output.bytes
            logger.warning("a line")
            # THEN the second stack counts it
            assert second.output.bytes > before
    finally:
        logger.handlers.clear()


def test_local_latency_smoke(tmp_path: Path) -> None:
    local_latency.run(tmp_path, writes=3, rates=[4], window=2.0)
    result = written(tmp_path, "local_latency")
    assert result["latency"]["writes"] == 3
    assert result["steps"][0]["accepted"] == 8


def test_compare_commits_smoke(tmp_path: Path) -> None:
    compare_commits.run(tmp_path, "HEAD", rates=[4], window=2.0, repeats=1, note="smoke")
    result = written(tmp_path, "compare_commits")
    assert [(s["side"], s["accepted"]) for s in result["steps"]] == [
        ("baseline", 8),
        ("current", 8),
    ]
    assert len(result["summary"]) == 1
