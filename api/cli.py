"""The ``linli`` command: the matcher's commands (demo, solve, allocate, generate) plus ``serve``.

It lives here because ``serve`` needs the web service; ``matcher`` stays free of HTTP and SQL.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from matcher.cli import SAMPLE_NETWORK, app, console, data_dir

if TYPE_CHECKING:
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


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
