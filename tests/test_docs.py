"""The repository documents its own rules: every rule test is listed under its rule in docs/, and every
test named there exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "program-rules.md"


def _defined_tests() -> dict[str, str]:
    """test name -> its file, for every test in the suite."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.MULTILINE):
            found[name] = str(path.relative_to(ROOT))
    return found


def _documented() -> dict[str, list[tuple[str, str]]]:
    """rule id -> the (test, file) pairs listed under it."""
    rules: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in RULES.read_text().splitlines():
        heading = re.match(r"- \*\*(R\d+a?|E\d+)\b", line)
        if heading:
            current = heading.group(1).upper()
            rules[current] = []
        elif current and line.startswith("  - Tests: "):
            rules[current] += re.findall(r"`(test_\w+)` \(([^)]+)\)", line)
    return rules


def test_every_rule_test_is_listed_under_its_rule() -> None:
    documented = _documented()
    missing = [
        (name, rule_id)
        for name in _defined_tests()
        if (match := re.match(r"test_(r\d+a?|e\d+)_", name))
        and (name, _defined_tests()[name]) not in documented.get((rule_id := match.group(1).upper()), [])
    ]
    assert missing == []


def test_every_test_named_in_the_rules_exists_where_it_says() -> None:
    defined = _defined_tests()
    listed = [pair for pairs in _documented().values() for pair in pairs]
    assert listed, "docs/program-rules.md names no test"
    assert [(name, path) for name, path in listed if defined.get(name) != path] == []


def test_the_readme_points_to_the_rules_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/program-rules.md)" in readme
    assert "../shared" not in readme and "../shared" not in (ROOT / "CONTRIBUTING.md").read_text()
