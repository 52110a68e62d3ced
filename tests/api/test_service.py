"""The HTTP API end to end: roles, resources, imports, schedule jobs, the volunteers' flow with
re-planning, points, the outbox, calendars; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
from alembic import command
from fastapi.testclient import TestClient

from api.community import TZ
from api.migrate import alembic_config, downgrade, upgrade
from api.outbox import deliver_outbox
from matcher.domain import Assignment, Day, parse_hhmm
from matcher.spreadsheets import read_community
from tests.api.conftest import login, make_user, set_clock, upload, wait_for
from tests.conftest import WEEK
from tests.validator import geodesic_walk, validate

PROBLEM_JSON = "application/problem+json"


def as_assignments(tasks: list[dict[str, Any]]) -> list[Assignment]:
    return [Assignment(t["need_id"], Day(t["day"]), dt.date.fromisoformat(t["date"]),
                       parse_hhmm(t["start"]), parse_hhmm(t["end"]), t["volunteer_id"],
                       t["merchant_id"], t["walk_min"]) for t in tasks]


def at(day: dt.date, hhmm: str = "12:00") -> dt.datetime:
    """A moment on the community's clock (Asia/Shanghai)."""
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), TZ)


ACTIVE = {"offered", "accepted", "checked_in", "completed", "confirmed", "proposed"}


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/me/tasks" in spec["paths"] and "/v1/schedules" in spec["paths"]
    assert "张奶奶" in str(spec)  # examples in Chinese


def test_authentication_and_problem_json(client: TestClient, coordinator: dict[str, str]
                                         ) -> None:
    response = client.get("/v1/volunteers")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 401
    wrong = client.post("/v1/auth/token", data={"username": "coordinator", "password": "nope"})
    assert wrong.status_code == 401
    bad_token = client.get("/v1/volunteers", headers={"Authorization": "Bearer x.y.z"})
    assert bad_token.status_code == 401
    assert client.get("/v1/me", headers=coordinator).json()["role"] == "coordinator"
    # A token stops working when it expires, though its signature was checked (and
    # remembered) while it was valid.
    me = client.get("/v1/me", headers=coordinator).json()
    secret = client.app.state.settings.secret_key  # type: ignore[attr-defined]
    soon = jwt.encode({"sub": str(me["id"]), "role": "coordinator",
                       "exp": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)}, secret,
                      algorithm="HS256")
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {soon}"}).status_code == 200
    time.sleep(1.1)
    expired = client.get("/v1/me", headers={"Authorization": f"Bearer {soon}",
                                            "Accept-Language": "en"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_resources_crud_validation_and_roles(client: TestClient,
                                             coordinator: dict[str, str]) -> None:
    volunteer = {"volunteer_id": "V9", "name": "王芳", "lat": 22.534, "lon": 114.017,
                 "skills": "meal_delivery", "availability": "mon 08:00-12:00"}
    assert client.post("/v1/volunteers", json=volunteer, headers=coordinator).status_code == 201
    assert client.post("/v1/volunteers", json=volunteer, headers=coordinator).status_code == 409
    bad = client.post("/v1/volunteers", json=volunteer | {"volunteer_id": "V10", "lat": 95.0,
                                                         "availability": "someday"},
                      headers=coordinator)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM_JSON
    paths = {tuple(e["path"]) for e in bad.json()["errors"]}
    assert (("body", "availability") in paths and ("body", "lat", ) in paths) or \
        ("body", "lat, lon") in paths
    missing = client.post("/v1/volunteers", json={"name": "x"}, headers=coordinator)
    assert missing.status_code == 422
    assert ["body", "volunteer_id"] in [e["path"] for e in missing.json()["errors"]]
    need = {"need_id": "N1", "kind": "elderly", "service": "home_visit", "beneficiary": "张奶奶",
            "phone": "13800000000", "lat": 22.5352, "lon": 114.0183, "days": "mon",
            "window": "09:00-11:00", "duration_min": 30, "priority": "red"}
    assert client.post("/v1/needs", json=need, headers=coordinator).status_code == 201
    too_long = client.post("/v1/needs", json=need | {"need_id": "N2", "duration_min": 300},
                           headers=coordinator | {"Accept-Language": "en"})
    assert "longer than the window" in str(too_long.json())
    page = client.get("/v1/needs?priority=red&limit=1", headers=coordinator).json()
    assert page["total"] == 1 and page["items"][0]["beneficiary"] == "张奶奶"
    # An organiser sees needs coarsened and masked; a volunteer not at all.
    organiser = make_user(client, "org", "organiser")
    seen = client.get("/v1/needs/N1", headers=organiser).json()
    assert seen["beneficiary"] == "张**" and seen["phone"] == "" and seen["lat"] == 22.535
    vol = make_user(client, "v9", "volunteer", volunteer_id="V9")
    assert client.get("/v1/needs", headers=vol).status_code == 403
    assert client.get("/v1/volunteers/V9", headers=vol).status_code == 403
    assert client.post("/v1/needs", json=need, headers=vol).status_code == 403
    volunteer["max_hours_week"] = 6
    updated = client.put("/v1/volunteers/V9", json=volunteer, headers=coordinator).json()
    assert updated["max_hours_week"] == 6
    assert client.get("/v1/volunteers?skill=meal_delivery", headers=coordinator).json()[
        "total"] == 1
    assert client.delete("/v1/needs/N1", headers=coordinator).status_code == 204
    assert client.get("/v1/needs/N1", headers=coordinator).status_code == 404


def test_import_is_all_or_nothing_with_row_errors(client: TestClient,
                                                  coordinator: dict[str, str],
                                                  community_files: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in community_files.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        if path.name == "needs.csv":
            lines = text.splitlines()
            cells = lines[3].split(",")
            cells[7] = "25:00-26:00"  # window of the third need (spreadsheet row 4)
            lines[3] = ",".join(cells)
            text = "\n".join(lines) + "\n"
        (broken / path.name).write_text(text, encoding="utf-8")
    response = upload(client, coordinator | {"Accept-Language": "en"}, broken)
    assert response.status_code == 422
    details = [e["detail"] for e in response.json()["errors"]]
    assert any(d.startswith("needs.csv row 4, window: '25:00-26:00'") for d in details)
    assert client.get("/v1/volunteers", headers=coordinator).json()["total"] == 0  # nothing
    good = upload(client, coordinator, community_files)
    assert good.status_code == 200 and good.json()["created"]["volunteers"] == 40
    again = upload(client, coordinator, community_files).json()
    assert again["updated"]["needs"] == 30 and not again["created"]


def test_schedule_job_is_valid_and_publishing_never_overwrites(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        community_files: Path) -> None:
    problem = read_community(community_files, WEEK).problem
    assignments = as_assignments(published["tasks"])
    assert assignments and validate(problem, assignments, geodesic_walk()) == []
    assert published["summary"]["covered"] == len({(a.need_id, a.day) for a in assignments})
    # The job's limit counts deterministic time (LINLI_SOLVE_WALL_CLOCK unset): re-solving the
    # same week gives the same schedule.
    assert published["summary"]["limit"] == "deterministic"
    assert published["summary"]["deterministic_time"] > 0
    unmet = client.get(f"/v1/schedules/{published['id']}/unmet?limit=500",
                       headers=coordinator).json()["items"]
    assert len(unmet) + published["summary"]["covered"] == published["summary"]["occurrences"]
    second = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=coordinator).json()
    assert wait_for(client, coordinator, second["id"])["status"] == "solved"
    refused = client.post(f"/v1/schedules/{second['id']}/publish", json={}, headers=coordinator)
    assert refused.status_code == 409 and "supersede" in refused.json()["detail"]
    replaced = client.post(f"/v1/schedules/{second['id']}/publish", json={"supersede": True},
                           headers=coordinator)
    assert replaced.status_code == 200
    old = client.get(f"/v1/schedules/{published['id']}", headers=coordinator).json()
    assert old["status"] == "superseded"
    bad_week = client.post("/v1/schedules", json={"week": "2026-W60"}, headers=coordinator)
    assert bad_week.status_code == 422 and bad_week.json()["errors"][0]["path"] == [
        "body", "week"]


def _volunteer_with_free_alternative(client: TestClient, coordinator: dict[str, str],
                                     published: dict[str, Any]) -> dict[str, Any]:
    for task in published["tasks"]:
        fits = client.get(f"/v1/schedules/{published['id']}/occurrences/{task['need_id']}/"
                          f"{task['day']}/candidates?replacing={task['volunteer_id']}",
                          headers=coordinator).json()["items"]
        if any(not f["displaces"] for f in fits):
            return task
    raise AssertionError("no task has a free alternative volunteer in this community")


def test_volunteer_sees_only_own_tasks_and_a_decline_is_replanned(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        community_files: Path) -> None:
    task = _volunteer_with_free_alternative(client, coordinator, published)
    me = make_user(client, "alice", "volunteer", volunteer_id=task["volunteer_id"])
    mine = [t for t in published["tasks"] if t["volunteer_id"] == task["volunteer_id"]]
    # Before the week: names masked and places coarse.
    set_clock(client, WEEK.monday - dt.timedelta(days=3))
    listed = client.get(f"/v1/me/tasks?week={WEEK}", headers=me).json()
    assert {t["id"] for t in listed} == {t["id"] for t in mine}
    assert all(not t["details_visible"] and "*" in t["beneficiary"] for t in listed)
    # In the week: the exact details of her own tasks only.
    set_clock(client, WEEK.monday + dt.timedelta(days=1))
    listed = client.get(f"/v1/me/tasks?week={WEEK}", headers=me).json()
    assert all(t["details_visible"] and "*" not in t["beneficiary"] for t in listed)
    # Seeing the exact details is audited, the masked view is not; the log is coordinators'.
    alice = client.get("/v1/me", headers=me).json()["id"]
    log = client.get(f"/v1/audit?user_id={alice}", headers=coordinator).json()
    assert [(e["action"], e["target"], e["detail"]) for e in log["items"]] == [
        ("read", f"tasks:{task['volunteer_id']}", str(WEEK))]
    assert client.get("/v1/audit", headers=me).status_code == 403
    other = next(t for t in published["tasks"] if t["volunteer_id"] != task["volunteer_id"])
    assert client.post(f"/v1/me/tasks/{other['id']}/accept", headers=me).status_code == 404
    # Decline (before the week): only this occurrence changes, and someone else is offered it.
    client.app.state.clock = lambda: at(WEEK.monday - dt.timedelta(days=1))  # type: ignore[attr-defined]
    before = {t["id"]: t for t in client.get(f"/v1/schedules/{published['id']}/tasks",
                                             params={"limit": 500},
                                             headers=coordinator).json()["items"]}
    result = client.post(f"/v1/me/tasks/{task['id']}/decline", json={"reason": "孩子生病"},
                         headers=me)
    assert result.status_code == 200, result.text
    assert result.json()["outcome"] == "offered_to_another_volunteer"
    after = {t["id"]: t for t in client.get(f"/v1/schedules/{published['id']}/tasks",
                                            params={"limit": 500},
                                            headers=coordinator).json()["items"]}
    (replacement,) = [t for tid, t in after.items() if tid not in before]
    assert replacement["volunteer_id"] != task["volunteer_id"]
    assert replacement["state"] == "offered" and replacement["need_id"] == task["need_id"]
    assert after[task["id"]]["state"] == "declined"
    for tid, t in before.items():
        if tid != task["id"]:
            assert after[tid] == t  # nothing else moved
    problem = read_community(community_files, WEEK).problem
    active = [t for t in after.values() if t["state"] in ACTIVE]
    assert validate(problem, as_assignments(active), geodesic_walk()) == []
    assert client.post(f"/v1/me/tasks/{task['id']}/accept", headers=me).status_code == 409
    # The new volunteer hears about it through the outbox.
    db = client.app.state.db  # type: ignore[attr-defined]
    from api.models import OutboxEvent

    with db.session() as session:
        kinds = Counter((e.recipient, e.kind) for e in session.query(OutboxEvent))
    assert kinds[(f"volunteer:{replacement['volunteer_id']}", "task.offered")] >= 1


def test_points_are_earned_redeemed_and_never_overspent(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    task = published["tasks"][0]
    vol = make_user(client, "bob", "volunteer", volunteer_id=task["volunteer_id"])
    shop = make_user(client, "shop", "merchant", merchant_id="M001")
    starts = at(dt.date.fromisoformat(task["date"]), task["start"])
    for step, when in (("accept", -60), ("check-in", -10), ("complete", 60)):
        client.app.state.clock = lambda when=when: starts + dt.timedelta(minutes=when)  # type: ignore[attr-defined]
        assert client.post(f"/v1/me/tasks/{task['id']}/{step}", headers=vol).status_code == 200
    minutes = parse_hhmm(task["end"]) - parse_hhmm(task["start"])
    key = {"Idempotency-Key": "confirm-task-1"}
    first = client.post(f"/v1/tasks/{task['id']}/confirm", headers=coordinator | key)
    assert first.status_code == 200 and first.json()["points"] == 2 * minutes
    replay = client.post(f"/v1/tasks/{task['id']}/confirm", headers=coordinator | key)
    assert replay.json() == first.json()  # the retry moved nothing
    assert client.post(f"/v1/tasks/{task['id']}/confirm", headers=coordinator).status_code \
        == 422  # no key
    balance = client.get("/v1/me/statement", headers=vol).json()["balance"]
    assert balance == 2 * minutes
    price = balance // 3 + 1  # affordable twice at most... exactly twice
    reward = client.post("/v1/rewards", json={"name": "免费理发一次", "points": price},
                         headers=shop).json()
    assert client.post("/v1/rewards", json={"name": "x", "points": 5},
                       headers=vol).status_code == 403

    def redeem(i: int) -> int:
        return client.post("/v1/redemptions", json={"reward_id": reward["id"]},
                           headers=vol | {"Idempotency-Key": f"redeem-{i:04d}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(redeem, range(8)))
    assert codes[201] == balance // price and codes[409] == 8 - balance // price
    statement = client.get("/v1/me/statement", headers=vol).json()
    assert statement["balance"] == balance - codes[201] * price >= 0
    assert sum(e["amount"] for e in statement["entries"]["items"]) == statement["balance"]
    redemptions = client.get("/v1/redemptions", headers=shop).json()["items"]
    ok = client.post(f"/v1/redemptions/{redemptions[0]['id']}/confirm",
                     headers=shop | {"Idempotency-Key": "shop-confirm-1"})
    assert ok.status_code == 200 and ok.json()["status"] == "confirmed"
    twice = client.post(f"/v1/redemptions/{redemptions[0]['id']}/confirm",
                        headers=shop | {"Idempotency-Key": "shop-confirm-2"})
    assert twice.status_code == 409
    month = WEEK.monday.strftime("%Y-%m")
    # Settled on the community's clock, whatever the real date.
    clock_month = client.app.state.clock().strftime("%Y-%m")  # type: ignore[attr-defined]
    settlement = client.get(f"/v1/merchants/M001/settlement?month={clock_month}",
                            headers=shop).json()
    assert settlement["total_in"] == price
    assert client.get(f"/v1/merchants/M002/settlement?month={month}",
                      headers=shop).status_code == 403


def test_merchant_orders_and_calendar_feed(client: TestClient, coordinator: dict[str, str],
                                           published: dict[str, Any]) -> None:
    with_shop = [t for t in published["tasks"] if t["merchant_id"]]
    if with_shop:
        t = with_shop[0]
        shop = make_user(client, "canteen", "merchant", merchant_id=t["merchant_id"])
        orders = client.get(f"/v1/merchant/orders?date={t['date']}", headers=shop).json()
        assert t["need_id"] in {o["need_id"] for o in orders["orders"]["items"]}
        assert all("*" in o["for"] for o in orders["orders"]["items"])
        assert sum(orders["counts"].values()) == orders["orders"]["total"]
    task = published["tasks"][0]
    make_user(client, "carol", "volunteer", volunteer_id=task["volunteer_id"])
    for day, audited in ((WEEK.monday - dt.timedelta(days=1), 0), (WEEK.monday, 1)):
        set_clock(client, day)
        feed = client.get("/v1/calendar/cal-carol-token.ics")
        assert feed.status_code == 200 and "BEGIN:VEVENT" in feed.text
        # Exact details (and so an audit entry) only once the week has begun.
        reads = client.get("/v1/audit?target=calendar:", headers=coordinator).json()
        assert reads["total"] == audited
    assert client.get("/v1/calendar/wrong.ics").status_code == 404


def test_outbox_is_delivered_with_retries(client: TestClient, published: dict[str, Any],
                                          settings: Any) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) == 1 else 200)

    # A copy: the app's own sender must not start POSTing to this address meanwhile.
    settings = settings.model_copy(update={"webhook_url": "http://hooks.example/linli"})
    db = client.app.state.db  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        first = deliver_outbox(db, settings, http, clock=lambda: now, batch=5)
        later = deliver_outbox(db, settings, http, clock=lambda: now + dt.timedelta(minutes=5),
                               batch=500)
    assert first == 4  # one 503, retried later
    from api.models import OutboxEvent

    with db.session() as session:
        pending = session.query(OutboxEvent).filter(OutboxEvent.delivered_at.is_(None)).count()
        total = session.query(OutboxEvent).count()
    assert later == total - 4 and pending == 0


def test_migrations_up_down_up(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url, "base")
    upgrade(database_url)
    command.check(alembic_config(database_url))  # the migrations build exactly the models


def test_api_key_for_machine_clients(client: TestClient, coordinator: dict[str, str]) -> None:
    me = client.get("/v1/me", headers=coordinator).json()
    key = client.post(f"/v1/users/{me['id']}/api-key", headers=coordinator).json()["api_key"]
    assert client.get("/v1/me", headers={"X-API-Key": key}).json()["username"] == "coordinator"
    assert client.get("/v1/me", headers={"X-API-Key": "lnk_wrong"}).status_code == 401
    created = client.post("/v1/users", json={"username": "v-x", "password": "password-123",
                                             "role": "volunteer", "volunteer_id": "nobody"},
                          headers=coordinator)
    assert created.status_code == 422
    assert login(client, "coordinator")
