"""compose.yaml, the production shape on one host, is a valid Compose file whose services start in
order and carry every setting production requires.

No Docker engine runs here: Debian's `docker-compose` checks the file against the Compose schema and
resolves it (`config`), which needs none. CI installs it (.ci/run); elsewhere the test is skipped
when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from app.settings import Settings
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
REQUIRED = {
    "POSTGRES_PASSWORD": "pg-password-for-compose",
    "PARTNERS_WEBHOOK_SECRETS": "whsec_" + "c2VjcmV0LWZvci1jb21wb3NlLXRlc3Qtb25seS0xMjM0",
    "PARTNERS_SECRETS_KEY": Fernet.generate_key().decode(),
    "PARTNERS_MAIL": "off",
}


def _compose(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = shutil.which("docker-compose")
    if command is None:
        if IN_CI:
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)", pytrace=False)
        pytest.skip("docker-compose is not installed")
    env = {key: value for key, value in os.environ.items() if key not in REQUIRED and not key.startswith("PARTNERS_")}
    return subprocess.run(
        [command, "--project-directory", str(ROOT), "-f", str(COMPOSE), *args],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = _compose("config", environment=REQUIRED)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_compose_yaml_is_valid_and_starts_in_order(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    health = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(health)
    assert services["migrate"]["command"] == ["partners", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["api"]["command"][:2] == ["partners", "serve"]
    assert services["api"]["environment"]["PARTNERS_WORKER"] == "off", "the worker service applies events"
    assert services["worker"]["command"] == ["partners", "worker"]
    assert {"published": 8000, "target": 8000} in services["api"]["ports"]


def test_every_service_of_ours_has_the_settings_production_requires(resolved: dict[str, Any]) -> None:
    for name in ("migrate", "api", "worker"):
        environment = resolved["services"][name]["environment"]
        assert environment["PARTNERS_ENVIRONMENT"] == "production"
        assert environment["PARTNERS_DATABASE_URL"] == (
            f"postgresql+asyncpg://partners:{REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/partners"
        )
        values = {
            key.removeprefix("PARTNERS_").lower(): value
            for key, value in environment.items()
            if key.startswith("PARTNERS_")
        }
        settings = Settings(**values)
        settings.refuse_placeholder_secrets()  # what `partners serve` and `partners worker` check first
        assert settings.environment == "production"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_a_required_setting(missing: str) -> None:
    result = _compose("config", "-q", environment={k: v for k, v in REQUIRED.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr
