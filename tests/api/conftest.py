"""API fixtures: a fresh database per test, on SQLite and (when LINLI_TEST_DATABASE_URL is set,
as .ci/run does) on a real PostgreSQL server; a small community imported through the API."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from api import security
from api.community import TZ
from api.main import create_app
from api.models import Account, Community, LedgerEntry
from api.security import hash_password
from api.settings import ApiSettings
from matcher.generate import generate_community
from matcher.spreadsheets import write_community
from tests.conftest import CENTRE, WEEK

PG_URL = os.environ.get("LINLI_TEST_DATABASE_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _fresh_postgres() -> str:
    if not PG_URL:
        if os.environ.get("LINLI_REQUIRE_POSTGRES"):
            pytest.fail("LINLI_REQUIRE_POSTGRES is set but LINLI_TEST_DATABASE_URL is not")
        pytest.skip("no PostgreSQL (set LINLI_TEST_DATABASE_URL; .ci/run starts one)")
    # One database per xdist worker, so parallel tests never share tables.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = make_url(PG_URL)
    url = base.set(database=f"{base.database}_{worker}")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                              {"name": url.database}).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.connect() as conn:  # from any earlier test: drop everything, then migrate up
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.commit()
    engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'linli.db'}"
    return _fresh_postgres()


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    # A job worker thread in the app, claiming jobs as `linli worker` does, so jobs finish
    # inside TestClient.
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       solve_time_limit_s=8, webhook_url=None, points_per_minute=2,
                       job_worker=True)


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        # The community's clock: the Friday before WEEK, so solves see the whole week ahead (a
        # re-solve offers nothing before now); a test under way in the week sets its own.
        set_clock(test_client, WEEK.monday - dt.timedelta(days=3), "09:00")
        yield test_client


def make_user(client: TestClient, username: str, role: str, **links: str | int
              ) -> dict[str, str]:
    """Create a user directly in the database (the first coordinator has nobody to ask)."""
    from api.models import User

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        session.add(User(username=username, password_hash=hash_password("password-123"),
                         role=role, calendar_token=f"cal-{username}-token", **links))
        session.commit()
    return login(client, username)


def set_clock(client: TestClient, day: dt.date, hhmm: str = "00:05") -> None:
    """Set the community's clock (Asia/Shanghai) of the app under test to ``day`` at ``hhmm``."""
    moment = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), TZ)
    client.app.state.clock = lambda: moment  # type: ignore[attr-defined]


def login(client: TestClient, username: str, password: str = "password-123") -> dict[str, str]:
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def coordinator(client: TestClient) -> dict[str, str]:
    return make_user(client, "coordinator", "coordinator")


@pytest.fixture(scope="session")
def community_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small community (geodesic walking) as SCHEMA.md CSV files."""
    folder = tmp_path_factory.mktemp("community")
    problem = generate_community(40, 30, 4, network=None, centre=CENTRE, radius_m=700,
                                 week=WEEK, seed=11)
    write_community(problem, folder)
    return folder


def upload(client: TestClient, headers: dict[str, str], folder: Path) -> Any:
    files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in sorted(folder.glob("*.csv"))]
    return client.post("/v1/imports", files=files, headers=headers)


def wait_for(client: TestClient, headers: dict[str, str], schedule_id: int,
             timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/schedules/{schedule_id}", headers=headers).json()
        if body["status"] in ("solved", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"schedule {schedule_id} still {body['status']}")


@pytest.fixture
def published(client: TestClient, coordinator: dict[str, str],
              community_files: Path) -> dict[str, Any]:
    """The community imported, its week solved and published."""
    assert upload(client, coordinator, community_files).status_code == 200
    job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=coordinator)
    assert job.status_code == 202, job.text
    body = wait_for(client, coordinator, job.json()["id"])
    assert body["status"] == "solved", body
    response = client.post(f"/v1/schedules/{body['id']}/publish", json={}, headers=coordinator)
    assert response.status_code == 200, response.text
    tasks = client.get(f"/v1/schedules/{body['id']}/tasks", params={"limit": 500},
                       headers=coordinator).json()["items"]
    return {"id": body["id"], "tasks": tasks, "summary": body["summary"]}


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its smallest costs, for modules whose tests log in many times (use it with
    ``pytestmark = pytest.mark.usefixtures("cheap_hashes")``)."""
    monkeypatch.setattr(security, "hasher", PasswordHash((Argon2Hasher(
        time_cost=1, memory_cost=1024, parallelism=1),)))


def second_community(client: TestClient, code: str = "yi", name: str = "乙社区"
                     ) -> tuple[dict[str, str], int]:
    """Community ``code`` beside the default one in the default street office, added by the
    street office's admin: her headers and its id."""
    street = make_user(client, "street", "street_admin", street_office_id=1)
    created = client.post("/v1/communities", json={"code": code, "name": name},
                          headers=street)
    assert created.status_code == 201, created.text
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        ident = session.scalar(select(Community.id).where(Community.code == code))
    assert ident is not None
    return street, ident


def books(session: Session) -> dict[tuple[int, str], int]:
    """Every community's sum of balances, and (under its negated id) of entries, per currency:
    each must be 0 (the ledger is double-entry within each community)."""
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for community_id, currency, balance in session.execute(select(
            Account.community_id, Account.currency, Account.balance)):
        sums[(community_id, currency)] += balance
    for community_id, currency, amount in session.execute(select(
            Account.community_id, Account.currency, LedgerEntry.amount).join(
            LedgerEntry, LedgerEntry.account_id == Account.id)):
        sums[(-community_id, currency)] += amount
    return sums
