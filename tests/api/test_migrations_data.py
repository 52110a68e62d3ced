"""Migrations that convert data, tested with rows present, up and down, on SQLite and
PostgreSQL (the ``database_url`` fixture gives both)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import column, create_engine, table, text

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
    # The application reads the converted rows as the domain.
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
