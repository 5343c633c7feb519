"""The docs stay a newcomer's: a short README, links that resolve inside the repository, and
nothing pointing outside it."""

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(  # noqa: S603
        ["git", "ls-files", "-z", *patterns],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_the_readme_is_a_newcomers_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for command in ("make dev", "make test"):
        assert command in readme


def test_every_relative_link_in_the_docs_resolves_to_a_file_of_the_repository() -> None:
    broken = []
    for page in tracked("*.md"):
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() or ROOT not in path.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_nothing_outside_the_tests_points_outside_the_repository() -> None:
    outside = [
        str(path.relative_to(ROOT))
        for path in tracked()
        if path.is_file()
        and path.relative_to(ROOT).parts[0] != "tests"
        and path.suffix not in {".png", ".json"}
        and "../shared" in path.read_text(errors="ignore")
    ]
    assert outside == []


def test_the_cost_in_the_scaling_model_is_the_cost_benchmarks_last_result() -> None:
    # GIVEN the cost benchmark's last result (python -m benchmarks.cost)
    result = json.loads((ROOT / "benchmarks" / "results" / "cost.json").read_text())
    cost = result["per_million_posts"]
    write_path, floor = sum(cost["write_path"].values()), sum(cost["floor"].values())
    reads, fixed = sum(cost["reads"].values()), sum(cost["fixed"].values())
    requests = cost["write_path"]["api"]
    # THEN docs/scaling.md states its figures and names its biggest line item
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    figures = {
        "write path": write_path,
        "its users' requests": requests,
        "write path without them": write_path - requests,
        "floor": floor,
        "reads": reads,
        "reads' API requests": cost["reads"]["api"],
        "fixed share": fixed,
        "a month": sum(result["monthly"].values()),
        "all in": write_path + reads + fixed,
        "biggest line item": cost["write_path"]["dynamodb_writes"],
        "index writes": cost["write_path"]["dynamodb_index_writes"],
        "the publisher's table writes": cost["by_actor"]["function:outbox_publisher"][
            "dynamodb_writes"
        ],
        "seen marks": cost["by_actor"]["seen marks at the design load"]["dynamodb_writes"],
        "with a batching window": cost["with_batching_window"],
    }
    missing = {name: f"${value:,.2f}" for name, value in figures.items()}
    missing = {name: text for name, text in missing.items() if text not in scaling}
    assert missing == {}
    assert f"{(write_path - requests) / floor:.1f} times its floor" in scaling
    biggest = max([*cost["write_path"].values(), *cost["reads"].values(), *cost["fixed"].values()])
    assert biggest == cost["write_path"]["dynamodb_writes"]
    assert "The biggest line item is DynamoDB write units on the write path" in scaling
