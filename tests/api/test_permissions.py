"""Who may do what: every route of the OpenAPI document, called by every role, answers as the
permission table (api/permissions.py) declares; object rules (own tasks, own shop); imports
checked per file kind; what organisers see of volunteers and needs."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api import permissions
from api.models import (
    AllocationRow,
    DonationRow,
    ScheduleRow,
    SuggestionRow,
    TaskRow,
    User,
    VolunteerRow,
)
from api.permissions import ANONYMOUS, PERMISSIONS, ROLES
from api.security import Role
from api.settings import ApiSettings
from tests.api.conftest import make_user
from tests.conftest import WEEK

METHODS = ("get", "post", "put", "delete", "patch")
ORDER = [ANONYMOUS, "volunteer", "merchant", "organiser", "grid_worker", "coordinator",
         "street_admin", "district_admin"]
# An admin names the community she reads (the default one, where the world lives).
IN_DEFAULT = {"X-Linli-Community": "default"}

VOLUNTEER = {"volunteer_id": "V1", "name": "王芳", "lat": 22.534123, "lon": 114.017654,
             "skills": "meal_delivery", "availability": "mon 08:00-12:00", "max_hours_week": 4}
NEED = {"need_id": "N1", "kind": "elderly", "service": "meal_delivery", "beneficiary": "张奶奶",
        "phone": "13800000000", "address": "香蜜湖街道 3 栋 502", "lat": 22.535212,
        "lon": 114.018345, "days": "mon", "window": "09:00-11:00", "duration_min": 30,
        "priority": "red"}
MERCHANT = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
            "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}
DONATION = {"donation_id": "D1", "donor": "华润万家", "category": "rice_5kg", "quantity": 4,
            "lat": 22.5336, "lon": 114.0191, "expires": ""}
REQUEST = {"request_id": "R1", "beneficiary": "李伯伯家", "category": "rice_5kg", "quantity": 2,
           "lat": 22.5349, "lon": 114.0172, "priority": "yellow"}


pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    # No job worker: a queued schedule or allocation stays queued (only access is under test).
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None)


@dataclass
class World:
    """One account per role, and one existing object of each kind the routes name."""

    headers: dict[str, dict[str, str]]
    params: dict[str, str]


@pytest.fixture
def world(client: TestClient) -> World:
    coordinator = make_user(client, "coordinator", "coordinator")
    for kind, body in (("merchants", MERCHANT), ("merchants", MERCHANT | {"merchant_id": "M2"}),
                       ("volunteers", VOLUNTEER),
                       ("volunteers", VOLUNTEER | {"volunteer_id": "V2", "name": "李雷"}),
                       ("needs", NEED), ("donations", DONATION), ("requests", REQUEST)):
        response = client.post(f"/v1/{kind}", json=body, headers=coordinator)
        assert response.status_code == 201, response.text
    headers = {
        ANONYMOUS: {},
        "coordinator": coordinator,
        "organiser": make_user(client, "organiser", "organiser"),
        "volunteer": make_user(client, "volunteer", "volunteer", volunteer_id="V1"),
        "merchant": make_user(client, "merchant", "merchant", merchant_id="M1"),
        "grid_worker": make_user(client, "grid", "grid_worker", grid_units="G1"),
        "street_admin": make_user(client, "street", "street_admin", street_office_id=1)
        | IN_DEFAULT,
        "district_admin": make_user(client, "district", "district_admin", district_id=1)
        | IN_DEFAULT,
    }
    grids = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"unit_id": unit, "name": unit}, "geometry": {
            "type": "Polygon", "coordinates": [[[west, 22.50], [west + 0.05, 22.50],
                                                [west + 0.05, 22.56], [west, 22.56],
                                                [west, 22.50]]]}}
        for unit, west in (("G1", 113.99), ("G2", 114.04))]}
    assert client.put("/v1/grids", json=grids, headers=coordinator).status_code == 200
    make_user(client, "other-volunteer", "volunteer", volunteer_id="V2")
    monday = WEEK.monday
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="")
        allocation = AllocationRow(week=str(WEEK), status="queued", progress="")
        suggestion = SuggestionRow(week=str(WEEK), status="queued", progress="",
                                   kind="partners", k=1)
        session.add_all([schedule, allocation, suggestion])
        session.flush()
        own = TaskRow(schedule_id=schedule.id, need_id="N1", day="mon", date=monday,
                      start=9 * 60, end=9 * 60 + 30, volunteer_id="V1", walk_min=3.0,
                      state="offered")
        others = TaskRow(schedule_id=schedule.id, need_id="N1", day="mon", date=monday,
                         start=10 * 60, end=10 * 60 + 30, volunteer_id="V2", walk_min=3.0,
                         state="offered")
        session.add_all([own, others])
        session.commit()
        params = {"ident": "", "user_id": str(session.query(User.id).filter_by(
            username="volunteer").scalar()), "schedule_id": str(schedule.id),
            "allocation_id": str(allocation.id), "suggestion_id": str(suggestion.id),
            "task_id": str(own.id),
            "other_task_id": str(others.id), "need_id": "N1", "day": "mon",
            "token": "cal-volunteer-token", "redemption_id": "1", "event_id": "1",
            "merchant_id": "M1", "link_id": "1", "member_id": "F1",
            "resource_id": "osm:n1", "unit_id": "G1", "run_id": "1",
            "month": WEEK.monday.strftime("%Y-%m"), "code": "default"}
    return World(headers, params)


IDENT = {"volunteers": "V1", "needs": "N1", "merchants": "M1", "donations": "D1",
         "requests": "R1"}
BODIES: dict[str, dict[str, Any]] = {
    "volunteers": VOLUNTEER, "needs": NEED, "merchants": MERCHANT, "donations": DONATION,
    "requests": REQUEST}


def _request(method: str, path: str, world: World) -> dict[str, Any]:
    """A minimal valid request for the route: path parameters naming existing objects (the
    volunteer's own task, the merchant's own shop), a body that passes validation."""
    kind = path.split("/")[2] if path.startswith("/v1/") else ""
    url = path
    for name, value in world.params.items():
        url = url.replace(f"{{{name}}}", IDENT.get(kind, value) if name == "ident" else value)
    assert "{" not in url, f"no value for a parameter of {path}"
    kwargs: dict[str, Any] = {"headers": {"Idempotency-Key": uuid.uuid4().hex}}
    if path == "/v1/auth/token":
        kwargs["data"] = {"username": "volunteer", "password": "password-123"}
    elif path == "/v1/imports":
        csv = pd.DataFrame([DONATION | {"donation_id": "D9"}]).to_csv(index=False)
        kwargs["files"] = [("files", ("donations.csv", csv.encode(), "text/csv"))]
    elif path == "/v1/communities" and method == "post":
        kwargs["json"] = {"code": f"c-{uuid.uuid4().hex[:8]}", "name": "新社区",
                          "street_office": "default"}
    elif path == "/v1/communities/{code}":
        kwargs["json"] = {"webhook_url": "https://hooks.example.cn/linli"}
    elif path == "/v1/users":
        kwargs["json"] = {"username": f"new-{uuid.uuid4().hex[:8]}",
                          "password": "password-123", "role": "organiser"}
    elif path in ("/v1/schedules", "/v1/allocations", "/v1/district/schedules"):
        kwargs["json"] = {"week": str(WEEK)}
    elif path == "/v1/suggestions":
        kwargs["json"] = {"week": str(WEEK), "kind": "partners", "k": 1}
    elif path.endswith("/publish"):
        kwargs["json"] = {}
    elif path.endswith("/decline"):
        kwargs["json"] = {"reason": "孩子生病"}
    elif path == "/v1/rewards" and method == "post":
        kwargs["json"] = {"name": "免费理发一次", "points": 10}
    elif path == "/v1/redemptions" and method == "post":
        kwargs["json"] = {"reward_id": 1}
    elif kind in BODIES and method in ("post", "put"):
        body = BODIES[kind]
        id_field = f"{kind[:-1]}_id"
        kwargs["json"] = body if method == "put" else body | {id_field: f"{body[id_field]}new"}
    if path.startswith("/v1/grids/"):
        kwargs["params"] = {"week": str(WEEK)}
    if path == "/v1/merchant/orders":
        kwargs["params"] = {"date": WEEK.monday.isoformat()}
    elif path.endswith("/settlement") or path == "/v1/me/statement":
        kwargs["params"] = {"month": world.params["month"]}
    return {"method": method.upper(), "url": url, **kwargs}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [(method, path) for path, item in spec["paths"].items()
            for method in METHODS if method in item]


def test_every_route_is_in_the_permission_table(client: TestClient) -> None:
    """A new route cannot ship without a decision, and the table names no route that is gone."""
    routes = {(method.upper(), path) for method, path in _operations(client)}
    assert routes - set(PERMISSIONS) == set(), "routes missing from api/permissions.py"
    assert set(PERMISSIONS) - routes == set(), "api/permissions.py names routes that do not exist"
    assert {r.value for r in Role} == ROLES


def test_every_route_by_every_role_answers_as_the_table_says(client: TestClient,
                                                             world: World) -> None:
    operations = _operations(client)
    # Deletions last, so the objects the other calls name still exist.
    operations.sort(key=lambda op: op[0] == "delete")
    wrong: list[str] = []
    for method, path in operations:
        allowed = permissions.allowed(method.upper(), path)
        for role in sorted(ORDER, key=lambda r: r in allowed):  # the refused ones first
            response = client.request(**_request(method, path, world) | {
                "headers": _request(method, path, world)["headers"] | world.headers[role]})
            status = response.status_code
            if role in allowed:
                ok = status not in (401, 403) and status < 500
            else:
                ok = status == (401 if role == ANONYMOUS else 403)
            if not ok:
                wrong.append(f"{method.upper()} {path} as {role}: {status} "
                             f"{response.text[:160]}")
    assert wrong == [], "\n".join(wrong)


def test_a_route_missing_from_the_table_is_closed(client: TestClient, world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(PERMISSIONS, ("GET", "/v1/me"))
    for role in ROLES:
        assert client.get("/v1/me", headers=world.headers[role]).status_code == 403


def test_organisers_are_refused_writes_to_the_community(client: TestClient,
                                                        world: World) -> None:
    organiser = world.headers["organiser"]
    moved = VOLUNTEER | {"name": "改名", "lat": 22.6}
    assert client.put("/v1/volunteers/V1", json=moved, headers=organiser).status_code == 403
    assert client.post("/v1/volunteers", json=moved | {"volunteer_id": "V7"},
                       headers=organiser).status_code == 403
    assert client.delete("/v1/needs/N1", headers=organiser).status_code == 403
    assert client.delete("/v1/merchants/M2", headers=organiser).status_code == 403
    coordinator = world.headers["coordinator"]
    assert client.get("/v1/volunteers/V1", headers=coordinator).json()["name"] == "王芳"
    assert client.get("/v1/merchants/M2", headers=coordinator).status_code == 200


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def test_imports_check_the_role_per_file_kind(client: TestClient, world: World) -> None:
    organiser, coordinator = world.headers["organiser"], world.headers["coordinator"]
    renamed = VOLUNTEER | {"name": "改名", "lat": 22.6}
    # A beneficiary renamed and moved, and a new volunteer, beside a permitted donation.
    files = [("files", ("donations.csv", _csv([DONATION | {"donation_id": "D5"}]), "text/csv")),
             ("files", ("needs.csv", _csv([NEED | {"beneficiary": "改名", "lat": 22.6}]),
                        "text/csv")),
             ("files", ("volunteers.csv", _csv([renamed, renamed | {"volunteer_id": "V8"}]),
                        "text/csv"))]
    refused = client.post("/v1/imports", files=files,
                          headers=organiser | {"Accept-Language": "en"})
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith("needs.csv: a organiser may not import needs")
    # Nothing was written, not even the donation the organiser may import.
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        assert session.get(DonationRow, "D5") is None
        assert session.get(VolunteerRow, "V8") is None
        assert session.get(VolunteerRow, "V1").name == "王芳"
    assert client.get("/v1/needs/N1", headers=coordinator).json()["beneficiary"] == "张奶奶"
    # The same refusal for a workbook, naming the sheet.
    book = io.BytesIO()
    with pd.ExcelWriter(book) as writer:
        for sheet_name, row in (("donations", DONATION | {"donation_id": "D6"}),
                                ("merchants", MERCHANT | {"name": "改名"})):
            pd.DataFrame([row]).to_excel(writer, sheet_name=sheet_name, index=False)
    sheet = client.post("/v1/imports", headers=organiser | {"Accept-Language": "en"}, files=[(
        "files", ("community.xlsx", book.getvalue(), "application/octet-stream"))])
    assert sheet.status_code == 403
    assert sheet.json()["detail"].startswith("community.xlsx[merchants]: a organiser may not")
    assert client.get("/v1/merchants/M1", headers=coordinator).json()["name"] == "幸福食堂"
    # What organisers keep, they import; a coordinator imports every kind.
    charity = [("files", ("donations.csv", _csv([DONATION | {"donation_id": "D5"}]),
                          "text/csv")),
               ("files", ("requests.csv", _csv([REQUEST | {"request_id": "R5"}]), "text/csv"))]
    done = client.post("/v1/imports", files=charity, headers=organiser)
    assert done.status_code == 200, done.text
    assert done.json()["created"] == {"donations": 1, "requests": 1}
    assert client.post("/v1/imports", files=files, headers=coordinator).status_code == 200
    assert client.get("/v1/volunteers/V1", headers=coordinator).json()["name"] == "改名"


def test_organisers_see_volunteers_and_needs_masked_and_coarse(client: TestClient,
                                                               world: World) -> None:
    organiser = world.headers["organiser"]
    volunteer = client.get("/v1/volunteers/V1", headers=organiser).json()
    assert volunteer == VOLUNTEER | {"name": "王*", "lat": 22.534, "lon": 114.018,
                                     "max_hours_week": 4.0}
    listed = client.get("/v1/volunteers", headers=organiser).json()["items"]
    assert [(v["name"], v["lat"], v["lon"]) for v in listed] == [
        ("王*", 22.534, 114.018), ("李*", 22.534, 114.018)]
    need = client.get("/v1/needs/N1", headers=organiser).json()
    assert need["beneficiary"] == "张**" and need["phone"] == "" and need["address"] == ""
    assert (need["lat"], need["lon"]) == (22.535, 114.018)
    assert client.get("/v1/needs", headers=organiser).json()["items"] == [need]
    # Coordinators see everything.
    coordinator = world.headers["coordinator"]
    assert client.get("/v1/volunteers/V1", headers=coordinator).json()["lat"] == 22.534123
    assert client.get("/v1/needs/N1", headers=coordinator).json()["phone"] == "13800000000"


def test_a_merchant_changes_and_settles_only_its_own_shop(client: TestClient,
                                                          world: World) -> None:
    merchant = world.headers["merchant"]
    other = MERCHANT | {"merchant_id": "M2", "capacity_per_day": 1}
    assert client.put("/v1/merchants/M2", json=other, headers=merchant).status_code == 403
    assert client.get("/v1/merchants/M2", headers=merchant).json()["capacity_per_day"] == 30
    assert client.get("/v1/merchants/M2/settlement", params={"month": "2026-11"},
                      headers=merchant).status_code == 403
    own = client.put("/v1/merchants/M1", json=MERCHANT | {"capacity_per_day": 12},
                     headers=merchant)
    assert own.status_code == 200 and own.json()["capacity_per_day"] == 12


def test_a_volunteer_acts_only_on_own_tasks(client: TestClient, world: World) -> None:
    volunteer = world.headers["volunteer"]
    other = world.params["other_task_id"]
    for action in ("accept", "check-in", "complete"):
        assert client.post(f"/v1/me/tasks/{other}/{action}",
                           headers=volunteer).status_code == 404
    assert client.post(f"/v1/me/tasks/{other}/decline", json={"reason": "不想去"},
                       headers=volunteer).status_code == 404
    mine = client.get("/v1/me/tasks", params={"week": str(WEEK)}, headers=volunteer).json()
    assert [t["volunteer_id"] for t in mine] == ["V1"]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        assert session.get(TaskRow, int(other)).state == "offered"


def test_a_grid_worker_sees_her_own_units_only(client: TestClient, world: World) -> None:
    """Grid scoping: the units, the report and the needs of her units, and 403 for another
    unit; the coordinator sees them all."""
    grid, coordinator = world.headers["grid_worker"], world.headers["coordinator"]
    assert [u["unit_id"] for u in client.get("/v1/grids", headers=grid).json()["items"]] == ["G1"]
    assert [u["unit_id"] for u in client.get("/v1/grids", headers=coordinator).json()["items"]] == [
        "G1", "G2"]
    report = client.get("/v1/grids/report", params={"week": str(WEEK)}, headers=grid)
    assert report.status_code == 200, report.text
    assert [(r["unit_id"], r["needs"], r["volunteers"]) for r in report.json()["items"]] == [
        ("G1", 1, 2)]
    needs = client.get("/v1/grids/G1/needs", params={"week": str(WEEK)}, headers=grid)
    assert [n["need_id"] for n in needs.json()["items"]] == ["N1"]
    assert client.get("/v1/grids/G2/needs", headers=grid).status_code == 403
    assert client.get("/v1/grids/G2/needs", headers=coordinator).json()["items"] == []
    assert client.get("/v1/grids/G9/needs", headers=grid).status_code == 404
    assert client.get("/v1/volunteers", headers=grid).status_code == 403
    bad = client.put("/v1/grids", json={"type": "FeatureCollection", "features": [
        {"properties": {"unit_id": "X"}, "geometry": {"type": "Point",
                                                      "coordinates": [114.0, 22.5]}}]},
        headers=coordinator)
    assert bad.status_code == 422 and "features[0].geometry" in bad.text
    assert client.get("/v1/grids", headers=coordinator).json()["total"] == 2  # all or nothing
