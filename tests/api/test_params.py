"""Query and path parameters a person can mistype: each is a 422 problem naming the parameter,
never a 500; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.params import MAX_ID, MAX_OFFSET
from tests.api.conftest import make_user

PROBLEM_JSON = "application/problem+json"
VOLUNTEER = {"volunteer_id": "V1", "name": "王芳", "lat": 22.534, "lon": 114.017,
             "skills": "meal_delivery", "availability": "mon 08:00-12:00"}
MERCHANT = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
            "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}
BAD_WEEKS = ["2026-W60", "next", "bad", "2026-W00", "2021-W53", "0000-W01", "9999-W52"]
TOO_BIG = str(2**64 + 1)  # beyond 64 bits


def _assert_422(response: Any, where: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert where in [e["path"] for e in response.json()["errors"]], response.json()


@pytest.fixture
def people(client: TestClient, coordinator: dict[str, str]) -> dict[str, dict[str, str]]:
    assert client.post("/v1/volunteers", json=VOLUNTEER, headers=coordinator).status_code == 201
    assert client.post("/v1/merchants", json=MERCHANT, headers=coordinator).status_code == 201
    return {"coordinator": coordinator,
            "volunteer": make_user(client, "vol", "volunteer", volunteer_id="V1"),
            "merchant": make_user(client, "shop", "merchant", merchant_id="M1")}


def test_a_week_that_does_not_exist_is_422(client: TestClient,
                                           people: dict[str, dict[str, str]]) -> None:
    for week in BAD_WEEKS:
        for path, who in (("/v1/schedules", "coordinator"), ("/v1/allocations", "coordinator"),
                          ("/v1/me/tasks", "volunteer")):
            _assert_422(client.get(path, params={"week": week}, headers=people[who]),
                        ["query", "week"])
        _assert_422(client.post("/v1/schedules", json={"week": week},
                                headers=people["coordinator"]), ["body", "week"])


def test_good_weeks_still_work(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    assert client.get("/v1/schedules", params={"week": "2026-W53"},
                      headers=people["coordinator"]).json()["items"] == []
    assert client.get("/v1/me/tasks", params={"week": "2026-W48"},
                      headers=people["volunteer"]).json() == []


def test_a_month_that_cannot_be_counted_is_422(client: TestClient,
                                               people: dict[str, dict[str, str]]) -> None:
    for month in ("0000-01", "9999-12", "2026-13", "2026-1", "next"):
        for suffix in ("", ".csv"):  # anonymous
            _assert_422(client.get(f"/v1/reports/allocations/{month}{suffix}"),
                        ["path", "month"])
        _assert_422(client.get("/v1/me/statement", params={"month": month},
                               headers=people["volunteer"]), ["query", "month"])
        _assert_422(client.get("/v1/merchants/M1/settlement", params={"month": month},
                               headers=people["merchant"]), ["query", "month"])


def test_the_extreme_months_that_exist_are_counted(client: TestClient,
                                                   people: dict[str, dict[str, str]]) -> None:
    for month in ("0001-01", "9998-12"):
        assert client.get(f"/v1/reports/allocations/{month}").status_code == 200
        assert client.get("/v1/me/statement", params={"month": month},
                          headers=people["volunteer"]).json()["entries"]["items"] == []


def test_ids_out_of_range_are_422(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    for ident in (TOO_BIG, str(2**63), str(MAX_ID + 1), "0", "-1"):
        _ids_out_of_range_are_422(client, people, ident)


def _ids_out_of_range_are_422(client: TestClient, people: dict[str, dict[str, str]],
                              ident: str) -> None:
    staff, shop = people["coordinator"], people["merchant"]
    for path, who in ((f"/v1/schedules/{ident}", staff),
                      (f"/v1/allocations/{ident}", staff),
                      (f"/v1/schedules/{ident}/tasks", staff)):
        _assert_422(client.get(path, headers=who), ["path", path.split("/")[2][:-1] + "_id"])
    _assert_422(client.post(f"/v1/redemptions/{ident}/confirm",
                            headers=shop | {"Idempotency-Key": "key-00001"}),
                ["path", "redemption_id"])
    _assert_422(client.post(f"/v1/tasks/{ident}/confirm",
                            headers=staff | {"Idempotency-Key": "key-00001"}),
                ["path", "task_id"])
    _assert_422(client.get("/v1/audit", params={"user_id": ident}, headers=staff),
                ["query", "user_id"])
    _assert_422(client.post("/v1/redemptions", json={"reward_id": int(ident)},
                            headers=people["volunteer"] | {"Idempotency-Key": "key-00001"}),
                ["body", "reward_id"])


def test_the_largest_id_is_a_404(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    response = client.get(f"/v1/schedules/{MAX_ID}", headers=people["coordinator"])
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM_JSON


def test_offsets_and_filters_out_of_range_are_422(client: TestClient,
                                                  people: dict[str, dict[str, str]]) -> None:
    staff = people["coordinator"]
    for path in ("/v1/volunteers", "/v1/needs", "/v1/audit"):
        _assert_422(client.get(path, params={"offset": str(2**63)}, headers=staff),
                    ["query", "offset"])
        page = client.get(path, params={"offset": str(MAX_OFFSET)}, headers=staff)
        assert page.status_code == 200 and page.json()["items"] == []
    for kind in ("needs", "requests"):
        _assert_422(client.get(f"/v1/{kind}", params={"priority": "purple"}, headers=staff),
                    ["query", "priority"])
        assert client.get(f"/v1/{kind}", params={"priority": "red"},
                          headers=staff).status_code == 200


def test_a_time_outside_the_calendar_in_utc_is_422(client: TestClient,
                                                   coordinator: dict[str, str]) -> None:
    for since in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        _assert_422(client.get("/v1/audit", params={"since": since}, headers=coordinator),
                    ["query", "since"])
    for since in ("0001-01-01T00:00:00", "2026-11-24T10:00:00+08:00"):
        assert client.get("/v1/audit", params={"since": since},
                          headers=coordinator).status_code == 200
