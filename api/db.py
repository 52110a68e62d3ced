"""Engines and sessions: SQLite embedded by default, PostgreSQL for several users.

One :class:`Database` per app (``app.state.db``); routes get a session through the
:func:`get_session` dependency, committed by the route and closed afterwards, and the hot path
an autocommit asyncio connection through :func:`get_connection`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from api.models import SCOPE, scope_session


class Database:
    """The engines and session factories for one database URL.

    Two engines on the same database: most routes are plain functions run in a thread with a
    sync :class:`Session`; the hot path (who is calling, ``GET /v1/me/tasks``) is ``async`` on
    an autocommit connection (plain statements, no ORM), because handing each request to a
    thread and back costs more than its queries (the GIL switch interval is 5 ms), and each of
    its statements stands alone, so BEGIN and COMMIT would only add round trips.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        async_kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # FastAPI runs sync routes in a thread pool: one connection per thread is fine.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            async_kwargs = kwargs
        else:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
            # A request holds an async connection for a millisecond or two, but in a burst a
            # process has dozens in flight; connections beyond pool_size are closed when
            # returned, and each new one is a PostgreSQL backend to start: keep enough.
            async_kwargs.update(pool_size=20, max_overflow=10, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        # Autocommit set once per connection (an execution option would set and reset it on
        # every checkout, two more round trips).
        self.async_engine: AsyncEngine = create_async_engine(
            _async_url(url), isolation_level="AUTOCOMMIT", **async_kwargs)
        if self.is_sqlite:
            for engine in (self.engine, self.async_engine.sync_engine):
                event.listen(engine, "connect", _sqlite_pragmas)
            # Serialise writers from the start so two redemptions cannot interleave (the
            # autocommit engine runs each statement on its own).
            event.listen(self.engine, "begin",
                         lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self, community_id: int | None = None) -> Session:
        """A session; scoped to ``community_id`` (:func:`api.models.scope_session`) when given,
        else the deployment's own (it reads every community)."""
        session = self.sessions()
        if community_id is not None:
            scope_session(session, community_id)
        return session

    def dispose(self) -> None:
        self.engine.dispose()

    async def dispose_async(self) -> None:
        await self.async_engine.dispose()


def _async_url(url: str) -> str:
    """The same database through an asyncio driver: psycopg 3 is both; SQLite needs aiosqlite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request; rolled back if the route raises.

    Async although the session is not: opening one does no I/O (the connection is taken on the
    first query, inside the sync route's thread), and a plain generator would cost two hops to
    FastAPI's thread pool per request. Closing returns the connection to the pool.
    """
    db: Database = request.app.state.db
    session = db.session()
    # The caller's community, known once the caller is (api.security.current_user puts it on
    # the request before the route runs its first query).
    state = request.state
    session.info[SCOPE] = lambda: getattr(state, "community_id", None)
    try:
        yield session
    finally:
        session.close()


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """An autocommit asyncio connection for the hot path (who is calling, ``GET
    /v1/me/tasks``), back in the pool after the request; see :class:`Database`."""
    db: Database = request.app.state.db
    async with db.async_engine.connect() as connection:
        yield connection
