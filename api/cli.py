"""The ``linli`` command: the matcher's commands (demo, solve, allocate, generate) plus ``serve``.

It lives here because ``serve`` needs the web service; ``matcher`` stays free of HTTP and SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from matcher.cli import SAMPLE_NETWORK, app, console, data_dir

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from api.jobs import JobWorker
    from api.settings import ApiSettings

log = logging.getLogger("linli.worker")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="server processes (one per core on a multi-user server); jobs run in "
        "`linli worker` processes")] = 1,
    demo: Annotated[bool, typer.Option(
        help="load the sample community and demo accounts into an empty database, make up a "
        "secret key if none is set, and run one job worker beside the server")] = False,
) -> None:
    """Run the HTTP API (SQLite file linli.db unless LINLI_DATABASE_URL says otherwise).

    Solves and allocations run in `linli worker` (start one or more beside the servers), except
    with --demo, which runs one job worker thread in this process."""
    import os
    import secrets

    import uvicorn

    from api.db import Database
    from api.main import create_app
    from api.migrate import upgrade
    from api.seed import seed_demo
    from api.settings import ApiSettings, MissingSecretError, require_secret

    settings = ApiSettings()
    if demo and not settings.secret_key:
        # Shared with the server processes through the environment; logins last one run.
        settings.secret_key = os.environ["LINLI_SECRET_KEY"] = secrets.token_urlsafe(32)
    try:
        require_secret(settings)
    except MissingSecretError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    settings.job_worker = False  # the demo's worker runs beside uvicorn, whatever the processes
    jobs = None
    if demo:
        base = data_dir()
        if settings.network_path is None:
            settings.network_path = str(base / SAMPLE_NETWORK)
        upgrade(settings.database_url)
        db = Database(settings.database_url)
        accounts = seed_demo(db, base / "sample")
        db.dispose()
        console.print("[bold]Demo accounts[/bold] (password for all: "
                      f"[bold]{accounts[0][1]}[/bold]):")
        for username, _, role in accounts:
            console.print(f"  {role:12} {username}")
        jobs = _job_worker(settings)
        jobs.start()
    console.print(escape(f"Linli API on http://{host}:{port}/docs  "
                         f"(database {settings.database_url})"))
    try:
        if workers == 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
            return
        # Several processes import the app themselves and read their settings from the
        # environment (never a job worker of their own: LINLI_JOB_WORKER is for tests).
        os.environ["LINLI_JOB_WORKER"] = "false"
        if settings.network_path:
            os.environ["LINLI_NETWORK_PATH"] = settings.network_path
        uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="info")
    finally:
        if jobs is not None:
            jobs.stop()


def _job_worker(settings: ApiSettings, poll_s: float = 1.0) -> JobWorker:
    from api.db import Database
    from api.jobs import JobContext, JobWorker, Networks
    from api.lifecycle import system_clock

    db = Database(settings.database_url)
    return JobWorker(JobContext(db, settings, Networks(settings.network_path), system_clock),
                     poll_s=poll_s)


@app.command()
def worker(
    once: Annotated[bool, typer.Option(
        help="run the jobs waiting now, then exit")] = False,
    poll_s: Annotated[float, typer.Option(
        "--poll-s", min=0.05, help="seconds between looks for a new job when idle")] = 1.0,
) -> None:
    """Run solves and allocations: claim queued jobs from the database (LINLI_DATABASE_URL),
    one at a time. Run one or more beside `linli serve`; on SIGTERM or Ctrl-C the worker
    finishes its job's current stage and puts the job back in line for another worker."""
    import signal

    from api.migrate import upgrade
    from api.settings import ApiSettings

    logging.getLogger("linli").setLevel(logging.INFO)
    settings = ApiSettings()
    upgrade(settings.database_url)
    jobs = _job_worker(settings, poll_s)

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        jobs.stopping.set()
        jobs.wake()

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("job worker %s on %s", jobs.name, settings.database_url.split("@")[-1])
    try:
        jobs.run(once=once)
    finally:
        jobs.ctx.db.dispose()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    log.info("job worker %s stopped", jobs.name)


def _refuse(message: str, code: int) -> NoReturn:
    console.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(code)


@contextmanager
def _deployment() -> Iterator[Session]:
    """A session on the deployment's database (``LINLI_DATABASE_URL``), brought up to date."""
    from api.db import Database
    from api.migrate import upgrade
    from api.settings import ApiSettings

    settings = ApiSettings()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


community_app = typer.Typer(help="The communities of this deployment (LINLI_DATABASE_URL): "
                             "add them and the street or district admins who read them.")
app.add_typer(community_app, name="community")


@community_app.command("add")
def community_add(
    code: Annotated[str, typer.Option(help="a stable code: lower-case letters, digits, - _")],
    name: Annotated[str, typer.Option(help="its name, e.g. 景田社区")],
    street_office: Annotated[str, typer.Option(
        help="the street office's code (made, in --district, when it does not exist)")]
    = "default",
    street_office_name: Annotated[str | None, typer.Option(
        help="the street office's name when it is made (default: its code)")] = None,
    district: Annotated[str, typer.Option(
        help="the district's code, for a street office made now")] = "default",
    webhook_url: Annotated[str | None, typer.Option(
        help="an http(s) address for this community's webhook events (its own mini "
        "program's backend); default: the deployment's LINLI_WEBHOOK_URL")] = None,
) -> None:
    """Add a community: a deployment starts with one (code `default`); each further one gets
    its own coordinators (POST /v1/users by a street or district admin)."""
    from api.errors import Problem
    from api.tenancy import CODE, add_community, check_webhook_url, find_street_office
    from matcher.i18n import _

    if not CODE.match(code):
        _refuse(_("the code may hold lower-case letters, digits, - and _ only"), 2)
    try:
        url = None if webhook_url is None else check_webhook_url(webhook_url,
                                                                 ["--webhook-url"])
    except Problem as exc:
        _refuse(exc.detail, 2)
    with _deployment() as session:
        office = find_street_office(session, street_office, name=street_office_name,
                                    district=district, create=True)
        assert office is not None  # made when missing
        try:
            community = add_community(session, code, name, office)
        except Problem as exc:
            _refuse(exc.detail, 1)
        community.webhook_url = url
        session.commit()
    console.print(escape(_("community {code} ({name}) added to street office {office}")
                         .format(code=code, name=name, office=street_office)))


@community_app.command("admin")
def community_admin(
    username: Annotated[str, typer.Option(help="the admin's login")],
    street_office: Annotated[str | None, typer.Option(
        help="a street admin: the street office's code")] = None,
    district: Annotated[str | None, typer.Option(
        help="a district admin: the district's code")] = None,
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        help="the password (asked when not given)")] = "",
) -> None:
    """Make a street-office admin (reads every community of her street office) or a district
    admin (of her district); they add communities and their accounts through the API."""
    from sqlalchemy import select

    from api.models import District, StreetOffice, User
    from api.security import hash_password
    from matcher.i18n import _

    if (street_office is None) == (district is None) or len(password) < 8:
        _refuse(_("give either --street-office or --district, and a password of 8 "
                  "characters or more"), 2)
    with _deployment() as session:
        if street_office is not None:
            office = session.scalar(select(StreetOffice.id).where(
                StreetOffice.code == street_office))
            user = User(username=username, role="street_admin", street_office_id=office)
        else:
            office = session.scalar(select(District.id).where(District.code == district))
            user = User(username=username, role="district_admin", district_id=office)
        if office is None:
            _refuse(_("no such street office or district"), 1)
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            _refuse(_("that username is taken"), 1)
        user.password_hash = hash_password(password)
        session.add(user)
        session.commit()
    console.print(escape(_("{role} {username} made").format(role=user.role, username=username)))


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
