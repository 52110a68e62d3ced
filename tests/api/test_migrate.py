"""Migrations when several processes start at once (api.migrate, api/migrations/env.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.api.conftest import _fresh_postgres

pytestmark = pytest.mark.postgres


def start(url: str) -> subprocess.Popen[bytes]:
    """A process migrating at start-up, as every server and worker does (Alembic's context is
    one per process, so processes, not threads)."""
    return subprocess.Popen([sys.executable, "-c", "import sys; from api.migrate import "
                             "upgrade; upgrade(sys.argv[1])", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes]) -> None:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out.decode()


def test_processes_starting_together_migrate_once_and_wait_for_each_other() -> None:
    url = _fresh_postgres()
    engine = create_engine(url)
    try:
        # Another process is migrating (it holds the lock): a starting process waits for it.
        with engine.connect() as other, other.begin():
            other.execute(text("SELECT pg_advisory_xact_lock(7146591220)"))
            waiting = start(url)
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(8)
            assert "schedules" not in inspect(engine).get_table_names()
        finish(waiting)
        # Several at once on an empty database: none fails, the schema is there once.
        engine.dispose()
        url = _fresh_postgres()
        for process in [start(url) for _ in range(3)]:
            finish(process)
        assert "schedules" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
