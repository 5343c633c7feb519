"""The docs stay a newcomer's: a short README, links that resolve inside the repository, and
nothing pointing outside it."""

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
