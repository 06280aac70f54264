"""Bounds the server enforces before the application sees a request, on `partners serve` itself."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import WEBHOOK_SECRET
from tests.servers import stop, wait_until_ready

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
MAX_HEADER_BYTES = 16 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int, subprocess.Popen[str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "PARTNERS_ENVIRONMENT": "test",
        "PARTNERS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'partners.db'}",
        "PARTNERS_MIGRATE_ON_START": "true",
        "PARTNERS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "PARTNERS_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "PARTNERS_WORKER": "off",
        "PARTNERS_LOG_LEVEL": "error",
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    process = subprocess.Popen(
        [str(VENV_BIN / "partners"), "serve", "--port", str(port), "--workers", "1", "--no-access-log"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process)
        yield base, port, process
    finally:
        stop(process)


def _resident_bytes(pid: int) -> int:
    for status_line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if status_line.startswith("VmRSS:"):
            return int(status_line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_huge_header_line_is_refused_431_before_it_is_read_whole(
    served: tuple[str, int, subprocess.Popen[str]],
) -> None:
    base, port, process = served
    assert httpx.get(f"{base}/health/live").status_code == 200
    resident_before = _resident_bytes(process.pid)
    header_line = 24 * 1024 * 1024  # what the client means to send: a 24 MiB header line
    chunk = b"a" * (64 * 1024)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
        while sent < header_line:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
        while True:
            try:
                received = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not received:
                break
            answer += received
    # Refused once the head passed its bound, long before the line's end was sent.
    assert sent < 1024 * 1024, sent
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "headers_too_large"
    # The server held no more than the bound: nothing near the line's size stayed with it.
    assert _resident_bytes(process.pid) - resident_before < 4 * 1024 * 1024
    assert httpx.get(f"{base}/health/live").status_code == 200


def test_the_head_bound_counts_each_request_apart_and_never_the_body(
    served: tuple[str, int, subprocess.Popen[str]],
) -> None:
    base, _, _ = served
    with httpx.Client(base_url=base, timeout=10) as client:
        # Keep-alive: five requests on one connection, each with headers near the bound.
        for n in range(5):
            near = client.get("/health/live", headers={"X-Padding": "p" * (MAX_HEADER_BYTES - 1024), "X-N": str(n)})
            assert near.status_code == 200, near.text
        # A body is not part of the head, however large (up to the body's own limit).
        body = json.dumps({"company": "B" * (400 * 1024)}).encode()
        posted = client.post("/v1/partners", content=body, headers={"content-type": "application/json"})
        assert posted.status_code == 422, posted.text
        # Headers over PARTNERS_MAX_HEADER_BYTES but within the head's allowance: the application's 431.
        over = client.get("/health/live", headers={"X-Padding": "p" * (MAX_HEADER_BYTES + 1024)})
        assert over.status_code == 431
        assert over.json()["code"] == "headers_too_large" and over.json()["instance"] == "/health/live"
