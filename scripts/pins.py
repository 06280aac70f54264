"""Exact pins for every resolved package, kept in `[tool.uv] constraint-dependencies` of pyproject.toml.

`uv.lock` stays out of git (it records download addresses), so the pins are what makes two installs
of one commit identical. The dependencies keep their ranges; the constraints fix what uv picks.

    uv run python scripts/pins.py refresh   # resolve afresh within the ranges and rewrite the pins
    uv run python scripts/pins.py check     # fail when the installed environment differs from them

`refresh` resolves in a scratch copy of pyproject.toml without the old pins (so it moves to the newest
versions the ranges allow), exports the resolution without hashes or addresses, and writes one
`name==version` line (with its environment marker when it has one) per package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
_BLOCK = re.compile(r"^constraint-dependencies = \[\n(?:.*\n)*?\]\n", re.MULTILINE)
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;]+)\s*(?:;\s*(?P<marker>.+))?$"
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name() -> str:
    with PYPROJECT.open("rb") as handle:
        name: str = tomllib.load(handle)["project"]["name"]
    return _normalise(name)


def pins() -> list[str]:
    with PYPROJECT.open("rb") as handle:
        listed: list[str] = tomllib.load(handle).get("tool", {}).get("uv", {}).get("constraint-dependencies", [])
    return listed


def _without_pins(text: str) -> str:
    return _BLOCK.sub("", text)


def _with_pins(text: str, lines: list[str]) -> str:
    block = "constraint-dependencies = [\n" + "".join(f'    "{line}",\n' for line in lines) + "]\n"
    if _BLOCK.search(text):
        return _BLOCK.sub(lambda _m: block, text)
    if "\n[tool.uv]\n" not in text:
        raise SystemExit("pyproject.toml has no [tool.uv] table to hold the pins")
    return text.replace("\n[tool.uv]\n", "\n[tool.uv]\n" + block, 1)


def resolve() -> list[str]:
    """Every package uv resolves for the project's ranges, runtime and dev, as `name==version[ ; marker]`."""
    with tempfile.TemporaryDirectory(prefix="partners-pins-") as scratch:
        work = Path(scratch)
        (work / "pyproject.toml").write_text(_without_pins(PYPROJECT.read_text()))
        shutil.copy(ROOT / "README.md", work / "README.md")
        for package in ("app", "bench"):
            (work / package).mkdir()
            (work / package / "__init__.py").write_text("")
        uv = shutil.which("uv")
        if uv is None:
            raise SystemExit("uv is not on PATH")
        subprocess.run([uv, "lock", "--quiet", "--directory", str(work)], check=True)  # noqa: S603
        exported = subprocess.run(  # noqa: S603
            [
                uv,
                "export",
                "--quiet",
                "--directory",
                str(work),
                "--frozen",
                "--all-groups",
                "--no-hashes",
                "--no-header",
                "--no-annotate",
                "--no-emit-project",
                "--format",
                "requirements.txt",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    lines = []
    for raw in exported.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue  # comments, and any index option: no address goes into the committed file
        match = _PIN.match(line)
        if match is None:
            raise SystemExit(f"unexpected line in uv's export: {line!r}")
        pin = f"{_normalise(match['name'])}=={match['version']}"
        if match["marker"]:
            pin += f" ; {match['marker'].strip()}"
        lines.append(pin.replace('"', "'"))
    return sorted(set(lines), key=lambda pin: (_normalise(pin.split("==")[0]), pin))


def refresh() -> int:
    lines = resolve()
    PYPROJECT.write_text(_with_pins(PYPROJECT.read_text(), lines))
    print(f"pinned {len(lines)} packages in pyproject.toml; run `uv sync` to install them", file=sys.stderr)
    return 0


def differences() -> list[str]:
    """What the running environment has that the pins do not say, one sentence each."""
    from importlib import metadata

    from packaging.markers import Marker

    expected: dict[str, str] = {}
    for pin in pins():
        match = _PIN.match(pin)
        if match is None:
            return [f"pin {pin!r} is not of the form name==version"]
        if match["marker"] and not Marker(match["marker"]).evaluate():
            continue
        expected[_normalise(match["name"])] = match["version"]
    installed = {_normalise(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}
    installed.pop(_project_name(), None)
    problems = []
    for name, version in sorted(installed.items()):
        if name not in expected:
            problems.append(f"{name} {version} is installed but not pinned")
        elif expected[name] != version:
            problems.append(f"{name} {version} is installed but pinned at {expected[name]}")
    problems += [
        f"{name} is pinned at {version} but not installed"
        for name, version in sorted(expected.items())
        if name not in installed
    ]
    return problems


def check() -> int:
    problems = differences()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            "the environment differs from the pins: run `uv sync` (or `uv run python scripts/pins.py refresh`)",
            file=sys.stderr,
        )
        return 1
    print(f"the environment matches the {len(pins())} pins", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    commands = {"refresh": refresh, "check": check}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python scripts/pins.py refresh|check", file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
