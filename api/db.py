"""Engine and sessions: SQLite embedded by default, PostgreSQL for several users.

One :class:`Database` per app (``app.state.db``); requests get a session through the
:func:`get_session` dependency, committed by the route and closed afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # FastAPI runs sync routes in a thread pool: one connection per thread is fine.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Serialise writers from the start so two redemptions cannot interleave.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


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
    try:
        yield session
    finally:
        session.close()
