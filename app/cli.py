"""The `partners` command: serve, migrate, create keys; room for the program's batch jobs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from app.settings import Settings, development_webhook_secret, refusal

ADMIN_KEY_HINT = "uv run partners create-admin-key --name <who-it-is-for>"


async def _has_admin_key(settings: Settings) -> bool:
    from app.db.session import create_engine, create_session_factory
    from app.domain import api_keys

    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            return await api_keys.has_active_admin_key(session)
    finally:
        await engine.dispose()


async def _create_admin_key(settings: Settings, name: str, scopes: list[str], kind: str) -> str:
    from app.db.session import create_engine, create_session_factory, unit_of_work
    from app.domain import api_keys
    from app.domain.clock import SystemClock
    from app.domain.context import Caller, Context

    engine = create_engine(settings.database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            ctx = Context(caller=Caller(kind="cli"), now=SystemClock().now())
            issued = await api_keys.issue(session, ctx, kind=kind, name=name, scopes=scopes)  # type: ignore[arg-type]
            return issued.plaintext
    finally:
        await engine.dispose()


def _say_mail(say: logging.Logger, settings: Settings) -> None:
    """How mail leaves, said at start: off is a choice someone must see."""
    mode = settings.mail_mode
    if mode == "off":
        say.warning("mail is OFF (PARTNERS_MAIL=off): no invitation, password reset or notification is sent")
    elif mode == "folder":
        say.info("mail is written to %s, not sent (set PARTNERS_SMTP_HOST to send it)", settings.mail_folder)
    else:
        say.info("mail is sent through %s:%s (%s)", settings.smtp_host, settings.smtp_port, settings.smtp_tls)


def cmd_create_admin_user(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    if settings.should_migrate_on_start:
        upgrade(settings.database_url)
    link = asyncio.run(_create_admin_user(settings, args.email, args.name))
    print(
        f"Invited {args.email.lower()} as the vendor's admin (mail: {settings.mail_mode}). "
        "Open this link to set the password; it works once:",
        file=sys.stderr,
    )
    print(link)
    return 0


async def _create_admin_user(settings: Settings, email: str, name: str | None) -> str:
    from app.db.session import create_engine, create_session_factory, unit_of_work
    from app.domain import people
    from app.domain.clock import SystemClock
    from app.domain.context import Caller, Context
    from app.domain.rules.roles import Role

    engine = create_engine(settings.database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            ctx = Context(caller=Caller(kind="cli"), now=SystemClock().now())
            invited = await people.invite(
                session, ctx, settings, None, email=email, role=Role.ADMIN, partner_id=None, name=name
            )
            return invited.link
    finally:
        await engine.dispose()


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is at the latest migration", file=sys.stderr)
    return 0


def cmd_create_admin_key(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    if settings.should_migrate_on_start:
        upgrade(settings.database_url)
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    key = asyncio.run(_create_admin_key(settings, args.name, scopes, args.kind))
    print(f"New {args.kind} key {key[:12]}… ({','.join(scopes)}). It is shown only now:", file=sys.stderr)
    print(key)
    return 0


def proxy_options(trusted: str) -> dict[str, Any]:
    """No proxy is trusted until the operator names one: otherwise any client could pick its own
    address with `X-Forwarded-For` and so escape every per-address limit."""
    trusted = trusted.strip()
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    # Set before prometheus_client is first imported (it reads the variable then): the workers share
    # their metrics in this directory, emptied first so an earlier run's figures do not count again.
    made_here = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        if settings.metrics_dir is None:
            made_here = tempfile.mkdtemp(prefix="partners-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir or made_here)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # not app.metrics: importing it would write files of its own
        stale.unlink()
    try:
        return _serve(settings, args)
    finally:
        if made_here:
            shutil.rmtree(made_here, ignore_errors=True)


def _banner(settings: Settings) -> logging.Logger:
    """The service's own logging, set up in this process before anything is said: in production
    the start-up lines are JSON like every other line (README, Logs)."""
    from app.log import configure

    configure(settings.log_level_number, settings.resolved_log_format)
    return logging.getLogger("app.cli")


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.db.migrate import upgrade
    from app.http_protocol import server_options

    try:
        settings.refuse_placeholder_secrets()
    except ValueError as exc:
        print(f"configuration refused: {exc}", file=sys.stderr)
        return 2
    say = _banner(settings)
    if not settings.webhook_secrets:  # outside production: the development secret, kept on disk
        path, made = development_webhook_secret(settings)
        secret = path.read_text().strip()
        # The server processes read their settings from the environment.
        os.environ["PARTNERS_WEBHOOK_SECRETS"] = secret
        settings = settings.model_copy(update={"webhook_secrets": [SecretStr(secret)]})
        say.info(
            "store webhook secret %s at %s (development only; set PARTNERS_WEBHOOK_SECRETS to use another)",
            "made" if made else "read",
            path,
        )

    if settings.should_migrate_on_start:
        upgrade(settings.database_url)
        say.info("database migrated: %s", _shown_url(settings.database_url))
    try:
        has_key = asyncio.run(_has_admin_key(settings))
    except Exception as exc:  # noqa: BLE001 - the server's readiness probe reports it properly
        say.warning("could not read the database yet (%s); is it migrated?", exc.__class__.__name__)
        has_key = True
    if not has_key:
        say.info("No admin key exists yet. Create one with:\n    %s", ADMIN_KEY_HINT)
    host = args.host or settings.host
    port = args.port or settings.port
    say.info("serving on http://%s:%s (API docs at /docs)", host, port)
    _say_mail(say, settings)
    # In JSON, uvicorn's own set-up of its loggers (plain text, in this parent process too) is
    # skipped: the lines go through the service's handler instead.
    log_config: dict[str, Any] = {"log_config": None} if settings.resolved_log_format == "json" else {}
    uvicorn.run(
        "app.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers or settings.server_processes,
        log_level=settings.log_level,
        access_log=args.access_log,
        **log_config,
        **proxy_options(os.environ.get("FORWARDED_ALLOW_IPS", "")),
        # The request head is bounded while it arrives, before the parser holds it whole (431); the
        # app then refuses headers over PARTNERS_MAX_HEADER_BYTES too.
        **server_options(settings),
    )
    return 0


async def _work(settings: Settings) -> None:
    import signal

    from app import tracing
    from app.db.session import create_engine, create_session_factory
    from app.domain.clock import SystemClock
    from app.worker import Worker

    tracing.from_environment()  # before the engine, so its statements are traced too
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    worker = Worker(create_session_factory(engine), SystemClock(), settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the pass under way, give the leases back
        loop.add_signal_handler(sig, worker.stopping.set)
    try:
        await worker.run()
    finally:
        await engine.dispose()
        tracing.stop()  # sends what is still buffered


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    try:
        settings.refuse_placeholder_secrets()
    except ValueError as exc:
        print(f"configuration refused: {exc}", file=sys.stderr)
        return 2
    say = _banner(settings)
    if settings.should_migrate_on_start:
        upgrade(settings.database_url)
    if settings.worker_metrics_port is not None:
        from app import metrics

        metrics.serve_apart(settings.worker_metrics_port, settings.host)
        say.info("worker metrics on http://%s:%s/metrics", settings.host, settings.worker_metrics_port)
    say.info("worker running: store events, scheduled jobs, outbound webhooks, mail (SIGTERM stops it)")
    _say_mail(say, settings)
    asyncio.run(_work(settings))
    return 0


def cmd_openapi(_settings: Settings, args: argparse.Namespace) -> int:
    import json

    from app.main import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=False) + "\n"
    if args.output == "-":
        sys.stdout.write(document)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(document)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


async def _sweep(settings: Settings) -> dict[str, dict[str, int]] | str:
    """What each job did; or why none ran (the schema does not fit this build, as for the workers)."""
    from app.db.compatibility import schema_state
    from app.db.session import create_engine, create_session_factory
    from app.domain.clock import SystemClock
    from app.worker.jobs import JOBS

    engine = create_engine(settings.database_url)
    factory = create_session_factory(engine)
    results: dict[str, dict[str, int]] = {}
    try:
        state = await schema_state(engine)
        if not state.ready:
            return f"{state.code}: {state.explain()}"
        for job in JOBS:  # each job is idempotent: running it beside the workers' schedule is safe
            results[job.name] = await job.run(factory, SystemClock().now())
    finally:
        await engine.dispose()
    return results


def cmd_sweep(settings: Settings, _args: argparse.Namespace) -> int:
    results = asyncio.run(_sweep(settings))
    if isinstance(results, str):
        print(f"sweep refused: {results}", file=sys.stderr)
        return 1
    for name, counts in results.items():
        print(f"{name}: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'nothing due'}", file=sys.stderr)
    return 0


async def _close_quarter(settings: Settings, quarter_text: str) -> tuple[bool, int]:
    from app.db.session import create_engine, create_session_factory, unit_of_work
    from app.domain import statements
    from app.domain.clock import SystemClock
    from app.domain.context import Caller, Context
    from app.domain.rules.quarters import Quarter

    quarter = Quarter.parse(quarter_text)

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        print(
            f"\r{quarter} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} statements", end="", file=sys.stderr
        )

    engine = create_engine(settings.database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            ctx = Context(caller=Caller(kind="cli"), now=SystemClock().now())
            result = await statements.close_quarter(session, ctx, quarter, progress=progress)
    finally:
        await engine.dispose()
    print(file=sys.stderr)
    return result.closed_now, len(result.statements)


def cmd_close_quarter(settings: Settings, args: argparse.Namespace) -> int:
    from app.domain.errors import DomainError

    try:
        closed_now, count = asyncio.run(_close_quarter(settings, args.quarter))
    except ValueError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"refused: {exc.detail}", file=sys.stderr)
        return 1
    verb = "closed" if closed_now else "was closed already"
    print(f"{args.quarter} {verb}: {count} statement(s)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partners", description="The Qalyptus partner program service.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default: PARTNERS_HOST)")
    serve.add_argument("--port", type=int, help="port (default: PARTNERS_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default: PARTNERS_SERVER_PROCESSES, 1)")
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="uvicorn's own access log too (off: the service logs each request itself)",
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser(
        "worker", help="run a worker apart from the server: apply store events, run the scheduled jobs"
    )
    worker.set_defaults(handler=cmd_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    key = commands.add_parser("create-admin-key", help="create an admin (or store) key and print it once")
    key.add_argument("--name", default="first admin", help="who or what the key is for")
    key.add_argument("--scopes", default="read,write", help="comma-separated: read,write (admin) or store")
    key.add_argument("--kind", choices=["admin", "store"], default="admin")
    key.set_defaults(handler=cmd_create_admin_key)

    user = commands.add_parser(
        "create-admin-user", help="invite a person as the vendor's admin user and print the invitation link"
    )
    user.add_argument("--email", required=True, help="the person's e-mail address")
    user.add_argument("--name", default=None, help="the person's name")
    user.set_defaults(handler=cmd_create_admin_user)

    sweep = commands.add_parser(
        "sweep", help="run every scheduled job now, once (the workers also run them at their moments)"
    )
    sweep.set_defaults(handler=cmd_sweep)

    close = commands.add_parser("close-quarter", help="close a quarter and produce its statements (R16)")
    close.add_argument("quarter", help="e.g. 2026-Q1")
    close.set_defaults(handler=cmd_close_quarter)

    openapi = commands.add_parser("openapi", help="write the OpenAPI document (default: openapi/openapi.json)")
    openapi.add_argument("--output", default="openapi/openapi.json", help="a path, or - for stdout")
    openapi.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"configuration refused:\n{refusal(exc)}", file=sys.stderr)
        return 2
    code: int = args.handler(settings, args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
