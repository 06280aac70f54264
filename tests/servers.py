"""Servers that tests start as processes."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest


def wait_until_ready(base: str, process: subprocess.Popen[str], *, within: float = 60) -> None:
    """Poll `/health/ready` until the server answers 200; fail with its output if it dies or never does."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            stdout, stderr = process.communicate(timeout=10)
            pytest.fail(f"the server did not become ready:\n{stdout or ''}{stderr or ''}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a process a test started, by its PID: SIGTERM (a server finishes what it is doing), then
    SIGKILL if it has not ended within 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
