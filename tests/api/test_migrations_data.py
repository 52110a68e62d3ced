"""Migrations that convert data, tested with rows present, up and down, on SQLite and
PostgreSQL (the ``database_url`` fixture gives both)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import column, create_engine, inspect, table, text

from api.community import load_problem
from api.db import Database
from api.migrate import downgrade, upgrade
from matcher.domain import Availability, Day, TimeWindow
from tests.conftest import WEEK

OLD_ROWS = {
    "volunteers": {"volunteer_id": "V1", "name": "王芳", "lat": 22.53, "lon": 114.01,
                   "skills": "escort_medical;meal_delivery",
                   "availability": "mon 08:00-12:00;wed 14:00-18:30", "max_hours_week": 6},
    "needs": {"need_id": "N1", "kind": "elderly", "service": "meal_delivery",
              "beneficiary": "张奶奶", "phone": "", "address": "", "lat": 22.531, "lon": 114.011,
              "days": "mon;wed", "window": "09:00-12:00", "duration_min": 30,
              "skills": "meal_delivery", "volunteers_needed": 1, "priority": "red",
              "merchant_service": ""},
    "merchants": {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.532, "lon": 114.012,
                  "services": "meal;tea", "capacity_per_day": 30, "open": "10:00-20:00"},
    "resources": {"resource_id": "osm:n1", "category": "clinic", "name": "社康", "lat": 22.5,
                  "lon": 114.0, "services": "", "hidden": False},
}
# A need without skills: an empty list, and back to empty text.
OLD_ROWS_2 = {"needs": {**OLD_ROWS["needs"], "need_id": "N2", "skills": "", "days": "sun"}}


def _insert(url: str, rows: dict[str, dict[str, Any]]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for name, row in rows.items():
            conn.execute(table(name, *(column(c) for c in row)).insert(), row)
    engine.dispose()


def _read(url: str, table: str, key: str, ident: str, *columns: str) -> tuple[Any, ...]:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table} "
                                f"WHERE {key} = :ident"), {"ident": ident}).one()
    engine.dispose()
    return tuple(json.loads(v) if isinstance(v, str) and v[:1] in ("[", "{") else v for v in row)


def test_list_columns_migrate_to_json_and_back_with_rows(database_url: str) -> None:
    upgrade(database_url, "0015")
    _insert(database_url, OLD_ROWS)
    _insert(database_url, OLD_ROWS_2)
    upgrade(database_url, "0013")
    assert _read(database_url, "volunteers", "volunteer_id", "V1", "skills", "availability") == (
        ["escort_medical", "meal_delivery"],
        [{"day": "mon", "start": 480, "end": 720}, {"day": "wed", "start": 840, "end": 1110}])
    assert _read(database_url, "needs", "need_id", "N1", "days", "skills") == (
        ["mon", "wed"], ["meal_delivery"])
    assert _read(database_url, "needs", "need_id", "N2", "days", "skills") == (["sun"], [])
    assert _read(database_url, "merchants", "merchant_id", "M1", "services") == (
        ["meal", "tea"],)
    assert _read(database_url, "resources", "resource_id", "osm:n1", "services") == ([],)
    # The application reads the converted rows as the domain (in today's schema).
    upgrade(database_url)
    db = Database(database_url)
    try:
        with db.session() as session:
            problem = load_problem(session, WEEK)
    finally:
        db.dispose()
    volunteer = problem.volunteer_by_id["V1"]
    assert volunteer.availability == (Availability(Day.MON, TimeWindow(480, 720)),
                                      Availability(Day.WED, TimeWindow(840, 1110)))
    assert volunteer.skills == {"escort_medical", "meal_delivery"}
    assert problem.need_by_id["N1"].days == (Day.MON, Day.WED)
    assert problem.merchant_by_id["M1"].services == {"meal", "tea"}

    downgrade(database_url, "0015")
    assert _read(database_url, "volunteers", "volunteer_id", "V1", "skills", "availability") == (
        "escort_medical;meal_delivery", "mon 08:00-12:00;wed 14:00-18:30")
    assert _read(database_url, "needs", "need_id", "N1", "days", "skills") == (
        "mon;wed", "meal_delivery")
    assert _read(database_url, "needs", "need_id", "N2", "days", "skills") == ("sun", "")
    assert _read(database_url, "merchants", "merchant_id", "M1", "services") == ("meal;tea",)
    assert _read(database_url, "resources", "resource_id", "osm:n1", "services") == ("",)
    upgrade(database_url)  # and up again, from the text the downgrade wrote


def test_an_unreadable_availability_stops_the_migration_naming_the_row(
        database_url: str) -> None:
    upgrade(database_url, "0015")
    _insert(database_url, {"volunteers": {**OLD_ROWS["volunteers"],
                                          "availability": "whenever"}})
    with pytest.raises(ValueError, match="volunteers V1: availability 'whenever'"):
        upgrade(database_url, "0013")


# One of every owned row (as 0013 leaves them), and rows reached through them.
TENANT_ROWS: dict[str, dict[str, Any]] = {
    "volunteers": {"volunteer_id": "V1", "name": "王芳", "lat": 22.53, "lon": 114.01,
                   "skills": '["meal_delivery"]',
                   "availability": '[{"day": "mon", "start": 480, "end": 720}]',
                   "max_hours_week": 6},
    "needs": {"need_id": "N1", "kind": "elderly", "service": "meal_delivery",
              "beneficiary": "张奶奶", "phone": "", "address": "", "lat": 22.531, "lon": 114.011,
              "days": '["mon"]', "window": "09:00-12:00", "duration_min": 30,
              "skills": '["meal_delivery"]', "volunteers_needed": 1, "priority": "red",
              "merchant_service": ""},
    "merchants": {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.532, "lon": 114.012,
                  "services": '["meal"]', "capacity_per_day": 30, "open": "10:00-20:00"},
    "grid_units": {"unit_id": "G1", "position": 0, "name": "一网格", "geometry": "{}"},
    "resources": {"resource_id": "osm:n1", "category": "clinic", "name": "社康", "lat": 22.5,
                  "lon": 114.0, "services": "[]", "hidden": False},
    "schedules": {"id": 1, "week": str(WEEK), "status": "published", "progress": "",
                  "attempts": 0, "cancel_requested": False},
    "suggestions": {"id": 1, "week": str(WEEK), "status": "queued", "progress": "",
                    "attempts": 0, "cancel_requested": False, "kind": "partners", "k": 1},
    "donations": {"donation_id": "D1", "donor": "华润万家", "category": "rice", "quantity": 2,
                  "lat": 22.53, "lon": 114.01, "expires": ""},
    "requests": {"request_id": "R1", "beneficiary": "李伯伯家", "category": "rice",
                 "quantity": 1, "lat": 22.53, "lon": 114.01, "priority": "red"},
    "allocations": {"id": 1, "week": str(WEEK), "status": "published", "progress": "",
                    "attempts": 0, "cancel_requested": False},
    "accounts": {"id": 1, "kind": "issuer", "owner": "community", "balance": -30,
                 "currency": "points", "floor": 0},
    "members": {"member_id": "F1", "name": "王奶奶", "phone": "", "address": "", "lat": 22.53,
                "lon": 114.01},
    "audit_log": {"id": 1, "at": "2026-11-20 01:00:00", "user_id": None, "action": "read",
                  "target": "needs", "detail": ""},
    "outbox": {"id": 1, "recipient": "volunteer:V1", "kind": "task.offered", "payload": "{}",
               "status": "pending", "attempts": 0, "next_attempt_at": "2026-11-20 01:00:00"},
    "users": {"id": 1, "username": "coordinator", "password_hash": "x", "role": "coordinator"},
}


def _count(url: str, sql: str) -> Any:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


def test_existing_data_moves_into_the_default_community_and_back(database_url: str) -> None:
    """0016 with a row in every owned table: all of them land in the default community (code
    ``default``, 邻里社区), the version carries over, the application reads them as that
    community; the downgrade takes them back to one community per database."""
    from api.models import scope_session

    upgrade(database_url, "0013")
    _insert(database_url, TENANT_ROWS)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE community_version SET version = 7"))
    engine.dispose()
    upgrade(database_url, "0016")
    assert _read(database_url, "communities", "code", "default", "id", "name") == (1, "邻里社区")
    for name in TENANT_ROWS:
        assert _count(database_url, f"SELECT count(*) FROM {name} WHERE community_id = 1") == 1, \
            name
    assert _read(database_url, "community_version", "community_id", "1", "version") == (7,)
    db = Database(database_url)
    try:
        with db.session() as session:
            scope_session(session, 1)
            problem = load_problem(session, WEEK)
            assert [v.id for v in problem.volunteers] == ["V1"]
            assert [n.id for n in problem.needs] == ["N1"]
            scope_session(session, 2)  # another community sees none of them
            assert not load_problem(session, WEEK).volunteers
    finally:
        db.dispose()

    downgrade(database_url, "0013")
    assert _read(database_url, "community_version", "id", "1", "version") == (7,)
    assert _read(database_url, "needs", "need_id", "N1", "beneficiary") == ("张奶奶",)
    assert _count(database_url, "SELECT count(*) FROM accounts") == 1
    upgrade(database_url)


def test_going_back_to_one_community_refuses_when_there_are_several(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO communities (code, name, street_office_id) "
                          "VALUES ('jingtian', '景田社区', 1)"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="holds 2 communities"):
        downgrade(database_url, "0013")
    assert _count(database_url, "SELECT count(*) FROM communities") == 2  # nothing lost


def test_a_community_s_webhook_address_comes_and_goes_with_0023(database_url: str) -> None:
    """0023 adds communities.webhook_url (none: the deployment's webhook, as before); going back
    drops it and keeps the communities."""
    upgrade(database_url, "0017")
    upgrade(database_url, "0023")
    assert _read(database_url, "communities", "code", "default", "webhook_url") == (None,)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE communities SET webhook_url = 'https://mp.example.cn/hook'"))
    engine.dispose()
    assert _read(database_url, "communities", "code", "default", "webhook_url") == (
        "https://mp.example.cn/hook",)
    downgrade(database_url, "0017")
    assert _read(database_url, "communities", "code", "default", "name") == ("邻里社区",)
    engine = create_engine(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("communities")}
    engine.dispose()
    assert "webhook_url" not in columns and "code" in columns
    upgrade(database_url)
    assert _read(database_url, "communities", "code", "default", "webhook_url") == (None,)
