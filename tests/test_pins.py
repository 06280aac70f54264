"""The installed environment is exactly the one pinned in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from scripts import pins

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_environment_matches_the_pins() -> None:
    assert pins.differences() == []


def test_every_declared_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = project["project"]["dependencies"] + project["dependency-groups"]["dev"]
    pinned = {re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower() for pin in pins.pins()}
    names = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=~!;]", dep)[0].strip()).lower() for dep in declared}
    assert names - pinned == set()
    assert all(re.fullmatch(r"[a-z0-9-]+==[^\s;]+( ; .+)?", pin) for pin in pins.pins())


def test_the_pins_hold_no_address() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert "://" not in text.split("constraint-dependencies", 1)[1].split("]", 1)[0]
