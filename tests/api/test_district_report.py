"""The district report through the service (api/district_report.py, api/routers/district.py):
two small communities of one street office (A, the default one, with two grid units; B without
units) and a third of another street office and district. A's and B's weeks are published,
one of A's tasks confirmed through the API, a redemption confirmed and another refused, charity
allocations published; the figures equal a hand count, the CSV carries a byte-order mark and
Chinese headers, the choropleth is offline, and each role reads only its own scope."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.community import TZ
from api.ledger import ISSUER, transfer
from api.models import (
    AllocationLineRow,
    AllocationRow,
    Community,
    NeedRow,
    ScheduleRow,
    TaskRow,
    UnmetRow,
)
from api.settings import ApiSettings
from api.tenancy import add_community, find_street_office
from matcher.domain import Week
from tests.api.conftest import make_user, set_clock
from tests.api.test_console import console_login
from tests.conftest import WEEK
from tests.matcher.test_mapview import external_references

pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times

MON, TUE, SUN = WEEK.monday, WEEK.monday + dt.timedelta(days=1), WEEK.monday + dt.timedelta(6)


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    # Two points a minute and red work's minutes times 1.5: the hand count shows both.
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None, points_per_minute=2,
                       time_red_multiplier=1.5, time_night_multiplier=1.0,
                       time_skill_multiplier=1.0)


def _unit(unit_id: str, name: str, west: float, east: float) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"unit_id": unit_id, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[
                [west, 22.50], [east, 22.50], [east, 22.56], [west, 22.56], [west, 22.50]]]}}


def _volunteer(vid: str) -> dict[str, Any]:
    return {"volunteer_id": vid, "name": f"志愿者{vid}", "lat": 22.534, "lon": 114.017,
            "skills": "meal_delivery", "availability": "mon 08:00-12:00;tue 08:00-12:00",
            "max_hours_week": 6}


def _need(nid: str, lon: float, priority: str, days: str = "mon") -> dict[str, Any]:
    return {"need_id": nid, "kind": "elderly", "service": "meal_delivery",
            "beneficiary": f"老人{nid}", "phone": "13800000000", "address": "3 栋",
            "lat": 22.535, "lon": lon, "days": days, "window": "09:00-11:00",
            "duration_min": 30, "priority": priority}


def _post(client: TestClient, headers: dict[str, str], kind: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/{kind}", json=body, headers=headers)
    assert response.status_code == 201, response.text


def _task(schedule_id: int, need_id: str, day: str, date: dt.date, start: str, end: str,
          volunteer_id: str, state: str) -> TaskRow:
    def minutes(hhmm: str) -> int:
        return int(hhmm[:2]) * 60 + int(hhmm[3:])
    return TaskRow(schedule_id=schedule_id, need_id=need_id, day=day, date=date,
                   start=minutes(start), end=minutes(end), volunteer_id=volunteer_id,
                   walk_min=3.0, state=state)


def _allocation(week: str, status: str, quantity: int) -> tuple[AllocationRow, int]:
    return AllocationRow(week=week, status=status, progress=""), quantity


def _lines(session: Any, allocations: list[tuple[AllocationRow, int]], prefix: str) -> None:
    session.add_all([a for a, _ in allocations])
    session.flush()
    for allocation, quantity in allocations:
        session.add(AllocationLineRow(
            allocation_id=allocation.id, donation_id=f"{prefix}D1", request_id=f"{prefix}R1",
            category="rice", priority="yellow", quantity=quantity, walk_min=4.0,
            delivery=False, date=MON, area_lat=22.535, area_lon=114.017))


@dataclass
class Street:
    headers: dict[str, dict[str, str]]
    b_id: int


@pytest.fixture
def street(client: TestClient) -> Street:
    """A: needs AN1 (red, Monday and Tuesday, in unit AG1), AN2 (yellow, in AG2) and AN3
    (blue, in no unit, unmet); a solved plan that was never published beside the published
    one. B: BN1 (red, unmet), no units. C (another street office and district): nothing."""
    headers = {"street": make_user(client, "street", "street_admin", street_office_id=1),
               "district": make_user(client, "district", "district_admin", district_id=1)}
    created = client.post("/v1/communities", json={"code": "yi", "name": "乙社区"},
                          headers=headers["street"])
    assert created.status_code == 201, created.text
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        other = find_street_office(session, "bei", name="北街道", district="other",
                                   create=True)
        assert other is not None
        add_community(session, "bing", "丙社区", other)
        session.commit()
        b_id = session.scalar(select(Community.id).where(Community.code == "yi"))
        c_id = session.scalar(select(Community.id).where(Community.code == "bing"))
    assert b_id is not None and c_id is not None
    a = headers["A"] = make_user(client, "Acoord", "coordinator", community_id=1)
    b = headers["B"] = make_user(client, "Bcoord", "coordinator", community_id=b_id)
    headers["C"] = make_user(client, "Ccoord", "coordinator", community_id=c_id)
    _post(client, a, "merchants", {"merchant_id": "AM1", "name": "甲食堂", "lat": 22.5338,
                                   "lon": 114.0169, "services": "meal", "capacity_per_day": 30,
                                   "open": "08:00-20:00"})
    for vid in ("AV1", "AV2"):
        _post(client, a, "volunteers", _volunteer(vid))
    _post(client, a, "needs", _need("AN1", 114.010, "red", "mon;tue"))
    _post(client, a, "needs", _need("AN2", 114.025, "yellow"))
    _post(client, a, "needs", _need("AN3", 114.100, "blue"))
    grids = {"type": "FeatureCollection", "features": [
        _unit("AG1", "甲西网格", 113.99, 114.018), _unit("AG2", "甲东网格", 114.018, 114.04)]}
    assert client.put("/v1/grids", json=grids, headers=a).status_code == 200
    _post(client, b, "volunteers", _volunteer("BV1"))
    _post(client, b, "needs", _need("BN1", 114.017, "red"))
    with db.session(1) as session:
        published = ScheduleRow(week=str(WEEK), status="published", progress="",
                                summary={"status": "optimal"})
        draft = ScheduleRow(week=str(WEEK), status="solved", progress="",
                            summary={"status": "optimal"})
        session.add_all([published, draft])
        session.flush()
        session.add_all([
            _task(published.id, "AN1", "mon", MON, "09:00", "09:30", "AV1", "completed"),
            _task(published.id, "AN1", "tue", TUE, "09:00", "09:30", "AV2", "offered"),
            _task(published.id, "AN2", "mon", MON, "10:00", "10:45", "AV2", "accepted"),
            # Declined work covers nothing and counts no hours.
            _task(published.id, "AN2", "mon", MON, "09:00", "09:45", "AV1", "declined"),
            UnmetRow(schedule_id=published.id, need_id="AN3", day="mon", date=MON,
                     reason_code="volunteers_busy", reason="busy"),
            # The plan nobody published covers AN3: it counts for nothing.
            _task(draft.id, "AN3", "mon", MON, "09:00", "09:30", "AV1", "proposed")])
        _lines(session, [_allocation(str(WEEK), "published", 3),
                         _allocation("2026-W47", "published", 5),
                         _allocation(str(WEEK), "superseded", 7)], "A")
        session.commit()
        confirmed = session.scalar(select(TaskRow.id).where(TaskRow.state == "completed"))
    with db.session(b_id) as session:
        published = ScheduleRow(week=str(WEEK), status="published", progress="",
                                summary={"status": "feasible"})
        session.add(published)
        session.flush()
        session.add(UnmetRow(schedule_id=published.id, need_id="BN1", day="mon", date=MON,
                             reason_code="no_skilled_volunteer_in_circle", reason="none"))
        _lines(session, [_allocation(str(WEEK), "published", 4)], "B")
        # Points issued late on the week's Sunday count; the Sunday before does not.
        late = dt.datetime.combine(SUN, dt.time(23, 30), TZ)
        transfer(session, ISSUER, ("volunteer", "BV1"), 7, "bonus", at=late)
        transfer(session, ISSUER, ("volunteer", "BV1"), 50, "bonus",
                 at=late - dt.timedelta(days=7))
        session.commit()
    # A confirms Monday's work at noon: 30 minutes, 60 points, 45 time-bank minutes (red).
    set_clock(client, MON, "12:00")
    done = client.post(f"/v1/tasks/{confirmed}/confirm", headers=a | {
        "Idempotency-Key": "confirm-an1-mon"})
    assert done.status_code == 200, done.text
    assert (done.json()["points"], done.json()["minutes"]) == (60, 45)
    merchant = make_user(client, "Amerchant", "merchant", merchant_id="AM1", community_id=1)
    volunteer = make_user(client, "Avolunteer", "volunteer", volunteer_id="AV1",
                          community_id=1)
    reward = client.post("/v1/rewards", json={"name": "理发", "points": 20}, headers=merchant)
    assert reward.status_code == 201, reward.text
    set_clock(client, TUE, "10:00")
    for k, decision in enumerate(("confirm", "refuse")):
        held = client.post("/v1/redemptions", json={"reward_id": reward.json()["id"]},
                           headers=volunteer | {"Idempotency-Key": f"redeem-000{k}"})
        assert held.status_code == 201, held.text
        decided = client.post(f"/v1/redemptions/{held.json()['id']}/{decision}",
                              headers=merchant | {"Idempotency-Key": f"decide-000{k}"})
        assert decided.status_code == 200, decided.text
    return Street(headers, b_id)


def _report(client: TestClient, headers: dict[str, str], week: str = str(WEEK)
            ) -> dict[str, Any]:
    response = client.get("/v1/district/report", params={"week": week}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _figures(area: dict[str, Any]) -> tuple[Any, ...]:
    return (area["occurrences_by_priority"], area["covered_by_priority"],
            area["unmet_by_reason"], area["volunteer_hours"], area["volunteers_active"])


def test_the_figures_equal_a_hand_count(client: TestClient, street: Street) -> None:
    report = _report(client, street.headers["street"])
    assert (report["week"], report["ledger_from"], report["ledger_to"]) == (
        str(WEEK), MON.isoformat(), SUN.isoformat())
    a, b = report["communities"]
    assert (a["code"], a["name"], a["status"], a["area_source"]) == (
        "default", "邻里社区", "optimal", "grids")
    # AN1 twice (Monday by AV1, Tuesday by AV2), AN2 by AV2 (45 minutes): 1.75 hours.
    assert _figures(a["figures"]) == (
        {"red": 2, "yellow": 1, "blue": 1}, {"red": 2, "yellow": 1, "blue": 0},
        {"volunteers_busy": 1}, 1.75, 2)
    assert a["figures"]["coverage_pct"] == {"red": 100.0, "yellow": 100.0, "blue": 0.0,
                                            "all": 75.0}
    # Points: 60 for the confirmed half hour; redeemed: the confirmed 20 (the refused went
    # back); minutes: 30 served and 15 for red work; charity: the week's published lines.
    ledger = {k: a["figures"][k] for k in ("points_issued", "points_redeemed",
                                           "timebank_minutes", "charity_units")}
    assert ledger == {"points_issued": 60, "points_redeemed": 20, "timebank_minutes": 45,
                      "charity_units": 3}
    units = {u["unit_id"]: u for u in a["units"]}
    assert list(units) == ["AG1", "AG2", ""]
    assert _figures(units["AG1"]) == ({"red": 2, "yellow": 0, "blue": 0},
                                      {"red": 2, "yellow": 0, "blue": 0}, {}, 1.0, 2)
    assert _figures(units["AG2"]) == ({"red": 0, "yellow": 1, "blue": 0},
                                      {"red": 0, "yellow": 1, "blue": 0}, {}, 0.75, 1)
    assert _figures(units[""]) == ({"red": 0, "yellow": 0, "blue": 1},
                                   {"red": 0, "yellow": 0, "blue": 0},
                                   {"volunteers_busy": 1}, 0.0, 0)
    assert units["AG1"]["unit_name"] == "甲西网格"
    assert units[""]["unit_name"] == "不在任何网格内"
    assert units["AG1"]["points_issued"] is None  # the ledger does not say where
    assert (b["code"], b["status"], b["area_source"], b["units"]) == (
        "yi", "feasible", "hull", [])
    assert _figures(b["figures"]) == ({"red": 1, "yellow": 0, "blue": 0},
                                      {"red": 0, "yellow": 0, "blue": 0},
                                      {"no_skilled_volunteer_in_circle": 1}, 0.0, 0)
    assert (b["figures"]["points_issued"], b["figures"]["points_redeemed"],
            b["figures"]["timebank_minutes"], b["figures"]["charity_units"]) == (7, 0, 0, 4)


def test_a_week_without_a_published_plan_counts_visits_and_covers_nothing(
        client: TestClient, street: Street) -> None:
    following = Week.containing(WEEK.monday + dt.timedelta(days=7))
    a, b = _report(client, street.headers["street"], str(following))["communities"]
    assert a["status"] == b["status"] == "unpublished"
    assert a["figures"]["occurrences_by_priority"] == {"red": 2, "yellow": 1, "blue": 1}
    assert a["figures"]["covered_by_priority"] is None
    assert a["figures"]["coverage_pct"]["all"] is None
    assert a["figures"]["points_issued"] == 0


def test_the_csv_has_a_byte_order_mark_and_chinese_headers(client: TestClient,
                                                           street: Street) -> None:
    response = client.get("/v1/district/report.csv", params={"week": str(WEEK)},
                          headers=street.headers["street"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert f"district_report-{WEEK}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["社区/community"], r["网格编号/unit_id"]) for r in rows] == [
        ("邻里社区", ""), ("邻里社区", "AG1"), ("邻里社区", "AG2"), ("邻里社区", ""),
        ("乙社区", "")]
    whole = rows[0]
    assert (whole["发放积分/points_issued"], whole["兑换积分/points_redeemed"],
            whole["时间银行（分钟）/timebank_minutes"],
            whole["发放的慈善物资（件）/charity_units"]) == ("60", "20", "45", "3")
    assert whole["志愿服务时长（小时）/volunteer_hours"] == "1.75"
    assert rows[1]["发放积分/points_issued"] == ""  # a unit: the ledger does not say


def test_the_choropleth_is_drawn_offline(client: TestClient, street: Street) -> None:
    response = client.get("/v1/district/map", params={"week": str(WEEK)},
                          headers=street.headers["street"])
    assert response.status_code == 200, response.text
    doc = response.json()
    communities = doc["layers"]["communities"]["features"]
    assert [f["properties"]["community"] for f in communities] == ["邻里社区", "乙社区"]
    assert [f["properties"]["coverage"]["all"] for f in communities] == [75.0, 0.0]
    assert [f["properties"]["unit_id"] for f in doc["layers"]["units"]["features"]] == [
        "AG1", "AG2"]
    assert doc["tiles"] == [] and doc["legend_title"] == "服务已安排的比例"
    english = client.get("/v1/district/map", params={"week": str(WEEK)},
                         headers=street.headers["street"] | {"Accept-Language": "en"})
    assert english.json()["legend_title"] == "Share of visits covered"
    page = client.get("/v1/district/map.html", params={"week": str(WEEK)},
                      headers=street.headers["street"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "LinliDistrictMap.draw" in page.text and "乙社区" in page.text
    assert external_references(page.text) == []


def _codes(client: TestClient, headers: dict[str, str]) -> list[str]:
    return [c["code"] for c in _report(client, headers)["communities"]]


def test_each_role_reads_only_its_scope(client: TestClient, street: Street) -> None:
    h = street.headers
    # Admins: every community below them without naming one; the one they name.
    assert _codes(client, h["street"]) == ["default", "yi"]
    assert _codes(client, h["district"]) == ["default", "yi"]
    assert _codes(client, h["street"] | {"X-Linli-Community": "yi"}) == ["yi"]
    # A coordinator: her own community, whatever she sends.
    assert _codes(client, h["A"]) == ["default"]
    assert _codes(client, h["B"]) == ["yi"]
    assert _codes(client, h["C"]) == ["bing"]
    report = client.get("/v1/district/report", params={"week": str(WEEK)}, headers=h["A"])
    assert "乙社区" not in report.text and "BN1" not in report.text
    assert client.get("/v1/district/report", params={"week": str(WEEK)},
                      headers=h["A"] | {"X-Linli-Community": "yi"}).status_code == 404
    # Another street office's community is not hers to name.
    assert client.get("/v1/district/report", params={"week": str(WEEK)},
                      headers=h["street"] | {"X-Linli-Community": "bing"}).status_code == 404
    for role, links in (("organiser", {}), ("volunteer", {"volunteer_id": "AV2"}),
                        ("merchant", {"merchant_id": "AM1"}),
                        ("grid_worker", {"grid_units": "AG1"})):
        headers = make_user(client, f"A{role}-2", role, community_id=1, **links)
        for path in ("/v1/district/report", "/v1/district/report.csv", "/v1/district/map",
                     "/v1/district/map.html"):
            assert client.get(path, params={"week": str(WEEK)},
                              headers=headers).status_code == 403, (role, path)
    assert client.get("/v1/district/report", params={"week": str(WEEK)}).status_code == 401


def test_a_bad_week_is_a_clear_422(client: TestClient, street: Street) -> None:
    for week in ("2026-48", "2026-W99"):
        response = client.get("/v1/district/report", params={"week": week},
                              headers=street.headers["street"])
        assert response.status_code == 422, (week, response.text)


def test_the_console_page_shows_the_table_and_the_offline_map(client: TestClient,
                                                              street: Street) -> None:
    """The admins' home links to the page; the page shows every community of hers with its
    units, the reasons in Chinese, the map drawn by the vendored Leaflet (nothing from
    outside), and the CSV to download; a coordinator's page shows her own community."""
    console_login(client, "street")
    home = client.get("/console/communities")
    assert 'href="/console/district"' in home.text
    page = client.get("/console/district", params={"week": str(WEEK)})
    assert page.status_code == 200, page.text[:500]
    text = page.text
    assert "街道报表" in text and "邻里社区" in text and "乙社区" in text and "丙社区" not in text
    assert "甲西网格" in text and "不在任何网格内" in text
    assert "附近的志愿者都排满了: 1" in text
    assert 'id="linli-district-data"' in text and 'data-testid="district-map"' in text
    assert "/console/map/vendor/leaflet/leaflet.js" in text
    assert "/console/map/linli-district-map.js" in text
    assert external_references(text) == []
    for asset in ("/console/map/vendor/leaflet/leaflet.js", "/console/map/linli-district-map.js",
                  "/console/map/linli-district-map.css", "/console/static/district-map.js"):
        assert client.get(asset).status_code == 200, asset
    download = client.get("/console/district.csv", params={"week": str(WEEK)})
    assert download.status_code == 200
    assert download.content.startswith("\ufeff社区/community".encode())
    client.cookies.clear()
    console_login(client, "Acoord")
    own = client.get("/console/district", params={"week": str(WEEK)}).text
    assert "邻里社区" in own and "乙社区" not in own
    client.cookies.clear()
    make_user(client, "Aorganiser", "organiser", community_id=1)
    console_login(client, "Aorganiser")
    assert client.get("/console/district").status_code == 403


def test_a_community_with_broken_rows_is_reported_failed_and_the_others_still_are(
        client: TestClient, street: Street) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session(street.b_id) as session:
        session.execute(update(NeedRow).where(NeedRow.need_id == "BN1")
                        .values(window="11:00-09:00"))
        session.commit()
    a, b = _report(client, street.headers["street"])["communities"]
    assert a["status"] == "optimal" and a["figures"]["covered_by_priority"]["red"] == 2
    assert b["status"] == "failed" and "BN1" in b["error"]
    assert b["figures"]["covered_by_priority"] is None
    assert b["figures"]["charity_units"] == 4  # the ledger is still read
