"""The README runs as written: each of its `sh` and `python` blocks is run against a server of the
test's own, in the README's order (a block's shell variables carry into the next, as in one
terminal), or, when it needs what this machine lacks (a Docker engine), checked by `bash -n` only.

Placeholders are replaced from `PLACEHOLDERS`; a block that starts a server is stopped once the server
answers ready. A block the table `HOW` does not name fails the test, so a new block is run too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.servers import stop, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
README_BASE = "http://127.0.0.1:8000"

HOW = {
    "uv sync && uv run partners serve": "exempt: the two commands; the first is the server this test starts, "
    "the second the test command itself",
    "ADMIN_KEY=$(uv run partners create-admin-key": "run",
    'secret = open("data/webhook-secret")': "run",
    "# Admin: the CRM hears of every new and approved partner": "run",
    "from standardwebhooks import Webhook, WebhookVerificationError": "run",
    "export PARTNERS_DATABASE_URL=postgresql+asyncpg://": "postgres",
    "export FORWARDED_ALLOW_IPS=": "run",
    "docker build -t qalyptus-partners .": "lint: needs a Docker engine",
    "export POSTGRES_PASSWORD=": "lint: needs a Docker engine",
}
"""How each block is treated, by a line it starts with."""

PLACEHOLDERS = {
    "<whsec_ and 24 random bytes or more in base64>": "whsec_cmVhZG1lLWJsb2NrLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm",
    "<a Fernet key, see Configuration>": Fernet.generate_key().decode(),
    "<your SMTP server>": "smtp.readme.example.com",
}
"""What the README leaves to the reader, as the test fills it in (the URLs are the test's servers')."""


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    how: str


def _blocks() -> list[Block]:
    found = re.findall(r"^```(sh|python)\n(.*?)^```", README.read_text(), re.S | re.M)
    return [
        Block(language, text, next((h for start, h in HOW.items() if start in text), "unknown"))
        for language, text in found
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(**extra: str) -> dict[str, str]:
    """The machine's environment without any setting of ours: the README's commands start from none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERS_", "PROMETHEUS_"))}
    env.pop("FORWARDED_ALLOW_IPS", None)
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    return {**env, **extra}


# `uv run X` runs X from the project's environment, which is first on PATH here; curl fails on a 4xx.
PRELUDE = 'set -euo pipefail\nuv() { [ "$1" = run ] && shift; "$@"; }\ncurl() { command curl --fail-with-body "$@"; }\n'


def test_every_block_is_run_or_linted_on_purpose() -> None:
    blocks = _blocks()
    assert [b.text.splitlines()[0] for b in blocks if b.how == "unknown"] == []
    assert {b.how for b in blocks} >= {"run", "postgres"}


@pytest.fixture
def development_server() -> Iterator[tuple[str, Path, dict[str, str]]]:
    """The README's first command in a fresh folder: the embedded SQLite default, the development
    webhook secret made beside it."""
    folder = Path(tempfile.mkdtemp(prefix="partners-readme-"))
    # No worker: nothing is delivered to the README's example subscribers (no traffic leaves the machine).
    env = _environment(PARTNERS_PORT=str(_free_port()), PARTNERS_WORKER="off")
    process = subprocess.Popen(
        ["partners", "serve"], env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{env['PARTNERS_PORT']}"
    try:
        wait_until_ready(base, process)
        yield base, folder, env
    finally:
        stop(process)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_the_readmes_blocks_run_as_written(development_server: tuple[str, Path, dict[str, str]]) -> None:
    base, folder, env = development_server
    script = PRELUDE
    for block in _blocks():
        text = block.text.replace(README_BASE, base)
        for placeholder, value in PLACEHOLDERS.items():
            text = text.replace(placeholder, value)
        if block.how.startswith("lint"):
            checked = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stderr
        elif block.how == "run" and block.language == "sh":
            script += text + "\n"
        elif block.how == "run" and block.language == "python":
            # Python blocks print what to do next (a curl command) or define what a receiver runs.
            secret = (folder / "data" / "webhook-secret").read_text().strip()
            text = text.replace('"whsec_..."', repr(secret))
            ran = subprocess.run(
                [sys.executable, "-c", text], env=env, cwd=folder, capture_output=True, text=True, timeout=60
            )
            assert ran.returncode == 0, ran.stderr
            if ran.stdout.startswith("curl "):
                sent = subprocess.run(
                    ["bash", "-c", PRELUDE + ran.stdout.replace("curl -s", "curl -s -w '\\n%{http_code}'")],
                    env=env,
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert sent.returncode == 0, sent.stdout + sent.stderr
                assert sent.stdout.strip().endswith("202"), sent.stdout  # signed with the made secret: taken
    result = subprocess.run(["bash", "-c", script], env=env, cwd=folder, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status":"suspended"' in result.stdout and '"status":"active"' in result.stdout
    assert '"secret":"whsec_' in result.stdout  # the subscriptions made, their secrets shown once


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_postgres_block_migrates_and_serves(committing_database_url: str, backend: str) -> None:
    """The block "Running on Postgres" as written, on a database of this test's own; its server is stopped
    once it answers ready."""
    del backend
    [block] = [b for b in _blocks() if b.how == "postgres"]
    url = re.search(r"postgresql\+asyncpg://\S+", block.text)
    assert url is not None
    text = block.text.replace(url.group(0), committing_database_url)
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    assert "<" not in text, f"a placeholder of the README without a value here: {text}"
    port = str(_free_port())
    folder = Path(tempfile.mkdtemp(prefix="partners-readme-pg-"))
    process = subprocess.Popen(
        ["bash", "-c", PRELUDE + text],
        env=_environment(PARTNERS_PORT=port, PARTNERS_WORKER="off"),
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the shell and the server it starts: stopped together, by the shell's PID
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, within=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        stop(process)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
