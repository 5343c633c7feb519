"""The dependency groups: `make dev` installs the local stack's group alone, and the lock pins
every package any group names, at the group's own version."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"pytest", "hypothesis", "playwright", "matplotlib", "mutmut", "py-spy", "ruff", "mypy"}


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~! ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pins(path: Path) -> dict[str, str]:
    """A requirements file's pins by normalised name, its ``-r`` includes followed."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found |= pins((path.parent / line[3:].strip()).resolve())
        elif line:
            name, _, version = line.partition("==")
            found[_name(name)] = version.strip()
    return found


def test_the_local_stack_group_holds_no_development_tool() -> None:
    local = pins(ROOT / "requirements" / "local.txt")
    assert {"chalice", "moto", "boto3", "pydantic"} <= set(local)
    assert not DEV_TOOLS & set(local)


def test_every_group_pins_exact_versions_that_the_lock_agrees_with() -> None:
    lock = pins(ROOT / "requirements" / "lock.txt")
    groups = ["requirements.txt", *(f"requirements/{g}.txt" for g in ("local", "test", "bench"))]
    for group in [*groups, "requirements/mutants.txt"]:
        for name, version in pins(ROOT / group).items():
            assert version, f"{group}: {name} is not pinned with =="
            assert lock.get(name) == version, f"{group}: {name}=={version}, lock {lock.get(name)}"


def test_the_makefile_installs_the_local_group_for_dev_and_every_group_for_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    local_stage = makefile.split("$(LOCAL_INSTALLED):", 1)[1].split("\n\n", 1)[0]
    assert "-r requirements/local.txt" in local_stage
    assert "requirements/test.txt" not in local_stage
    assert re.search(r"^dev: install$", makefile, re.M)
    assert re.search(r"^lint: install-dev$", makefile, re.M)
