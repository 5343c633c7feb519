"""emulator.moto_patches: the version guard, the speed switch, and apply/remove."""

import importlib.metadata
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue

from emulator import moto_patches
from emulator.template import ROOT

FIXES = {"dynamodb-transactions"}


@pytest.fixture(autouse=True)
def nothing_applied() -> Iterator[None]:
    """Each test starts and ends on moto as released."""
    with moto_patches.unpatched():
        yield


def pinned_in_requirements() -> dict[str, str]:
    text = (ROOT / "requirements" / "local.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$", text, re.MULTILINE)
    return {name.lower(): version for name, version in pins}


def test_the_guard_pins_what_requirements_pin_and_what_is_installed() -> None:
    pins = pinned_in_requirements()
    assert {package: pins[package] for package in moto_patches.PINNED} == moto_patches.PINNED
    moto_patches.check_versions()  # the installed versions pass


def installed_but(package: str, version: str) -> Callable[[str], str]:
    real = importlib.metadata.version
    return lambda name: version if name == package else real(name)


@pytest.mark.parametrize("package", ["moto", "werkzeug", "flask", "flask-cors"])
def test_applying_on_another_version_fails_naming_the_package_and_both_versions(
    monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    # GIVEN one pinned package installed at another version
    monkeypatch.setattr(importlib.metadata, "version", installed_but(package, "9.9.9"))
    expected = moto_patches.PINNED[package]
    # WHEN the patches are applied THEN they refuse, naming it, what was found and what is pinned
    with pytest.raises(RuntimeError, match=rf"{package}=={re.escape(expected)}.*{package} 9\.9\.9"):
        moto_patches.apply()
    assert moto_patches.applied_names() == []


def test_applying_without_a_pinned_package_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(RuntimeError, match=r"moto==.*moto none is installed"):
        moto_patches.apply()


def test_every_patch_is_a_fix_or_a_speed_patch() -> None:
    kinds = {name: patch.kind for name, patch in moto_patches.patches().items()}
    assert {name for name, kind in kinds.items() if kind == "fix"} == FIXES
    assert set(kinds.values()) == {"fix", "speed"}


@pytest.mark.parametrize(
    ("switch", "speed"),
    [
        (None, "all"),
        ("on", "all"),
        ("off", set()),
        ("OFF", set()),
        ("codec, dispatch-cache", {"codec", "dispatch-cache"}),
    ],
)
def test_the_switch_chooses_the_speed_patches_and_the_fixes_always_apply(
    monkeypatch: pytest.MonkeyPatch, switch: str | None, speed: str | set[str]
) -> None:
    every = {n for n, p in moto_patches.patches().items() if p.kind == "speed"}
    if switch is None:
        monkeypatch.delenv(moto_patches.SWITCH, raising=False)
    else:
        monkeypatch.setenv(moto_patches.SWITCH, switch)
    wanted = every if speed == "all" else set(speed)
    with moto_patches.applied():
        assert set(moto_patches.applied_names()) == FIXES | wanted


def test_an_unknown_speed_patch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(moto_patches.SWITCH, "codec,turbo")
    with pytest.raises(ValueError, match="turbo"):
        moto_patches.apply()


def test_remove_restores_every_attribute_and_applied_restores_what_was_applied() -> None:
    # GIVEN moto's own methods, including ones two patches wrap in turn, and a property
    owners = [(DynamoDBBackend, "put_item"), (Table, "query"), (Queue, "messages")]
    own = [vars(owner).get(name) for owner, name in owners]
    # WHEN every patch is applied, then, inside, only the fix
    with moto_patches.applied(*moto_patches.patches()):
        assert [vars(owner).get(name) for owner, name in owners] != own
        with moto_patches.unpatched(), moto_patches.applied(*FIXES):
            assert moto_patches.applied_names() == sorted(FIXES)
        # THEN leaving the inner block brings every patch back
        assert moto_patches.applied_names() == list(moto_patches.patches())
    # AND leaving the outer one leaves moto's own methods, the very objects
    assert [vars(owner).get(name) for owner, name in owners] == own
    assert moto_patches.applied_names() == []


def test_the_makefile_passes_its_switch_to_every_command() -> None:
    makefile = (Path(ROOT) / "Makefile").read_text()
    assert f"export {moto_patches.SWITCH} := $(SPEED_PATCHES)" in makefile
