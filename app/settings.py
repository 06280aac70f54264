"""Service settings, read from the environment (prefix ``PARTNERS_``).

Only how the service runs lives here. The rules of the program (time zone, windows, rates)
are versioned program terms kept in the database, never settings.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-webhook-secret"})
DEVELOPMENT_SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name, not a secret
DEFAULT_DATA_DIR = Path("data")


class Withheld:
    """Marks a setting that is not a `SecretStr` but whose value may hold one (a URL with a password):
    its value is never echoed back, like a secret's."""


WITHHELD = Withheld()


def default_database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'partners.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARTNERS_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    """`production` refuses placeholder secrets and does not migrate a Postgres database on start."""

    database_url: Annotated[str, WITHHELD] = Field(default_factory=default_database_url)
    """SQLAlchemy async URL: `sqlite+aiosqlite:///path.db` or `postgresql+asyncpg://user@host/db`."""

    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Signing secrets of the store's webhooks, `whsec_<base64>` (Standard Webhooks), comma-separated;
    several allow rotation. Required in production; elsewhere `partners serve` makes one at first
    start and keeps it beside the SQLite file (`development_webhook_secret`)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] | None = None
    """`json` (one object per line) or `text`. Default: `json` in production, `text` otherwise."""

    migrate_on_start: bool | None = None
    """Apply migrations when the server starts. Default: yes on SQLite, no on Postgres."""

    db_pool_size: int = Field(default=20, ge=1, le=200)

    metrics_token: SecretStr | None = None
    """When set, `/metrics` answers only `Authorization: Bearer <this token>`."""

    metrics_dir: Path | None = None
    """Where the workers of `partners serve` share their metrics; default: a fresh temporary directory."""

    server_processes: int = Field(default=1, ge=1, le=64)
    """uvicorn worker processes of `partners serve` (its `--workers` overrides it)."""

    worker: Literal["on", "off"] = "on"
    """`on`: each server process also runs a worker (store events, scheduled jobs); `off` when workers
    run apart (`partners worker`) or in tests, which call `drain()`."""
    apply_store_events: bool = True
    """Whether this process's worker applies store events (off: intake only, e.g. to measure it)."""
    worker_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    """How long an idle worker waits before looking for work again."""
    worker_lease_seconds: int = Field(default=30, ge=1, le=3600)
    """How long a worker's claim on the store-event applier lasts without renewal: after a crash,
    another worker takes over once it has passed."""
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """`partners worker` serves its own Prometheus metrics on this port (at `/metrics`, bound to
    `PARTNERS_HOST`); none when unset. A server process's worker counts in the server's `/metrics`."""
    worker_batch: int = Field(default=100, ge=1, le=5000)
    """Store events applied per transaction (each in its own savepoint)."""

    secrets_key: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Fernet keys (`Fernet.generate_key()`), comma-separated, that encrypt stored secrets (webhook
    subscriptions', partners' IBANs and BICs); the first encrypts, every one decrypts (key rotation).
    Required in production; elsewhere a fixed development key is used when none is set."""
    outbound_allow_private: bool | None = None
    """Let outbound webhooks go to `http` and to addresses that are not globally routable (loopback,
    private networks). Default: yes in development and test (a local receiver), no in production."""

    registration_rate_limit: int = Field(default=10, ge=1)
    """Partner registrations accepted per client address and window."""
    registration_rate_window_seconds: int = Field(default=3600, ge=1)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins (`https://www.example.com`) whose pages may read the public directory, comma-separated,
    or `*` for any; none by default."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body accepted (413 beyond, answered before the rest is read)."""
    max_import_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest body of `/v1/customer-imports*` (a CSV of the vendor's customers) and of the bulk
    statement routes (`/v1/statements/bulk-*`, up to 10,000 statements)."""
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    """Largest total size of a request's header names and values (431 beyond)."""

    failed_auth_limit: int = Field(default=100, ge=1)
    """Requests refused for a bad or missing API key per client address and minute (429 beyond)."""

    brand_assets_url: HttpUrl | None = None
    """Where the vendor keeps its brand assets (wordmark, logos) for partners, e.g. a shared folder: the
    policy points partners to it, so it is answered with the program's terms (`brand_assets_url`)."""

    payout_hold_days: int = Field(default=7, ge=0, le=365)
    """Days a partner's payouts are held after its bank details change (a guard against a taken-over
    account); 0 holds none. Read when the change is made: the hold it set keeps its end."""

    payout_debtor_name: str | None = Field(default=None, max_length=70)
    """The account holder payout runs pay from (the vendor), as the bank knows it. A run with a
    transfer to make is refused until the debtor name, IBAN and BIC are set."""
    payout_debtor_iban: str | None = None
    payout_debtor_bic: str | None = None
    payout_debtor_street: str | None = Field(default=None, max_length=70)
    payout_debtor_postal_code: str | None = Field(default=None, max_length=16)
    payout_debtor_city: str | None = Field(default=None, max_length=35)
    payout_debtor_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

    vendor_name: str = Field(default="Qalyptus SAS", max_length=200)
    """The buyer on the self-billed invoices: the vendor's legal name, address, country and VAT id."""
    vendor_address: str | None = Field(default=None, max_length=300)
    vendor_country: str = Field(default="FR", pattern=r"^[A-Z]{2}$")
    vendor_vat_id: str | None = Field(default=None, max_length=64)
    vat_rates: dict[str, int] = Field(default_factory=lambda: {"FR": 2000})
    """VAT rates by country (ISO 3166-1 alpha-2) in basis points (2000: 20 %), as JSON: an invoice of a
    VAT-registered partner established in the vendor's country charges that country's rate."""
    invoice_series: str = Field(default="SB", pattern=r"^[A-Z0-9]{1,8}$")
    """The series of the self-billed invoices: numbered `<series>-<year>-<000001>` without gaps per year."""
    render_invoice_documents: bool = True
    """Whether this process's worker renders invoice PDFs (off: another worker does; tests render when
    they ask)."""
    invoice_render_processes: int = Field(default=2, ge=1, le=64)
    """Processes each worker renders invoice PDFs in (a pool beside the event loop, so rendering never
    holds up the application of store events)."""

    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^/\s]+(/[^\s]*)?$")
    """Where people reach the service: the links of invitations and password resets start with it."""
    password_hash_profile: Literal["standard", "cheap"] = "standard"  # noqa: S105 - a cost profile
    """`standard`: Argon2id with pwdlib's recommended cost. `cheap` is for tests alone."""
    session_idle_minutes: int = Field(default=60, ge=1, le=24 * 60)
    """A browser session ends after this long without a request."""
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    """A browser session ends this long after sign-in, however active."""
    invitation_valid_days: int = Field(default=7, ge=1, le=60)
    reset_valid_minutes: int = Field(default=60, ge=5, le=24 * 60)
    sign_in_limit: int = Field(default=5, ge=1, le=1000)
    """Failed sign-ins per account, and five times as many per address, in `sign_in_window_seconds`."""
    sign_in_window_seconds: int = Field(default=900, ge=1, le=86_400)
    reset_request_limit: int = Field(default=3, ge=1, le=1000)
    """Password-reset requests per address (e-mail) and per client in `sign_in_window_seconds`."""
    require_second_factor: bool = False
    """Vendor users sign in with a TOTP code (their first sign-in sets it up)."""

    notify_hole_grace_seconds: float = Field(default=60.0, ge=0, le=3600)
    """How long the notifier waits at a gap in the event log (a transaction still under way may fill it)
    before reading past it."""
    mail: Literal["smtp", "folder", "off"] | None = None
    """`smtp`: sent through the SMTP settings below; `folder`: written to `mail_dir` and logged (the
    default outside production); `off`: not sent at all, said on start and in every mail-log answer.
    Production refuses to start without SMTP settings unless this is `off`."""
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "implicit", "none"] = "starttls"
    """`implicit` (SMTPS, usually port 465), `starttls` (usually 587), or `none` (a local relay only)."""
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = Field(default="Qalyptus Partner Program <partners@localhost>", max_length=300)
    mail_dir: Path | None = None
    """Where `folder` mail goes; default `mail/` beside the SQLite file (the data folder on Postgres)."""

    idempotency_lease_seconds: int = Field(default=60, ge=1)
    """How long an `Idempotency-Key` stays claimed by a request that never finished (a killed
    worker); a retry after that takes the key over."""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower()
        if scheme in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
            raise ValueError(
                f"`{scheme}://` is not a driver the service runs on; write the same URL as "
                "postgresql+asyncpg://user:password@host:5432/db"
            )
        if scheme == "sqlite":
            raise ValueError(
                "`sqlite://` is not a driver the service runs on; write sqlite+aiosqlite:///path/to/file.db"
            )
        if scheme not in {"postgresql+asyncpg", "sqlite+aiosqlite"}:
            raise ValueError(
                "write postgresql+asyncpg://user:password@host:5432/db or sqlite+aiosqlite:///path/to/file.db"
            )
        return value

    @field_validator("mail", "smtp_host", "smtp_username", "smtp_password", "mail_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty value (`PARTNERS_SMTP_HOST=`, as compose passes an unset one) is no value."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secrets", "secrets_key", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """The list settings are written comma-separated in the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """An origin is a scheme, a host and maybe a port; a browser sends it without a path, so one
        written with a path (or a trailing slash) would never match."""
        for origin in value:
            if origin == "*":
                continue
            scheme, separator, rest = origin.partition("://")
            if scheme not in {"http", "https"} or not separator or not rest or "/" in rest or "*" in rest:
                raise ValueError(
                    f"{origin!r} is not an origin; write each as scheme://host[:port] with no path, "
                    "e.g. https://www.example.com, comma-separated, or * for any"
                )
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _whsec_only(cls, value: list[SecretStr]) -> list[SecretStr]:
        """Only `whsec_<base64>`: a plain string would be read as its UTF-8 bytes by one reader and as
        base64 by the reference library, so the store and the service would sign differently."""
        from app.domain.webhooks import whsec_problem

        for secret in value:
            problem = whsec_problem(secret.get_secret_value())
            if problem:
                raise ValueError(f"PARTNERS_WEBHOOK_SECRETS holds a secret that {problem}")
        return value

    @field_validator("secrets_key")
    @classmethod
    def _fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        from cryptography.fernet import Fernet

        for key in value:
            try:
                Fernet(key.get_secret_value().encode())
            except (ValueError, TypeError):
                raise ValueError(
                    "PARTNERS_SECRETS_KEY must hold Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
                ) from None
        return value

    @property
    def allow_private_targets(self) -> bool:
        if self.outbound_allow_private is not None:
            return self.outbound_allow_private
        return self.environment != "production"

    def refuse_placeholder_secrets(self) -> None:
        """Production serves only with real webhook secrets; other commands (migrate, keys) need none."""
        if self.environment == "production":
            if not self.webhook_secrets:
                raise ValueError("PARTNERS_WEBHOOK_SECRETS must be set in production")
            for secret in self.webhook_secrets:
                key = base64.b64decode(secret.get_secret_value().removeprefix("whsec_"))
                if key.lower().decode(errors="replace") in PLACEHOLDER_SECRETS or len(key) < 24:
                    raise ValueError(
                        "PARTNERS_WEBHOOK_SECRETS holds a placeholder or a secret of fewer than "
                        "24 bytes; production refuses to start with it"
                    )
            if not self.secrets_key:
                raise ValueError("PARTNERS_SECRETS_KEY must be set in production (it encrypts stored secrets)")
            if self.mail != "off" and not self.smtp_host:
                raise ValueError(
                    "PARTNERS_SMTP_HOST must be set in production (with PARTNERS_SMTP_PORT, _TLS, _USERNAME, "
                    "_PASSWORD and PARTNERS_MAIL_FROM), or mail turned off with PARTNERS_MAIL=off"
                )

    @property
    def mail_mode(self) -> Literal["smtp", "folder", "off"]:
        if self.mail is not None:
            return self.mail
        return "smtp" if self.smtp_host else ("off" if self.environment == "production" else "folder")

    @property
    def mail_folder(self) -> Path:
        if self.mail_dir is not None:
            return self.mail_dir
        if self.database_url.startswith("sqlite+aiosqlite:///"):
            return Path(self.database_url.removeprefix("sqlite+aiosqlite:///")).parent / "mail"
        return DEFAULT_DATA_DIR / "mail"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate_on_start(self) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        return self.is_sqlite

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level.upper()]


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_holds_secret(argument) for argument in get_args(annotation))


def withheld(field: str) -> bool:
    """Whether a setting's value is never echoed back: a secret by its type (`SecretStr`, alone or in a
    list or an optional), or a value marked `Withheld`. A secret added later is withheld with no list to
    keep up."""
    info = Settings.model_fields.get(field)
    if info is None:
        return True  # not a setting of ours: nothing says it is harmless to print
    return _holds_secret(info.annotation) or any(isinstance(meta, Withheld) for meta in info.metadata)


def refusal(exc: ValidationError) -> str:
    """Each refused setting as `PARTNERS_X: what is wrong; the fix`, one per line, values of secrets withheld."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = f"PARTNERS_{field.upper()}" if field else "the environment"
        message = str(error["msg"]).removeprefix("Value error, ")
        given = "" if withheld(field) or "input" not in error else f" (given {error['input']!r})"
        fix = (
            ""
            if error["type"] == "value_error"  # the service's own validators say the fix themselves
            else f" Fix: set {variable} to a value that meets this, or unset it for the default"
            " (README, Configuration)."
        )
        message = message.removeprefix(f"{variable} ")  # the variable leads the line already
        if message[:1].isupper() and message[1:2].islower():  # a sentence; "URL ..." and PARTNERS_X keep capitals
            message = message[0].lower() + message[1:]
        lines.append(f"{variable}{given}: {message}.{fix}")
    return "\n".join(lines)


def development_webhook_secret(settings: Settings) -> tuple[Path, bool]:
    """The store's webhook secret outside production when none is set: read from `webhook-secret`
    beside the SQLite file (the data folder on Postgres), made there at first start (readable by its
    owner alone). Answers the file and whether it was made now."""
    if settings.database_url.startswith("sqlite+aiosqlite:///"):
        folder = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///")).parent
    else:
        folder = DEFAULT_DATA_DIR
    path = folder / DEVELOPMENT_SECRET_FILE
    if path.exists():
        return path, False
    folder.mkdir(parents=True, exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    return path, True
