"""A bad setting stops every command with "configuration refused", the setting, the fix and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.settings import Settings, withheld

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        (
            "PARTNERS_DATABASE_URL",
            "postgres://partners:secret@db:5432/partners",
            "PARTNERS_DATABASE_URL: `postgres://` is not a driver the service runs on; write the same URL as "
            "postgresql+asyncpg://user:password@host:5432/db.",
        ),
        (
            "PARTNERS_DATABASE_URL",
            "sqlite:///data/partners.db",
            "PARTNERS_DATABASE_URL: `sqlite://` is not a driver the service runs on; write "
            "sqlite+aiosqlite:///path/to/file.db.",
        ),
        (
            "PARTNERS_PORT",
            "eighty",
            "PARTNERS_PORT (given 'eighty'): input should be a valid integer, unable to parse string as an "
            "integer. Fix: set PARTNERS_PORT to a value that meets this, or unset it for the default (README, "
            "Configuration).",
        ),
        (
            "PARTNERS_DB_POOL_SIZE",
            "0",
            "PARTNERS_DB_POOL_SIZE (given '0'): input should be greater than or equal to 1. Fix: set "
            "PARTNERS_DB_POOL_SIZE to a value that meets this, or unset it for the default (README, Configuration).",
        ),
        (
            "PARTNERS_LOG_LEVEL",
            "verbose",
            "PARTNERS_LOG_LEVEL (given 'verbose'): input should be 'debug', 'info', 'warning' or 'error'. Fix: set "
            "PARTNERS_LOG_LEVEL to a value that meets this, or unset it for the default (README, Configuration).",
        ),
        (
            "PARTNERS_BRAND_ASSETS_URL",
            "ftp://files.example/brand",
            "PARTNERS_BRAND_ASSETS_URL (given 'ftp://files.example/brand'): URL scheme should be 'http' or 'https'. "
            "Fix: set PARTNERS_BRAND_ASSETS_URL to a value that meets this, or unset it for the default (README, "
            "Configuration).",
        ),
    ],
)
def test_a_bad_setting_is_refused_with_its_fix(
    variable: str, value: str, explanation: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(["migrate"]) == 2
    assert capsys.readouterr().err == f"configuration refused:\n{explanation}\n"


def test_the_database_password_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARTNERS_DATABASE_URL", "postgres://partners:hunter2@db/partners")
    assert cli.main(["serve"]) == 2
    assert "hunter2" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        (
            "PARTNERS_SECRETS_KEY",
            "k3y-that-is-not-fernet-0123456789abcdef",
            "PARTNERS_SECRETS_KEY: must hold Fernet keys (32 url-safe base64-encoded bytes), comma-separated.",
        ),
        (
            "PARTNERS_WEBHOOK_SECRETS",
            "whsec_not*base64*at*all",
            "PARTNERS_WEBHOOK_SECRETS: holds a secret that is not valid base64",
        ),
    ],
)
def test_a_refused_secret_is_never_echoed(
    variable: str, value: str, explanation: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuration refused:\n{explanation}")
    for fragment in (value, value[1:], value[:-1], value[6:]):  # nor most of it
        assert fragment not in err


def test_every_secret_setting_is_withheld_by_its_type() -> None:
    secrets = {
        name
        for name, info in Settings.model_fields.items()
        if "SecretStr" in str(info.annotation) or name == "database_url"
    }
    assert secrets >= {"webhook_secrets", "secrets_key", "metrics_token", "database_url"}
    assert {name for name in Settings.model_fields if withheld(name)} == secrets


def test_the_command_prints_no_traceback(tmp_path: Path) -> None:
    environment = {**os.environ, "PARTNERS_DATABASE_URL": "postgres://partners@db:5432/partners"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "configuration refused:\nPARTNERS_DATABASE_URL: `postgres://` is not a driver the service runs on; write "
        "the same URL as postgresql+asyncpg://user:password@host:5432/db.\n"
    )
