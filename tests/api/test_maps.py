"""A schedule's map through the API: the stored plan drawn as matcher.mapview draws a fresh
one (needs by coverage, busy volunteers), legend in the caller's language, streets when the
app has a network, and nothing before the plan is solved."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from api.models import ScheduleRow, TaskRow, UnmetRow
from tests.api.conftest import make_user
from tests.api.test_permissions import MERCHANT, NEED, VOLUNTEER
from tests.conftest import WEEK

SUMMARY = {"occurrences": 2, "covered": 1, "covered_by_priority": {"red": 1},
           "occurrences_by_priority": {"red": 2}, "bound": {"red": 2},
           "optimal_by_priority": {"red": True}, "status": "optimal"}


def _solved(client: TestClient, headers: dict[str, str], status: str = "solved",
            summary: dict[str, Any] | None = SUMMARY) -> int:
    for kind, body in (("volunteers", VOLUNTEER), ("needs", NEED | {"days": "mon;tue"}),
                       ("merchants", MERCHANT)):
        assert client.post(f"/v1/{kind}", json=body, headers=headers).status_code == 201
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = ScheduleRow(week=str(WEEK), status=status, progress="done", summary=summary)
        if status == "running":  # held by a worker elsewhere: the app's own must not take it
            row.worker = "elsewhere"
            row.claimed_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        session.add(row)
        session.flush()
        session.add(TaskRow(schedule_id=row.id, need_id="N1", day="mon", date=WEEK.monday,
                            start=9 * 60, end=9 * 60 + 30, volunteer_id="V1", walk_min=3.0,
                            state="proposed"))
        session.add(UnmetRow(schedule_id=row.id, need_id="N1", day="tue",
                             date=WEEK.monday + dt.timedelta(days=1),
                             reason_code="no_available_volunteer", reason="nobody free",
                             fix=""))
        session.commit()
        return row.id


def test_the_map_of_a_stored_plan_shows_coverage_and_the_legend_in_chinese(
        client: TestClient) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    schedule_id = _solved(client, coordinator)
    response = client.get(f"/v1/schedules/{schedule_id}/map", headers=coordinator)
    assert response.status_code == 200, response.text
    doc = response.json()
    [need] = doc["layers"]["needs"]["features"]
    assert need["properties"]["state"] == "partial"
    assert need["properties"]["reasons"] == ["no_available_volunteer"]
    [volunteer] = doc["layers"]["volunteers"]["features"]
    assert volunteer["properties"]["busy"] is True
    assert len(doc["layers"]["merchants"]["features"]) == 1
    assert doc["layers"]["streets"]["features"] == []  # the test app has no street network
    assert doc["tiles"] == []  # nothing from outside unless LINLI_TILES asks
    assert doc["legend_title"] == "图例"
    english = client.get(f"/v1/schedules/{schedule_id}/map",
                         headers=coordinator | {"Accept-Language": "en"}).json()
    assert english["legend_title"] == "Legend"


def test_there_is_no_map_before_the_plan_is_solved(client: TestClient) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    schedule_id = _solved(client, coordinator, status="running", summary=None)
    assert client.get(f"/v1/schedules/{schedule_id}/map",
                      headers=coordinator).status_code == 409
    assert client.get("/v1/schedules/999/map", headers=coordinator).status_code == 404
