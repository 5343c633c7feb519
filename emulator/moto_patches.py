"""Every change the project makes to moto, Flask and werkzeug: one registry, one switch.

A patch replaces attributes of moto's (or werkzeug's) classes and modules, and is one of two
kinds. A ``fix`` corrects a behaviour of moto that differs from AWS's documented one
(``docs/moto-fixes.md``: each defect, its reproduction and its fix). A ``speed`` patch changes
only how fast moto answers (``benchmarks/results/SPEED_PATCHES.md``: what each buys). The
patches reach into those packages' private code, so they apply only to the versions pinned in
``requirements/local.txt`` (``PINNED``); any other installed version stops ``apply`` with its name.

``BLOG_MOTO_SPEED_PATCHES`` decides the speed patches where moto runs (moto's server process,
the tests' moto): ``on`` (the default), ``off``, or a comma-separated list of the speed patches
to apply. The fixes always apply.
"""

import importlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

PINNED = {"moto": "5.2.5", "werkzeug": "3.1.9", "flask": "3.1.3", "flask-cors": "6.0.5"}
SWITCH = "BLOG_MOTO_SPEED_PATCHES"
_MODULES = ("emulator.moto_fixes", "emulator.moto_codec", "emulator.moto_serving")
"""The modules whose import registers their patches, in the order the patches apply."""


@dataclass(frozen=True)
class Wrap:
    """A replacement made from the attribute it replaces (the original, or an earlier patch's)."""

    make: Callable[[Any], Any]


@dataclass(frozen=True)
class Patch:
    """``targets`` are (owner, attribute name, replacement or ``Wrap``); ``forget`` drops the
    patch's caches when it is removed."""

    name: str
    kind: Literal["fix", "speed"]
    targets: Callable[[], list[tuple[Any, str, Any]]]
    forget: Callable[[], None] = field(default=lambda: None)


_LOCK = threading.RLock()
_REGISTRY: dict[str, Patch] = {}
_MISSING = object()
_applied: list[tuple[Patch, list[tuple[Any, str, Any]]]] = []
"""Applied patches, in order, each with (owner, name, what it replaced or _MISSING)."""


def register(patch: Patch) -> Patch:
    _REGISTRY[patch.name] = patch
    return patch


def patches() -> dict[str, Patch]:
    """Every patch by name, in the order they apply."""
    for module in _MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


def check_versions() -> None:
    """Raise unless every pinned package is installed at its pinned version."""
    for package, expected in PINNED.items():
        try:
            found = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found = "none"
        if found != expected:
            raise RuntimeError(
                f"the moto patches need {package}=={expected} (requirements/local.txt), "
                f"but {package} {found} is installed: re-check emulator/moto_*.py against it "
                "before changing the pin"
            )


def speed_patches() -> set[str]:
    """The speed patches the switch asks for."""
    speed = {name for name, patch in patches().items() if patch.kind == "speed"}
    value = os.environ.get(SWITCH, "on").strip().lower()
    if value == "on":
        return speed
    if value == "off":
        return set()
    asked = {name.strip() for name in value.split(",") if name.strip()}
    if not asked <= speed:
        raise ValueError(
            f"{SWITCH}: no speed patch {sorted(asked - speed)}; known: {sorted(speed)}"
        )
    return asked


def applied_names() -> list[str]:
    return [patch.name for patch, _ in _applied]


def apply(*names: str) -> None:
    """Apply the patches named, or, with no name, every fix and the speed patches the switch
    asks for (idempotent: an applied patch is left as it is)."""
    check_versions()
    registry = patches()
    wanted = set(names) if names else {n for n, p in registry.items() if p.kind == "fix"}
    if not names:
        wanted |= speed_patches()
    if not wanted <= registry.keys():
        raise ValueError(f"no moto patch {sorted(wanted - registry.keys())}")
    with _LOCK:
        for name, patch in registry.items():
            if name in wanted and name not in applied_names():
                replaced = []
                for owner, attribute, replacement in patch.targets():
                    previous = vars(owner).get(attribute, _MISSING)
                    if isinstance(replacement, Wrap):
                        replacement = replacement.make(getattr(owner, attribute))
                    replaced.append((owner, attribute, previous))
                    setattr(owner, attribute, replacement)
                _applied.append((patch, replaced))


def remove() -> None:
    """Restore everything the patches replaced, latest first (a no-op if none is applied)."""
    with _LOCK:
        while _applied:
            patch, replaced = _applied.pop()
            for owner, attribute, previous in reversed(replaced):
                if previous is _MISSING:
                    delattr(owner, attribute)
                else:
                    setattr(owner, attribute, previous)
            patch.forget()


@contextmanager
def applied(*names: str) -> Iterator[None]:
    """``apply(*names)`` for the block; afterwards exactly the patches applied before it."""
    before = applied_names()
    apply(*names)
    try:
        yield
    finally:
        remove()
        if before:
            apply(*before)


@contextmanager
def unpatched() -> Iterator[None]:
    """moto as released, for the block; afterwards the patches applied before it."""
    before = applied_names()
    remove()
    try:
        yield
    finally:
        if before:
            apply(*before)
