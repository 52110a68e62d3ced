"""The ``linli`` command: the matcher's commands (demo, solve, allocate, generate) plus ``serve``.

It lives here because ``serve`` needs the web service; ``matcher`` stays free of HTTP and SQL.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from matcher.cli import SAMPLE_NETWORK, app, console, data_dir


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="server processes (one per core on a multi-user server; each runs its "
        "own job worker)")] = 1,
    demo: Annotated[bool, typer.Option(
        help="load the sample community and demo accounts into an empty database")] = False,
) -> None:
    """Run the HTTP API (SQLite file linli.db unless LINLI_DATABASE_URL says otherwise)."""
    import os

    import uvicorn

    from api.db import Database
    from api.main import create_app
    from api.migrate import upgrade
    from api.seed import seed_demo
    from api.settings import ApiSettings

    settings = ApiSettings()
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
    console.print(escape(f"Linli API on http://{host}:{port}/docs  "
                         f"(database {settings.database_url})"))
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    # Several processes import the app themselves and read their settings from the environment.
    if settings.network_path:
        os.environ["LINLI_NETWORK_PATH"] = settings.network_path
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="info")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app()
