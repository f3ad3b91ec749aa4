"""The ``digest`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from digest.config import LOCALES, Settings, get_settings, plain_http_warning
from digest.db import session_scope, utcnow
from digest.errors import InputError, InvalidInput
from digest.progress import Progress as ProgressCallback
from digest.subscribers.models import Cadence, Edition

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from digest.wiring import Services

app = typer.Typer(help="digest: per-specialty digests of clinical-research evidence summaries.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")
suppress_app = typer.Typer(
    help="The suppression list: addresses and domains that are never sent to.", no_args_is_help=True
)
app.add_typer(suppress_app, name="suppress")
feeds_app = typer.Typer(help="Manage the RSS/Atom/JSON feeds polled for summaries.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
editors_app = typer.Typer(help="Manage editor accounts.", no_args_is_help=True)
app.add_typer(editors_app, name="editors")
api_keys_app = typer.Typer(help="Manage keys for the JSON API (each with its scopes).", no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")
webhooks_app = typer.Typer(help="Outgoing webhooks: endpoints, and what was sent to them.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
specialties_app = typer.Typer(help="The specialties summaries and subscribers are tagged with.", no_args_is_help=True)
app.add_typer(specialties_app, name="specialties")
bounces_app = typer.Typer(help="Bounces and complaints from your own MTA (DSN and ARF reports).", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")
corrections_app = typer.Typer(
    help="Corrections and retractions waiting to be told to the readers of the earlier version.",
    no_args_is_help=True,
)
app.add_typer(corrections_app, name="corrections")

console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError, with the variable named
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


LONG_RUNNING = frozenset({"worker", "beat", "serve", "bounces"})


def _print_version(value: bool) -> None:
    if value:
        console.print(f"digest {package_version('digest')}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
) -> None:
    """Logging for every command (DIGEST_LOG_FORMAT). Services log at DIGEST_LOG_LEVEL; one-shot
    commands print their outcome on the console and log only warnings and errors."""
    import logging

    from digest.observability import setup_logging

    settings = _settings()
    level = logging.getLevelName(settings.log_level)
    if ctx.invoked_subcommand not in LONG_RUNNING:
        level = max(level, logging.WARNING)
    setup_logging(settings, level)


def _reject(errors: list[InputError], what: str) -> NoReturn:
    err.print(f"[red]rejected:[/red] {len(errors)} error(s) in {what}; nothing was written")
    for e in errors:
        err.print(f"  {e}", markup=False, highlight=False)
    raise typer.Exit(2)


@contextmanager
def _progress_bar(what: str) -> Iterator[ProgressCallback]:
    """A bar on stderr for a long import: the service reports (step, done, total) and the bar follows.
    Off a terminal rich draws nothing, so piped output stays clean."""
    with Progress(
        TextColumn(f"{escape(what)}: {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=None)

        def report(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield report


def _services(settings: Settings) -> Services:
    from digest.schema import is_current
    from digest.wiring import build_services

    services = build_services(settings)
    if not is_current(services.engine):
        err.print("[red]the database is not initialised or not migrated:[/red] run `digest init` first")
        raise typer.Exit(2)
    return services


@editors_app.command("list")
def editors_list() -> None:
    """Every editor account: address, time zone, last login, disabled or not."""
    from digest.editors.service import list_editors

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        rows = [
            (e.email, e.timezone, f"{e.last_login_at:%Y-%m-%d %H:%M} UTC" if e.last_login_at else "never", e.disabled)
            for e in list_editors(session)
        ]
    if not rows:
        console.print("no editors (add one with: digest editors add EMAIL)")
    for email, tz, last, disabled in rows:
        console.print(f"{email}  {tz}  last login {last}" + ("  [red]disabled[/red]" if disabled else ""))


def _editor_change(email: str, change: Callable[[Session, str], object], done: str) -> None:
    from digest.editors.service import EditorError

    services = _services(_settings())
    try:
        with session_scope(services.sessions) as session:
            change(session, email)
    except EditorError as exc:
        err.print(f"[red]not changed:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(done)


@editors_app.command("disable")
def editors_disable(email: str) -> None:
    """Disable an account: it cannot log in, and its open sessions end now."""
    from digest.editors.service import set_disabled

    _editor_change(email, lambda s, e: set_disabled(s, e, True), f"editor {email} disabled; their sessions ended")


@editors_app.command("enable")
def editors_enable(email: str) -> None:
    """Enable a disabled account again."""
    from digest.editors.service import set_disabled

    _editor_change(email, lambda s, e: set_disabled(s, e, False), f"editor {email} enabled")


@editors_app.command("passwd")
def editors_passwd(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input (for scripts)")
    ] = False,
) -> None:
    """Set a new password (prompted twice, hidden); every session of the account ends."""
    from digest.editors.service import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    _editor_change(email, lambda s, e: set_password(s, e, password), f"password of {email} changed; sessions ended")


@app.command()
def init() -> None:
    """Create or migrate the database (Alembic upgrade head) and seed the specialty list."""
    from digest.ingest.specialties import seed_specialties
    from digest.schema import upgrade
    from digest.wiring import build_services

    services = build_services(_settings())
    upgrade(services.engine)
    with session_scope(services.sessions) as session:
        added = seed_specialties(session)
    console.print(
        f"database ready at {services.engine.url.render_as_string(hide_password=True)}; {added} specialties added"
    )


@app.command("import")
def import_(
    source: Annotated[
        str,
        typer.Argument(help="a .json or .jsonl file, or an RSS/Atom/JSON feed (http(s) URL or .xml/.rss/.atom file)"),
    ],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the valid records, list the rest")
    ] = False,
    specialty: Annotated[
        list[str],
        typer.Option(
            "--specialty", "-s", help="feeds only: specialty for entries whose categories name none; repeat for more"
        ),
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
) -> None:
    """Import summaries; upserts by id. A source with invalid records is rejected whole (exit 2)."""
    from digest.ingest.feeds import is_feed_source, read_feed
    from digest.ingest.fetching import FetchPolicy
    from digest.ingest.service import import_summaries
    from digest.ingest.sources import read_records

    feed = is_feed_source(source)
    if specialty and not feed:
        err.print("[red]--specialty applies to feeds only:[/red] summary records name their own specialties")
        raise typer.Exit(2)
    services = _services(_settings())
    try:
        with session_scope(services.sessions) as session, _progress_bar("summaries") as progress:
            policy = FetchPolicy.from_settings(services.settings)
            raw = read_feed(session, source, specialty, policy) if feed else read_records(Path(source))
            report = import_summaries(
                session,
                raw.records,
                source=raw.source,
                skip_invalid=skip_invalid,
                prior_errors=raw.errors,
                progress=progress,
            )
    except InvalidInput as exc:
        _reject(exc.errors, source)
    console.print(
        f"imported {report.imported} summaries from {source}: "
        f"{report.created} new, {report.updated} updated, {report.unchanged} unchanged"
    )
    if report.skipped:
        err.print(f"[yellow]skipped {len(report.skipped)} invalid:[/yellow]")
        for e in report.skipped:
            err.print(f"  {e}", markup=False, highlight=False)
    for e in report.cleaned:
        err.print(f"  cleaned: {e}", markup=False, highlight=False)


@subscribers_app.command("add")
def subscribers_add(
    email: str,
    specialty: Annotated[list[str], typer.Option("--specialty", "-s", help="a specialty slug; repeat for more")],
    cadence: Annotated[Cadence, typer.Option(help="daily or weekly")] = Cadence.DAILY,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Europe/Berlin")] = "UTC",
    edition: Annotated[Edition, typer.Option(help="clinician or patient")] = Edition.CLINICIAN,
    name: Annotated[str, typer.Option(help="display name")] = "",
    hour: Annotated[int, typer.Option(help="local hour to receive the digest (0-23)")] = 7,
    locale: Annotated[str, typer.Option(help=f"language of their emails and pages: {', '.join(LOCALES)}")] = "en",
) -> None:
    """Add (or update) a confirmed subscriber: an operator action, no confirmation email."""
    from digest.subscribers.service import add_subscriber

    services = _services(_settings())
    raw = {
        "email": email,
        "specialties": specialty,
        "cadence": cadence,
        "timezone": tz,
        "edition": edition,
        "name": name,
        "send_hour": hour,
        "locale": locale,
    }
    try:
        with session_scope(services.sessions) as session:
            row, created = add_subscriber(session, raw)
            slugs = ", ".join(s.slug for s in row.specialties)
            summary = f"{'added' if created else 'updated'} {row.email} ({row.cadence}, {row.timezone}): {slugs}"
    except InvalidInput as exc:
        _reject(exc.errors, "the subscriber")
    console.print(summary)


@subscribers_app.command("import")
def subscribers_import(
    path: Path,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the valid rows, list the rest")] = False,
) -> None:
    """Bulk import from CSV: email, specialties (separated by ;), cadence, timezone, name, edition, locale."""
    from digest.subscribers.service import import_subscribers

    services = _services(_settings())
    try:
        with session_scope(services.sessions) as session, _progress_bar("subscribers") as progress:
            report = import_subscribers(session, path, skip_invalid=skip_invalid, progress=progress)
    except InvalidInput as exc:
        _reject(exc.errors, str(path))
    console.print(f"imported subscribers from {path}: {report.created} new, {report.updated} updated")
    for e in report.skipped:
        err.print(f"  skipped: {e}", markup=False, highlight=False)


@subscribers_app.command("export")
def subscribers_export(email: str) -> None:
    """Print everything held about one subscriber as JSON (profile, choices, consent, deliveries, clicks)."""
    from digest.rights import export_subscriber, find_subscriber

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        row = find_subscriber(session, email)
        if row is None:
            err.print(f"[red]no subscriber {escape(email)}[/red]", highlight=False)
            raise typer.Exit(1)
        data = export_subscriber(session, row, services.clock())
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@subscribers_app.command("erase")
def subscribers_erase(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask, even on a terminal")] = False,
) -> None:
    """Erase a subscriber's personal data; the address is kept only as a hash that blocks re-adding it."""
    from digest.rights import erase_subscriber, find_subscriber

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        row = find_subscriber(session, email)
        if row is None:
            err.print(f"[red]no subscriber {escape(email)}[/red]", highlight=False)
            raise typer.Exit(1)
        asked = not yes and sys.stdin.isatty()  # scripts (no terminal) are not asked
        if asked and not typer.confirm(f"Erase every personal datum of {row.email}? This cannot be undone"):
            raise typer.Exit(1)
        erase_subscriber(session, row, services.clock(), source="operator")
    console.print(f"erased {email.strip().lower()}: only its hash stays, on the suppression list")


@api_keys_app.command("create")
def api_keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="a scope, e.g. subscribers:read; repeat for more")],
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
) -> None:
    """Create an API key and print it once (only its hash is kept)."""
    from digest.integrations.apikeys import UnknownScope, create_key

    services = _services(_settings())
    try:
        with session_scope(services.sessions) as session:
            row, key = create_key(session, scope, name, services.clock())
            scopes = row.scopes
    except UnknownScope as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    err.print(f"API key with scopes {scopes} (shown once; store it now):", highlight=False)
    typer.echo(key)


@api_keys_app.command("list")
def api_keys_list() -> None:
    """Every API key: its prefix, name, scopes, when it was created, last used or revoked."""
    from digest.integrations.apikeys import list_keys

    services = _services(_settings())
    table = Table(title="API keys")
    for column in ("prefix", "name", "scopes", "created", "last used", "revoked"):
        table.add_column(column)
    with session_scope(services.sessions) as session:
        for row in list_keys(session):
            table.add_row(
                row.prefix,
                row.name,
                row.scopes,
                f"{row.created_at:%Y-%m-%d %H:%M}",
                f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never",
                f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
            )
    console.print(table)


@api_keys_app.command("revoke")
def api_keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix (dg_...) as list shows it")]) -> None:
    """Revoke a key: every request with it is refused from now on."""
    from digest.integrations.apikeys import revoke_key

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        done = revoke_key(session, prefix, services.clock())
    if not done:
        err.print(f"[red]no live key {escape(prefix)}[/red]", highlight=False)
        raise typer.Exit(1)
    console.print(f"revoked {prefix}")


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    event: Annotated[list[str], typer.Option("--event", help="an event type; repeat for more")],
    description: Annotated[str, typer.Option(help="a note shown in lists")] = "",
) -> None:
    """Register an endpoint for some events; prints its signing secret once."""
    from digest.integrations.models import WebhookEndpoint
    from digest.integrations.webhooks import EVENTS, new_secret

    unknown = sorted(set(event) - set(EVENTS))
    if unknown or not url.startswith(("http://", "https://")):
        err.print(f"[red]give an http(s) URL and events among {', '.join(EVENTS)}[/red]", highlight=False)
        raise typer.Exit(2)
    services = _services(_settings())
    with session_scope(services.sessions) as session:
        row = WebhookEndpoint(
            url=url, secret=new_secret(), events=" ".join(sorted(set(event))), description=description
        )
        session.add(row)
        session.flush()
        endpoint_id, secret = row.id, row.secret
    err.print(f"endpoint {endpoint_id}: {url}; signing secret (shown once):", highlight=False)
    typer.echo(secret)


@webhooks_app.command("list")
def webhooks_list() -> None:
    """Every endpoint, with how many of its deliveries are delivered, pending and failed."""
    from sqlalchemy import func, select

    from digest.integrations.models import WebhookDelivery, WebhookEndpoint

    services = _services(_settings())
    table = Table(title="Webhook endpoints")
    for column in ("id", "url", "events", "delivered", "pending", "failed"):
        table.add_column(column)
    with session_scope(services.sessions) as session:
        counts = {
            (e, s): n
            for e, s, n in session.execute(
                select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
                    WebhookDelivery.endpoint_id, WebhookDelivery.status
                )
            )
        }
        for row in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
            table.add_row(
                str(row.id),
                row.url,
                row.events,
                *(str(counts.get((row.id, s), 0)) for s in ("delivered", "pending", "failed")),
            )
    console.print(table)


@webhooks_app.command("remove")
def webhooks_remove(endpoint_id: int) -> None:
    """Remove an endpoint; its undelivered events are dropped."""
    from digest.integrations.models import WebhookEndpoint

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        if row is not None:
            session.delete(row)
    if row is None:
        err.print(f"[red]no endpoint {endpoint_id}[/red]")
        raise typer.Exit(1)
    console.print(f"removed endpoint {endpoint_id}")


@suppress_app.command("add")
def suppress_add(
    value: Annotated[str, typer.Argument(help="an address (a@b.org) or a whole domain (@b.org)")],
    reason: Annotated[str, typer.Option(help="operator, unsubscribed, hard_bounce or complaint")] = "operator",
    detail: Annotated[str, typer.Option(help="a note kept with the entry")] = "",
) -> None:
    """Block an address or a domain: no send goes to it, from the next message on."""
    from digest.subscribers.models import SuppressionReason
    from digest.subscribers.schema import normalize_email
    from digest.subscribers.suppression import suppress

    try:
        why = SuppressionReason(reason)
    except ValueError:
        err.print(f"[red]unknown reason {reason!r}:[/red] use one of {', '.join(r.value for r in SuppressionReason)}")
        raise typer.Exit(2) from None
    try:
        entry = (
            "@" + normalize_email("x" + value.strip()).split("@", 1)[1]
            if value.strip().startswith("@")
            else normalize_email(value)
        )
    except ValueError as exc:
        err.print(f"[red]not an address or @domain:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    services = _services(_settings())
    with session_scope(services.sessions) as session:
        added = suppress(session, entry, why, detail or None)
    console.print(f"{entry} {'suppressed' if added else 'was already suppressed'} ({why.value})")


@suppress_app.command("list")
def suppress_list() -> None:
    """Show every suppressed address and domain, newest first."""
    from sqlalchemy import select

    from digest.subscribers.models import Suppression

    services = _services(_settings())
    table = Table(title="Suppression list")
    for column in ("address or domain", "reason", "since", "detail"):
        table.add_column(column)
    with session_scope(services.sessions) as session:
        rows = session.scalars(select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())).all()
        for row in rows:
            table.add_row(row.value, row.reason, f"{row.created_at:%Y-%m-%d %H:%M}", row.detail or "")
    console.print(table)
    console.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


@specialties_app.command("list")
def specialties_list() -> None:
    """Every specialty slug (what records and --specialty name), with its confirmed subscribers and summaries."""
    from sqlalchemy import func, select

    from digest.ingest.models import Specialty, summary_specialties
    from digest.subscribers.models import Subscriber, SubscriberStatus, subscriber_specialties

    services = _services(_settings())
    readers = (
        select(func.count())
        .select_from(subscriber_specialties.join(Subscriber))
        .where(subscriber_specialties.c.specialty_id == Specialty.id, Subscriber.status == SubscriberStatus.ACTIVE)
        .scalar_subquery()
    )
    summaries = (
        select(func.count())
        .select_from(summary_specialties)
        .where(summary_specialties.c.specialty_id == Specialty.id)
        .scalar_subquery()
    )
    with session_scope(services.sessions) as session:
        rows = session.execute(
            select(Specialty.slug, Specialty.name, readers, summaries).order_by(Specialty.slug)
        ).all()
    table = Table("slug", "name", "active subscribers", "summaries")
    for slug, name, n_readers, n_summaries in rows:
        table.add_row(slug, name, str(n_readers), str(n_summaries))
    console.print(table)
    console.print(f"{len(rows)} specialties")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int | None, typer.Option(help="worker processes (default DIGEST_WEB_WORKERS, 1)", min=1)] = None,
) -> None:
    """Run the web app (sign-up, preferences, unsubscribe, webhooks) with uvicorn."""
    import uvicorn

    settings = _settings()
    _services(settings).close()  # refuses to start on a database that is not migrated
    warning = plain_http_warning(settings)
    if warning:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    uvicorn.run(
        "digest.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.web_workers,
        proxy_headers=True,
        # Personal pages carry their signed token in the path: an access log would keep every
        # reader's unsubscribe and preference credentials, so requests are not logged.
        access_log=False,
    )


@bounces_app.command("serve")
def bounces_serve(
    listen: Annotated[str | None, typer.Option(help="HOST:PORT (default DIGEST_BOUNCE_LISTEN)")] = None,
    smtp: Annotated[bool, typer.Option("--smtp", help="speak SMTP instead of LMTP")] = False,
) -> None:
    """Take bounces (RFC 3464) and abuse reports (RFC 5965) from the MTA for bounces+<token>@DIGEST_BOUNCE_DOMAIN."""
    import signal
    import threading

    from digest.events.intake import listener
    from digest.wiring import ConfigError, bounce_intake

    settings = _settings()
    services = _services(settings)
    try:
        intake = bounce_intake(services)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    host, _, port = (listen or settings.bounce_listen).rpartition(":")
    server = listener(intake, host or "127.0.0.1", int(port), lmtp=not smtp)
    server.start()
    console.print(f"taking bounces for {settings.bounce_domain} over {'SMTP' if smtp else 'LMTP'} on {host}:{port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        services.close()


@feeds_app.command("add")
def feeds_add(
    url: str,
    specialty: Annotated[
        list[str],
        typer.Option("--specialty", "-s", help="specialty for entries whose categories name none; repeat for more"),
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
) -> None:
    """Register a feed to poll (or change its default specialties). Entries map to specialties by category."""
    from digest.ingest.feeds import add_feed

    services = _services(_settings())
    try:
        with session_scope(services.sessions) as session:
            row, created = add_feed(session, url, specialty)
            specialties = ", ".join(row.specialties) or "specialties from categories only"
            summary = f"{'added' if created else 'updated'} feed {row.id}: {row.url} ({specialties})"
    except InvalidInput as exc:
        _reject(exc.errors, "the feed")
    console.print(summary)


@feeds_app.command("list")
def feeds_list() -> None:
    """The registered feeds with the outcome of their last poll."""
    from sqlalchemy import select

    from digest.ingest.models import FeedSource

    services = _services(_settings())
    with session_scope(services.sessions) as session:
        feeds = list(session.scalars(select(FeedSource).order_by(FeedSource.id)))
    if not feeds:
        console.print("no feeds: add one with `digest feeds add URL --specialty SLUG`")
        return
    table = Table(title="Feeds")
    for column in ("id", "url", "specialties", "status", "last polled", "last error"):
        table.add_column(column, overflow="fold")
    for f in feeds:
        polled = f.last_polled_at.strftime("%Y-%m-%d %H:%M UTC") if f.last_polled_at else "never"
        table.add_row(
            str(f.id),
            f.url,
            ", ".join(f.specialties),
            f.status,
            polled,
            (f.last_error or "").splitlines()[0] if f.last_error else "",
        )
    console.print(table)


@feeds_app.command("poll")
def feeds_poll() -> None:
    """Poll every feed now (what beat does every 15 minutes); exit 1 if any feed failed."""
    from digest.ingest.feeds import poll_feeds
    from digest.ingest.fetching import FetchPolicy

    services = _services(_settings())
    results = poll_feeds(services.sessions, services.clock(), FetchPolicy.from_settings(services.settings))
    if not results:
        console.print("no feeds to poll")
    for r in results:
        if r.error:
            err.print(f"[red]{r.url}: failed:[/red] {r.error}", highlight=False)
        elif r.not_modified:
            console.print(f"{r.url}: not modified", highlight=False)
        else:
            assert r.report is not None
            console.print(
                f"{r.url}: {r.report.created} new, {r.report.updated} updated, {r.report.unchanged} unchanged"
                + (f", {len(r.report.skipped)} invalid skipped" if r.report.skipped else ""),
                highlight=False,
            )
            for e in r.report.skipped:
                err.print(f"  skipped: {e}", markup=False, highlight=False)
    if any(r.error for r in results):
        raise typer.Exit(1)


@editors_app.command("add")
def editors_add(
    email: str,
    tz: Annotated[str, typer.Option("--tz", help="the editor's IANA time zone; send times are typed in it")] = "UTC",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input (for scripts)")
    ] = False,
) -> None:
    """Create an editor account; prompts for the password twice (hidden)."""
    from digest.editors.service import EditorError, EditorIn, create_editor

    services = _services(_settings())
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(services.sessions) as session:
            editor = create_editor(session, EditorIn(email=email, password=password, timezone=tz))
            created = f"editor {editor.email} added (time zone {editor.timezone})"
    except EditorError as exc:
        err.print(f"[red]not added:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(created)


@app.command()
def send(
    issue: Annotated[int | None, typer.Option("--issue", help="send this campaign issue now")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan, show, and roll back: nothing is sent")] = False,
) -> None:
    """Plan and send the digests due now (what the beat schedule also triggers every minute)."""
    from digest.delivery.circuit import PAUSED_BY_TRANSPORT
    from digest.dispatch import outcomes, send_due
    from digest.ledger.models import DeliveryStatus, IssueStatus
    from digest.queue import BrokerQueue
    from digest.selection.service import plan_digests

    settings = _settings()
    services = _services(settings)
    if issue is not None:
        _send_issue(services, issue, dry_run)
        return
    if dry_run:
        session = services.sessions()
        try:
            plan = plan_digests(session, utcnow(), services.plan_options())
            console.print(
                f"dry run: {plan.deliveries} digest(s) with {plan.items} item(s) would be sent; nothing was sent"
            )
        finally:
            session.rollback()
            session.close()
        return
    if isinstance(services.queue, BrokerQueue):
        # With a broker, the workers plan and send: the planning task writes the ledger, commits,
        # then queues the chunks. This command only hands it over.
        task_id = services.queue.dispatch_due()
        services.close()
        console.print(f"queued the planning task {task_id}: the workers plan what is due and send it")
        return
    try:
        run = send_due(services)
        touched = [run.plan.issue_id] if run.plan.issue_id else []
        touched += [c.issue_id for c in run.campaigns] + run.resumed + run.redispatched
        touched += [c.issue_id for c in run.corrections if c.issue_id] + run.alerts
        report = outcomes(services, touched)
    finally:
        services.close()  # QUIT to the SMTP server
    if run.digests_paused:
        console.print("the automatic digests are paused (resume them on the dashboard's Issues page): none planned")
    for alert in run.alerts:
        console.print(f"safety alert issue {alert}: started for a summary flagged urgent")
    for correction in run.corrections:
        how = f"notice issue {correction.issue_id}" if correction.issue_id else "folded into their next digests"
        console.print(f"correction {correction.correction_id}: {correction.readers} reader(s), {how}")
    if not report:
        console.print("nothing due: no subscriber has new summaries in a period not yet served")
        return
    paused = False
    for outcome in report:
        planned = f"{run.plan.deliveries} digest(s) planned" if outcome.issue_id == run.plan.issue_id else "open"
        counts = {
            "sent": outcome.counts.get(DeliveryStatus.SENT, 0),
            "failed": outcome.counts.get(DeliveryStatus.FAILED, 0),
            "cancelled": outcome.counts.get(DeliveryStatus.CANCELLED, 0),
            "deferred": outcome.pending,
        }
        console.print(
            f"issue {outcome.issue_id} ({outcome.status}): {planned}; "
            + ", ".join(f"{k}={v}" for k, v in counts.items())
        )
        for reason, n in outcome.deferred[:5]:
            console.print(f"  deferred {n}: {reason}")
        if outcome.status == IssueStatus.PAUSED and outcome.paused_by == PAUSED_BY_TRANSPORT:
            paused = True
            err.print(
                f"[red]issue {outcome.issue_id} is paused:[/red] the transport fails: {outcome.pause_reason}. "
                "It resumes by itself when a probe succeeds (digest send or beat), or when an editor resumes it."
            )
    if paused or any(o.pending for o in report):
        raise typer.Exit(1)


def _send_issue(services: Services, issue_id: int, dry_run: bool) -> None:
    """``digest send --issue ID``: a campaign now (or its open rows queued again if it is sending)."""
    from sqlalchemy import func, select

    from digest.dispatch import send_issue
    from digest.issues.service import IssueError, start_sending
    from digest.ledger.models import Delivery

    settings = services.settings
    if dry_run:
        session = services.sessions()
        try:
            would = start_sending(session, issue_id, utcnow(), services.plan_options())
            console.print(
                f"dry run: issue {issue_id} would go to {would.deliveries} subscriber(s) "
                f"with {would.items} item(s); nothing was sent"
            )
        except IssueError as exc:
            err.print(f"[red]cannot send:[/red] {exc}")
            raise typer.Exit(2) from None
        finally:
            session.rollback()
            session.close()
        return
    try:
        plan, chunks = send_issue(services, issue_id)
    except IssueError as exc:
        err.print(f"[red]cannot send:[/red] {exc}")
        raise typer.Exit(2) from None
    with session_scope(services.sessions) as session:
        counts = dict(
            session.execute(
                select(Delivery.status, func.count()).where(Delivery.issue_id == issue_id).group_by(Delivery.status)
            ).all()
        )
    planned = f"{plan.deliveries} message(s) planned" if plan else "already sending"
    where = "sent" if settings.eager else f"queued in {chunks} chunk(s) for the workers"
    console.print(f"issue {issue_id}: {planned}, {where}; " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@corrections_app.command("list")
def corrections_list() -> None:
    """One line per pending correction, starting with its id: the summary, what changed, how it goes
    out, how many readers in which edition got the earlier version, and the note they will read."""
    from digest.corrections.review import review_versions
    from digest.corrections.service import pending_corrections, readers_by_edition

    settings = _settings()
    services = _services(settings)
    with session_scope(services.sessions) as session:
        review_versions(session, services.clock())  # what was imported since the last send cycle
        for c in pending_corrections(session):
            readers = readers_by_edition(session, c)
            counts = ", ".join(f"{n} {edition}" for edition, n in sorted(readers.items())) or "no readers"
            how = "standalone" if c.standalone else "folded"
            # Plain output (no console markup or tab expansion): one tab-separated line per correction.
            typer.echo(
                f"{c.id}\t{c.kind}\t{c.summary_id} v{c.version}\t{how}\t{c.changed}\treaders: {counts}\tnote: {c.note}"
            )
    services.close()


@corrections_app.command("approve")
def corrections_approve(
    correction_id: Annotated[int, typer.Argument(help="the id `digest corrections list` shows")],
    note: Annotated[
        str | None, typer.Option("--note", help="what readers are told, instead of the proposed note")
    ] = None,
) -> None:
    """Approve a pending correction: the next `digest send` (or beat cycle) sends it."""
    from digest.corrections.service import CorrectionNotFound, NotPending, approve

    settings = _settings()
    services = _services(settings)
    try:
        with session_scope(services.sessions) as session:
            c = approve(session, correction_id, by="cli", now=services.clock(), note=note)
            how = "a notice of its own" if c.standalone else "a block at the top of their next digest"
            console.print(f"approved correction {c.id} ({c.kind} of {c.summary_id}): readers get {how}")
    except (CorrectionNotFound, NotPending) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    finally:
        services.close()


@corrections_app.command("dismiss")
def corrections_dismiss(
    correction_id: Annotated[int, typer.Argument(help="the id `digest corrections list` shows")],
) -> None:
    """Dismiss a pending correction: nobody is told, and it leaves the list."""
    from digest.corrections.service import CorrectionNotFound, NotPending, dismiss

    settings = _settings()
    services = _services(settings)
    try:
        with session_scope(services.sessions) as session:
            c = dismiss(session, correction_id)
            console.print(f"dismissed correction {c.id} ({c.kind} of {c.summary_id} v{c.version}): nobody is told")
    except (CorrectionNotFound, NotPending) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    finally:
        services.close()


@app.command()
def prune(
    keep: Annotated[int, typer.Option("--keep", help="days of ledger to keep (issues sent within them are untouched)")],
    batch_size: Annotated[int, typer.Option(help="rows per delete transaction", min=100)] = 5_000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the issues that would be pruned")] = False,
) -> None:
    """Summarise issues older than --keep days into their figures, then delete their ledger rows
    (deliveries, clicks, lists) in short batches. Safe to stop and run again: it resumes."""
    from digest.issues.retention import minimum_keep_days, prunable
    from digest.issues.retention import prune as prune_ledger

    settings = _settings()
    shortest = minimum_keep_days(settings.lookback_days)
    if keep < shortest:
        err.print(
            f"[red]--keep must be at least {shortest} days[/red]: the figures attribute unsubscribes for 7 days "
            f"and planning looks {settings.lookback_days} days back into what each reader was sent"
        )
        raise typer.Exit(2)
    services = _services(settings)
    try:
        now = utcnow()
        if dry_run:
            with session_scope(services.sessions) as session:
                issues = prunable(session, now, keep)
            console.print(f"dry run: {len(issues)} issue(s) would be pruned: {', '.join(map(str, issues)) or '-'}")
            return
        with _progress_bar("issues pruned") as progress:
            report = prune_ledger(services.sessions, now, keep, batch=batch_size, progress=progress)
    finally:
        services.close()
    console.print(
        f"pruned {len(report.issues)} issue(s) ({report.summarised} summarised now): "
        f"{report.deliveries:,} deliveries and {report.selections:,} lists deleted; their figures are kept"
    )


@app.command()
def demo() -> None:
    """The main job on embedded defaults: SQLite, in-process tasks, a real local SMTP server, sample data."""
    from digest.demo import run_demo

    settings = _settings()
    with console.status("sending digests through the local SMTP server..."):
        result = run_demo(settings)
    if result.seeded:
        console.print(f"loaded the sample data: {result.summaries} summaries, {result.subscribers} subscribers")
    if not result.rows:
        console.print(
            "[bold]nothing new to send:[/bold] every subscriber has had this period's digest "
            f"(the messages from earlier runs are in {result.outbox}/)"
        )
        return
    table = Table(title=f"Issue {result.issue_id}: digests sent", show_lines=False)
    table.add_column("subscriber", no_wrap=True)
    table.add_column("specialties", max_width=34)
    table.add_column("cadence", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    table.add_column("subject", no_wrap=True, overflow="ellipsis", max_width=70)
    for row in result.rows:
        table.add_row(row.email, row.specialties, row.cadence, str(row.items), row.subject)
    console.print(table)
    items = sum(r.items for r in result.rows)
    console.print(
        f"[bold]{len(result.rows)} digests[/bold] with {items} summaries sent to {len(result.rows)} of "
        f"{result.subscribers} subscribers ({result.subscribers - len(result.rows)} had nothing new); "
        f"the SMTP server received {result.received} message(s)."
    )
    console.print(f"open {result.outbox.resolve()}/index.html to read them")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 2,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve this host's Prometheus metrics on this port (for hosts without `digest serve`)"),
    ] = None,
) -> None:
    """Run a Celery worker (same as `celery -A workers worker`)."""
    from workers.app import celery_app

    settings = _settings()
    if not settings.broker_url:
        err.print(
            "[red]DIGEST_BROKER_URL is not set:[/red] without a broker, tasks run in-process and no worker is needed"
        )
        raise typer.Exit(2)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from digest.observability import scrape_registry
        from digest.wiring import make_rate_limiter

        assert settings.metrics_dir is not None
        registry = scrape_registry(
            settings.metrics_dir, settings.broker_url, send_rate=make_rate_limiter(settings).current
        )
        start_http_server(metrics_port, registry=registry)
    celery_app.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={settings.log_level}"])


@app.command()
def beat() -> None:
    """Run Celery beat: `dispatch_due` every minute, `poll_feeds` every 15 minutes (as `celery -A workers beat`)."""
    from workers.app import celery_app

    settings = _settings()
    if not settings.broker_url:
        err.print("[red]DIGEST_BROKER_URL is not set:[/red] beat needs a broker")
        raise typer.Exit(2)
    schedule = settings.var_dir / "celerybeat-schedule"
    celery_app.start(["beat", f"--loglevel={settings.log_level}", f"--schedule={schedule}"])


def main() -> None:  # pragma: no cover (tests call run_cli)
    sys.exit(run_cli())


def run_cli() -> int:
    """The console script: ``app`` with database failures told in one line, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        app()
    except DBAPIError as exc:
        err.print(f"[red]database error:[/red] {_database_error(exc)}", highlight=False)
        return 1
    return 0


def _database_error(exc: Exception) -> str:
    """One line: what the database said, and what to do about a cancelled statement."""
    orig = getattr(exc, "orig", None) or exc
    said = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if getattr(orig, "sqlstate", None) == "57014":  # query_canceled: statement_timeout, or an operator
        return f"{said} (it ran longer than the statement_timeout of this database role allows and was rolled back)"
    return f"{type(orig).__name__}: {said}"
