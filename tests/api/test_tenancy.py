"""Communities in one deployment (api/tenancy.py): two communities A (the default one) and B
of one street office, each with volunteers, needs, merchants, donations, requests, members,
grid units, a published schedule, an allocation, points and an audit trail. Every GET route of
the OpenAPI document, called as every role of A (and as the street admin naming A), shows
nothing that only B has; every item route given B's ids answers 404; writes naming B's ids are
refused and change nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.errors import Problem
from api.ledger import ISSUER, transfer
from api.models import (
    AllocationLineRow,
    AllocationRow,
    AuditEntry,
    Community,
    DistrictRunRow,
    NeedRow,
    OutboxEvent,
    ScheduleRow,
    SuggestionRow,
    TaskRow,
    User,
    VolunteerRow,
)
from api.permissions import ANONYMOUS
from api.settings import ApiSettings
from api.tenancy import check_webhook_url, find_street_office
from tests.api.conftest import login, make_user, second_community
from tests.conftest import WEEK

METHODS = ("get", "post", "put", "delete", "patch")
A_ROLES = ("coordinator", "organiser", "volunteer", "merchant", "grid_worker")


pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None)


def _community(prefix: str, tag: str, west: float, east: float = 0.0) -> dict[str, Any]:
    """The records of one community: ids start with ``prefix``, names carry ``tag``; its
    places ``east`` degrees of longitude further east."""
    return {
        "volunteers": [{"volunteer_id": f"{prefix}V{i}", "name": f"{tag}志愿者{i}",
                        "lat": 22.534, "lon": 114.017 + east, "skills": "meal_delivery",
                        "availability": "mon 08:00-12:00", "max_hours_week": 4}
                       for i in (1, 2)],
        "needs": [{"need_id": f"{prefix}N1", "kind": "elderly", "service": "meal_delivery",
                   "beneficiary": f"{tag}奶奶", "phone": f"1380000{len(tag):04d}",
                   "address": f"{tag}路 3 栋", "lat": 22.535, "lon": 114.018 + east,
                   "days": "mon",
                   "window": "09:00-11:00", "duration_min": 30, "priority": "red"}],
        "merchants": [{"merchant_id": f"{prefix}M1", "name": f"{tag}食堂", "lat": 22.5338,
                       "lon": 114.0169 + east, "services": "meal", "capacity_per_day": 30,
                       "open": "10:00-20:00"}],
        "donations": [{"donation_id": f"{prefix}D1", "donor": f"{tag}超市",
                       "category": f"{prefix.lower()}rice", "quantity": 4, "lat": 22.5336,
                       "lon": 114.0191 + east, "expires": ""}],
        "requests": [{"request_id": f"{prefix}R1", "beneficiary": f"{tag}伯伯家",
                      "category": f"{prefix.lower()}rice", "quantity": 2, "lat": 22.5349,
                      "lon": 114.0172 + east, "priority": "yellow"}],
        "grids": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"unit_id": f"{prefix}G1",
                                               "name": f"{tag}网格"},
             "geometry": {"type": "Polygon", "coordinates": [[
                 [west, 22.50], [west + 0.1, 22.50], [west + 0.1, 22.56], [west, 22.56],
                 [west, 22.50]]]}}]},
        "member": {"member_id": f"{prefix}F1", "name": f"{tag}阿姨", "lat": 22.53,
                   "lon": 114.01 + east},
    }


@dataclass
class Side:
    """One community's accounts and the ids its routes name."""

    headers: dict[str, dict[str, str]]
    params: dict[str, str]
    markers: list[str]  # ids and names only this community has


@dataclass
class Two:
    a: Side
    b: Side
    street: dict[str, str]  # the street admin, naming A


def _fill(client: TestClient, community_id: int, prefix: str, tag: str, west: float,
          coordinator: dict[str, str], east: float = 0.0) -> Side:
    data = _community(prefix, tag, west, east)
    for kind in ("merchants", "volunteers", "needs", "donations", "requests"):
        for body in data[kind]:
            response = client.post(f"/v1/{kind}", json=body, headers=coordinator)
            assert response.status_code == 201, response.text
    assert client.put("/v1/grids", json=data["grids"], headers=coordinator).status_code == 200
    member = client.post("/v1/timebank/members", json=data["member"], headers=coordinator)
    assert member.status_code == 201, member.text
    link = community_id * 1000
    users = {"community_id": community_id}
    headers = {
        "coordinator": coordinator,
        "organiser": make_user(client, f"{prefix}organiser", "organiser", **users),
        "volunteer": make_user(client, f"{prefix}volunteer", "volunteer",
                               volunteer_id=f"{prefix}V1", **users),
        "merchant": make_user(client, f"{prefix}merchant", "merchant",
                              merchant_id=f"{prefix}M1", **users),
        "grid_worker": make_user(client, f"{prefix}grid", "grid_worker",
                                 grid_units=f"{prefix}G1", **users),
    }
    family = client.post("/v1/me/family", json={"member_id": f"{prefix}F1", "relation": "母亲"},
                         headers=headers["volunteer"])
    assert family.status_code == 201, family.text
    link = family.json()["id"]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session(community_id) as session:
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="",
                               summary={"note": f"{tag}排班"})
        allocation = AllocationRow(week=str(WEEK), status="published", progress="")
        suggestion = SuggestionRow(week=str(WEEK), status="queued", progress="",
                                   kind="partners", k=1)
        session.add_all([schedule, allocation, suggestion])
        session.flush()
        task = TaskRow(schedule_id=schedule.id, need_id=f"{prefix}N1", day="mon",
                       date=WEEK.monday, start=9 * 60, end=9 * 60 + 30,
                       volunteer_id=f"{prefix}V1", merchant_id=f"{prefix}M1", walk_min=3.0,
                       state="offered")
        session.add(task)
        session.add(AllocationLineRow(
            allocation_id=allocation.id, donation_id=f"{prefix}D1", request_id=f"{prefix}R1",
            category=f"{prefix.lower()}rice", priority="yellow", quantity=2, walk_min=4.0,
            delivery=False, date=WEEK.monday, area_lat=22.535, area_lon=114.017))
        transfer(session, ISSUER, ("volunteer", f"{prefix}V1"), 50, f"{tag}奖励")
        session.commit()
        ids = {"schedule_id": schedule.id, "allocation_id": allocation.id,
               "suggestion_id": suggestion.id, "task_id": task.id}
    with db.session() as session:
        # A district run is a street office's, not a community's: A's is of the street admin's
        # office, B's of another office, which she may not see.
        office = find_street_office(session, "default" if prefix == "A" else f"{prefix}-office",
                                    district=f"{prefix}-district", create=True)
        assert office is not None
        run = DistrictRunRow(week=str(WEEK), status="cancelled", progress="",
                             street_office_id=office.id, district_id=office.district_id,
                             communities={})
        session.add(run)
        session.commit()
        ids["run_id"] = run.id
    reward = client.post("/v1/rewards", json={"name": f"{tag}理发", "points": 10},
                         headers=headers["merchant"])
    assert reward.status_code == 201, reward.text
    redemption = client.post("/v1/redemptions", json={"reward_id": reward.json()["id"]},
                             headers=headers["volunteer"]
                             | {"Idempotency-Key": f"redeem-{prefix}-0001"})
    assert redemption.status_code == 201, redemption.text
    with db.session(community_id) as session:
        user_id = session.scalar(select(User.id).where(User.username == f"{prefix}volunteer"))
        event_id = session.scalar(select(func.max(OutboxEvent.id)))
    assert event_id is not None  # the redemption told the merchant
    ids |= {"user_id": user_id, "event_id": event_id}
    params = {"ident": "", **{k: str(v) for k, v in ids.items()},
              "need_id": f"{prefix}N1", "day": "mon", "token": f"cal-{prefix}volunteer-token",
              "redemption_id": str(redemption.json()["id"]),
              "merchant_id": f"{prefix}M1", "link_id": str(link), "member_id": f"{prefix}F1",
              "resource_id": f"merchant:{prefix}M1", "unit_id": f"{prefix}G1",
              "month": WEEK.monday.strftime("%Y-%m"),
              "code": "default" if prefix == "A" else "yi"}
    markers = [f"{prefix}V1", f"{prefix}V2", f"{prefix}N1", f"{prefix}M1", f"{prefix}D1",
               f"{prefix}R1", f"{prefix}F1", f"{prefix}G1", f"{prefix.lower()}rice", tag]
    return Side(headers, params, markers)


@pytest.fixture
def two(client: TestClient) -> Two:
    street, b_id = second_community(client)
    a = _fill(client, 1, "A", "甲", 113.99,
              make_user(client, "Acoordinator", "coordinator", community_id=1))
    # B lies beyond every circle of A's needs (about 5 km east): none of its volunteers is a
    # neighbour who may serve A (that sharing is tests/api/test_under_way.py's).
    b = _fill(client, b_id, "B", "乙", 113.99,
              make_user(client, "Bcoordinator", "coordinator", community_id=b_id), east=0.05)
    return Two(a, b, street | {"X-Linli-Community": "default"})


def _operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [(method, path) for path, item in spec["paths"].items()
            for method in METHODS if method in item]


IDENT = {"volunteers": "V1", "needs": "N1", "merchants": "M1", "donations": "D1",
         "requests": "R1"}


def _url(path: str, side: Side) -> str:
    kind = path.split("/")[2] if path.startswith("/v1/") else ""
    prefix = side.params["need_id"][0]
    url = path
    for name, value in side.params.items():
        url = url.replace(f"{{{name}}}", prefix + IDENT.get(kind, "") if name == "ident"
                          else value)
    assert "{" not in url, f"no value for a parameter of {path}"
    return url


def _query(path: str, side: Side) -> dict[str, str]:
    if path.startswith(("/v1/grids", "/v1/district")) or path in ("/v1/accessibility",
                                                                  "/v1/suggestions"):
        return {"week": str(WEEK)}
    if path == "/v1/merchant/orders":
        return {"date": WEEK.monday.isoformat()}
    if path.endswith("/settlement") or path == "/v1/me/statement":
        return {"month": side.params["month"]}
    if path == "/v1/me/tasks":
        return {"week": str(WEEK)}
    if path == "/v1/nearby":
        return {"lat": "22.535", "lon": "114.018"}
    return {}


def test_no_get_route_shows_another_communitys_rows(client: TestClient, two: Two) -> None:
    """Every GET route, as every role of A and as the street admin naming A: none of B's ids
    or names; and B's own coordinator sees them (the markers would be found)."""
    leaks: list[str] = []
    callers = {role: two.a.headers[role] for role in A_ROLES} | {
        "street_admin": two.street, ANONYMOUS: {}}
    seen_by_b = 0
    for method, path in _operations(client):
        if method != "get":
            continue
        for role, headers in callers.items():
            if role == "street_admin" and path == "/v1/communities":
                continue  # her communities: B is one of them
            response = client.get(_url(path, two.a), params=_query(path, two.a),
                                  headers=headers)
            assert response.status_code < 500, (path, role, response.text)
            found = [m for m in two.b.markers if m in response.text]
            if found:
                leaks.append(f"GET {path} as {role}: {found}")
        mine = client.get(_url(path, two.b), params=_query(path, two.b),
                          headers=two.b.headers["coordinator"])
        seen_by_b += any(m in mine.text for m in two.b.markers)
    assert leaks == [], "\n".join(leaks)
    assert seen_by_b >= 10  # the markers are real: B's own routes show them


def test_item_routes_given_another_communitys_ids_answer_404(client: TestClient,
                                                             two: Two) -> None:
    """A's accounts ask for B's objects by id: 404, as for an id nobody has."""
    wrong: list[str] = []
    callers = {role: two.a.headers[role] for role in A_ROLES} | {"street_admin": two.street}
    for method, path in _operations(client):
        if method != "get" or "{" not in path or path.startswith("/v1/calendar") \
                or path.replace("{month}", "").count("{") == 0:  # a month is no one's id
            continue
        for role, headers in callers.items():
            response = client.get(_url(path, two.b), params=_query(path, two.b),
                                  headers=headers)
            if response.status_code not in (403, 404):  # 403: her role may not, in any case
                wrong.append(f"GET {path} as {role}: {response.status_code}")
            elif response.status_code == 403 and client.get(
                    _url(path, two.a), params=_query(path, two.a),
                    headers=headers).status_code < 400:
                wrong.append(f"GET {path} as {role}: 403 where A's own id is served")
    assert wrong == [], "\n".join(wrong)


def _body(method: str, path: str, side: Side) -> dict[str, Any]:
    prefix = side.params["need_id"][0]
    data = _community(prefix, "改", 113.99)
    kind = path.split("/")[2]
    if kind in ("volunteers", "needs", "merchants", "donations", "requests") and method == "put":
        return {"json": data[kind][0]}
    if path.endswith("/decline"):
        return {"json": {"reason": "有事"}}
    if path.endswith("/publish"):
        return {"json": {}}
    if path.endswith("/consent"):
        return {"json": {"note": "本人签了同意书"}}
    if path.startswith("/v1/grids/") and method == "patch":
        return {"json": {"priority": "blue"}}
    if path.startswith("/v1/resources/") and method == "put":
        return {"json": {"category": "clinic", "name": "改", "lat": 22.5, "lon": 114.0,
                         "services": []}}
    return {}


def test_writes_naming_another_communitys_ids_are_refused(client: TestClient,
                                                          two: Two) -> None:
    """Every write route with a path id, as A's accounts with B's ids: refused (403, 404 or
    409), and B's rows unchanged."""
    wrong: list[str] = []
    callers = {role: two.a.headers[role] for role in A_ROLES} | {"street_admin": two.street}
    db = client.app.state.db  # type: ignore[attr-defined]

    def snapshot() -> list[Any]:
        with db.session() as session:
            rows: list[Any] = [
                (v.volunteer_id, v.name, v.lat) for v in session.scalars(
                    select(VolunteerRow).where(VolunteerRow.volunteer_id.startswith("B")))]
            rows += [(n.need_id, n.beneficiary, n.priority) for n in session.scalars(
                select(NeedRow).where(NeedRow.need_id.startswith("B")))]
            rows += [(t.id, t.state) for t in session.scalars(select(TaskRow))]
            rows += [(s.id, s.status) for s in session.scalars(select(ScheduleRow))]
            rows += [(s.id, s.status) for s in session.scalars(select(AllocationRow))]
        return rows

    before = snapshot()
    operations = sorted(_operations(client), key=lambda op: op[0] == "delete")
    for method, path in operations:
        if method == "get" or "{" not in path or path.startswith("/v1/me/tasks"):
            continue
        for role, headers in callers.items():
            response = client.request(method.upper(), _url(path, two.b),
                                      headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
                                      **_body(method, path, two.b))
            if response.status_code not in (403, 404, 409, 422):
                wrong.append(f"{method.upper()} {path} as {role}: {response.status_code} "
                             f"{response.text[:120]}")
    # A volunteer's own task routes: B's task is not hers.
    for action in ("accept", "check-in", "complete"):
        response = client.post(f"/v1/me/tasks/{two.b.params['task_id']}/{action}",
                               headers=two.a.headers["volunteer"])
        if response.status_code != 404:
            wrong.append(f"POST /v1/me/tasks/{{task_id}}/{action}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert snapshot() == before


def test_creating_an_id_another_community_uses_is_a_conflict_that_names_no_community(
        client: TestClient, two: Two) -> None:
    volunteer = _community("B", "甲", 113.99)["volunteers"][0]
    response = client.post("/v1/volunteers", json=volunteer,
                           headers=two.a.headers["coordinator"])
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "id_taken"
    assert "乙" not in response.text and "yi" not in response.text
    assert "prefix" in response.text or "前缀" in response.text


def test_communities_and_headers(client: TestClient, two: Two) -> None:
    """Each account lists the communities it may act in; a header naming another community
    is 404 for a coordinator and for an admin outside her scope."""
    # Totals count her community's rows too.
    for kind, total in (("volunteers", 2), ("needs", 1), ("donations", 1), ("schedules", 1),
                        ("audit", None)):
        page = client.get(f"/v1/{kind}", headers=two.a.headers["coordinator"]).json()
        assert page["total"] == (total if total is not None else len(page["items"])), kind
    mine = client.get("/v1/communities", headers=two.a.headers["coordinator"]).json()
    assert [c["code"] for c in mine["items"]] == ["default"]
    street = client.get("/v1/communities", headers=two.street).json()
    assert sorted(c["code"] for c in street["items"]) == ["default", "yi"]
    assert client.get("/v1/needs", headers=two.a.headers["coordinator"]
                      | {"X-Linli-Community": "yi"}).status_code == 404
    # The street admin reads B when she names it, and writes nothing there.
    b_needs = client.get("/v1/needs", headers=two.street | {"X-Linli-Community": "yi"})
    assert [n["need_id"] for n in b_needs.json()["items"]] == ["BN1"]
    assert client.delete("/v1/needs/BN1", headers=two.street | {
        "X-Linli-Community": "yi"}).status_code == 403
    assert client.get("/v1/needs", headers={k: v for k, v in two.street.items()
                                            if k != "X-Linli-Community"}).status_code == 400
    # Another street office's admin knows neither.
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        other = find_street_office(session, "other", create=True)
        assert other is not None
        session.commit()
        other_id = other.id
    outsider = make_user(client, "outsider", "street_admin", street_office_id=other_id)
    for code in ("yi", "default", "nowhere"):
        assert client.get("/v1/needs", headers=outsider | {
            "X-Linli-Community": code}).status_code == 404
    assert client.get("/v1/communities", headers=outsider).json()["items"] == []
    # Accounts of a community, made by the street admin.
    made = client.post("/v1/users", json={"username": "b-organiser", "password": "password-123",
                                          "role": "organiser", "community": "yi"},
                       headers=two.street)
    assert made.status_code == 201, made.text
    assert client.get("/v1/donations", headers=login(client, "b-organiser")).json()[
        "items"][0]["donation_id"] == "BD1"
    assert client.post("/v1/users", json={"username": "sneaky", "password": "password-123",
                                          "role": "organiser", "community": "yi"},
                       headers=two.a.headers["coordinator"]).status_code == 404


def test_an_admin_gives_a_community_its_own_webhook(client: TestClient, two: Two) -> None:
    """PATCH /v1/communities/{code}: a street admin sets and clears the receiver of a
    community of hers; only admins see it; a bad address is 422 naming the field; another
    street office's admin gets 404, a coordinator 403."""
    street = {k: v for k, v in two.street.items() if k != "X-Linli-Community"}
    hook = "https://mp.yi.example.cn/linli/events?token=s3cret"
    response = client.patch("/v1/communities/yi", json={"webhook_url": f"  {hook} "},
                            headers=street)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "yi" and response.json()["webhook_url"] == hook
    listed = {c["code"]: c["webhook_url"] for c in client.get(
        "/v1/communities", headers=street).json()["items"]}
    assert listed == {"default": None, "yi": hook}
    # B's coordinator does not see the address (it may carry the receiver's secret).
    mine = client.get("/v1/communities", headers=two.b.headers["coordinator"]).json()
    assert [c["webhook_url"] for c in mine["items"]] == [None]
    assert "s3cret" not in client.get("/v1/communities",
                                      headers=two.b.headers["coordinator"]).text
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        row = session.scalars(select(Community).where(Community.code == "yi")).one()
        assert row.webhook_url == hook
    for bad in ("ftp://mp.yi.example.cn/x", "mp.yi.example.cn/x", "https://", "http://a b/",
                "https://host:99999/x", "http://[::1/x", "", "javascript:alert(1)"):
        refused = client.patch("/v1/communities/yi", json={"webhook_url": bad},
                               headers=street | {"Accept-Language": "en"})
        assert refused.status_code == 422, (bad, refused.text)
        body = refused.json()
        assert body["code"] == "webhook_url_invalid" and "http" in body["detail"], bad
        assert body["errors"][0]["path"] == ["body", "webhook_url"]
    chinese = client.patch("/v1/communities/yi", json={"webhook_url": "ftp://x"},
                           headers=street)
    assert "网址" in chinese.json()["detail"]
    assert client.patch("/v1/communities/yi", json={}, headers=street).status_code == 422
    assert client.patch("/v1/communities/nowhere", json={"webhook_url": hook},
                        headers=street).status_code == 404
    assert client.patch("/v1/communities/yi", json={"webhook_url": hook},
                        headers=two.b.headers["coordinator"]).status_code == 403
    with db.session() as session:
        other = find_street_office(session, "other", create=True)
        assert other is not None
        session.commit()
        other_id = other.id
    outsider = make_user(client, "outsider", "street_admin", street_office_id=other_id)
    assert client.patch("/v1/communities/yi", json={"webhook_url": "http://evil.example/"},
                        headers=outsider).status_code == 404
    # null sends B's events to the deployment's webhook again.
    cleared = client.patch("/v1/communities/yi", json={"webhook_url": None}, headers=street)
    assert cleared.status_code == 200 and cleared.json()["webhook_url"] is None
    with db.session() as session:
        row = session.scalars(select(Community).where(Community.code == "yi")).one()
        assert row.webhook_url is None
        trail = session.scalars(select(AuditEntry.detail).where(
            AuditEntry.target == "community:yi", AuditEntry.action == "update",
            AuditEntry.community_id == row.id).order_by(AuditEntry.id)).all()
        assert trail == ["webhook_url", "webhook_url cleared"]


@given(st.one_of(st.text(max_size=60), st.builds(
    "{}://{}".format, st.sampled_from(["http", "HTTPS", "ftp", ""]), st.text(max_size=40))))
def test_any_webhook_address_is_taken_or_refused_with_its_code(text: str) -> None:
    """Whatever an admin types: an http(s) address with a host, kept without blanks around
    it, or 422 ``webhook_url_invalid`` naming the field; never anything else raised."""
    try:
        kept = check_webhook_url(text, ["body", "webhook_url"])
    except Problem as exc:
        assert exc.status == 422 and exc.code == "webhook_url_invalid"
        assert [e["path"] for e in exc.errors or []] == [["body", "webhook_url"]]
        return
    assert kept == text.strip() and kept.lower().startswith(("http://", "https://"))
    assert urlsplit(kept).hostname


def test_one_published_schedule_per_community_and_week(client: TestClient, two: Two) -> None:
    """Both communities have a published schedule of the same week (the fixture), and a
    second one in A is still refused by the database."""
    from sqlalchemy.exc import IntegrityError

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session(1) as session, pytest.raises(IntegrityError):
        session.add(ScheduleRow(week=str(WEEK), status="published", progress=""))
        session.commit()
    assert dt.date.fromisoformat(two.a.params["month"] + "-01")


def test_the_cli_adds_communities_and_admins(tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """Bootstrapping a street office's deployment: `linli community add` (making the street
    office and district), `linli community admin`; the admin then lists her communities."""
    from typer.testing import CliRunner

    from api.cli import app
    from api.main import create_app

    url = f"sqlite:///{tmp_path / 'linli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    runner = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": "en_US.UTF-8"})
    for code, name in (("jingtian", "景田社区"), ("xiangmi", "香蜜社区")):
        added = runner.invoke(app, ["community", "add", "--code", code, "--name", name,
                                    "--street-office", "lianhua", "--street-office-name",
                                    "莲花街道", "--district", "futian"])
        assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["community", "add", "--code", "jingtian", "--name", "x"])
    assert again.exit_code == 1 and "taken" in again.output
    bad = runner.invoke(app, ["community", "add", "--code", "Jing Tian", "--name", "x"])
    assert bad.exit_code == 2
    hooked = runner.invoke(app, ["community", "add", "--code", "lianhuashan", "--name",
                                 "莲花山社区", "--street-office", "lianhua", "--webhook-url",
                                 "https://mp.lianhuashan.example.cn/events"])
    assert hooked.exit_code == 0, hooked.output
    unhooked = runner.invoke(app, ["community", "add", "--code", "xinzhou", "--name", "x",
                                   "--street-office", "lianhua", "--webhook-url", "mp.example"])
    assert unhooked.exit_code == 2 and "https://" in unhooked.output
    made = runner.invoke(app, ["community", "admin", "--username", "lianhua-admin",
                               "--street-office", "lianhua", "--password", "password-123"])
    assert made.exit_code == 0, made.output
    settings = ApiSettings(database_url=url, secret_key="test-secret-key-0123456789abcdef",
                           run_workers=False, webhook_url=None)
    with TestClient(create_app(settings)) as client:
        admin = login(client, "lianhua-admin")
        listed = client.get("/v1/communities", headers=admin).json()["items"]
        assert [(c["code"], c["street_office_name"], c["district"], c["webhook_url"])
                for c in listed] == [
            ("jingtian", "莲花街道", "futian", None),
            ("lianhuashan", "莲花街道", "futian", "https://mp.lianhuashan.example.cn/events"),
            ("xiangmi", "莲花街道", "futian", None)]
        # The default community is another street office's: not hers.
        assert client.get("/v1/needs", headers=admin | {
            "X-Linli-Community": "default"}).status_code == 404


def test_a_change_raises_only_its_own_communitys_version(client: TestClient,
                                                         two: Two) -> None:
    """The replanning cache keys on the community's version: B's edits leave A's alone."""
    from api.models import CommunityVersion

    db = client.app.state.db  # type: ignore[attr-defined]

    def versions() -> dict[int, int]:
        with db.session() as session:
            return {v.community_id: v.version for v in session.scalars(select(CommunityVersion))}

    before = versions()
    body = _community("B", "乙", 113.99)["needs"][0] | {"priority": "blue"}
    assert client.put("/v1/needs/BN1", json=body,
                      headers=two.b.headers["coordinator"]).status_code == 200
    after = versions()
    b_id = next(k for k in after if k != 1)
    assert after[1] == before[1] and after[b_id] > before[b_id]


def test_a_communitys_job_solves_its_own_rows(database_url: str) -> None:
    """The worker's job carries its community: B's week is built from B's rows (and, as
    issue 24 decided, the volunteers of its district whose home lies within a circle of its
    needs, who may serve it: tests/api/test_under_way.py), never A's needs."""
    from api.main import create_app
    from tests.api.conftest import set_clock, wait_for

    settings = ApiSettings(database_url=database_url, solve_time_limit_s=2, webhook_url=None,
                           secret_key="test-secret-key-0123456789abcdef", job_worker=True,
                           run_workers=False)
    with TestClient(create_app(settings)) as client:
        set_clock(client, WEEK.monday - dt.timedelta(days=3), "09:00")
        street = make_user(client, "street", "street_admin", street_office_id=1)
        assert client.post("/v1/communities", json={"code": "yi", "name": "乙社区"},
                           headers=street).status_code == 201
        a = make_user(client, "a", "coordinator", community_id=1)
        b = make_user(client, "b", "coordinator", community_id=2)
        for prefix, headers in (("A", a), ("B", b)):
            data = _community(prefix, prefix, 113.99)
            for kind in ("volunteers", "needs"):
                for body in data[kind]:
                    assert client.post(f"/v1/{kind}", json=body,
                                       headers=headers).status_code == 201
        job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=b)
        assert job.status_code == 202, job.text
        done = wait_for(client, b, job.json()["id"])
        assert done["status"] == "solved", done
        tasks = client.get(f"/v1/schedules/{done['id']}/tasks", headers=b).json()["items"]
        assert tasks and {t["volunteer_id"] for t in tasks} <= {"AV1", "AV2", "BV1", "BV2"}
        assert {t["need_id"] for t in tasks} == {"BN1"}
        assert client.get(f"/v1/schedules/{done['id']}", headers=a).status_code == 404
