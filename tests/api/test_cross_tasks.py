"""A volunteer registered in community B holding a task in community A's published schedule
(issue 24: she serves a neighbouring community inside her circle). Her journey (accept, check
in, complete, decline) works from her own account; A's coordinator confirms, A issues the points
and minutes and they land in her accounts in B, through both communities' clearing accounts;
A's coordinator sees her task in every view of A; nobody else can touch it. On SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.ledger import POINTS_CLEARING, TIME_CLEARING
from api.models import (
    Account,
    AuditEntry,
    OutboxEvent,
    ScheduleRow,
    TaskRow,
)
from api.settings import ApiSettings
from tests.api.conftest import books, make_user, second_community, set_clock
from tests.conftest import WEEK

START = 9 * 60  # the task of B's volunteer in A: Monday 09:00-09:30


pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None, points_per_minute=2)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _volunteer(ident: str, name: str, lat: float = 22.534) -> dict[str, Any]:
    return {"volunteer_id": ident, "name": name, "lat": lat, "lon": 114.017,
            "skills": "meal_delivery", "availability": "mon 08:00-12:00", "max_hours_week": 4}


@dataclass
class World:
    a: int  # community ids
    b: int
    a_coordinator: dict[str, str]
    b_coordinator: dict[str, str]
    her: dict[str, str]  # BV1, registered in B, serving in A
    b_other: dict[str, str]  # BV2, another volunteer of B
    a_volunteer: dict[str, str]  # AV1
    schedule_id: int
    task_id: int


def _db(client: TestClient) -> Any:
    return client.app.state.db  # type: ignore[attr-defined]


@pytest.fixture
def world(client: TestClient) -> World:
    """Communities A (the default one) and B of one street office; A's need AN1 on Monday
    09:00-11:00 lies within the circle of BV1, who lives in B. A's week, solved with her on
    AN1 (as a district run stores it), is published by A's coordinator through the API."""
    _, b = second_community(client)
    a_coordinator = make_user(client, "a-coordinator", "coordinator", community_id=1)
    b_coordinator = make_user(client, "b-coordinator", "coordinator", community_id=b)
    for body in (_volunteer("AV1", "甲志愿者一", lat=22.6), _volunteer("AV2", "甲志愿者二")):
        assert client.post("/v1/volunteers", json=body,
                           headers=a_coordinator).status_code == 201
    for body in (_volunteer("BV1", "乙志愿者王芳"), _volunteer("BV2", "乙志愿者二", lat=22.6)):
        assert client.post("/v1/volunteers", json=body,
                           headers=b_coordinator).status_code == 201
    need = {"need_id": "AN1", "kind": "elderly", "service": "meal_delivery",
            "beneficiary": "甲奶奶", "phone": "13800000001", "address": "甲路 3 栋",
            "lat": 22.535, "lon": 114.018, "days": "mon", "window": "09:00-11:00",
            "duration_min": 30, "priority": "red"}
    assert client.post("/v1/needs", json=need, headers=a_coordinator).status_code == 201
    with _db(client).session(1) as session:
        schedule = ScheduleRow(week=str(WEEK), status="solved", progress="",
                               summary={"covered": 1, "occurrences": 1})
        session.add(schedule)
        session.flush()
        task = TaskRow(schedule_id=schedule.id, need_id="AN1", day="mon", date=WEEK.monday,
                       start=START, end=START + 30, volunteer_id="BV1", merchant_id=None,
                       walk_min=2.0, state="proposed")
        session.add(task)
        session.commit()
        ids = schedule.id, task.id
    published = client.post(f"/v1/schedules/{ids[0]}/publish", json={},
                            headers=a_coordinator)
    assert published.status_code == 200, published.text
    return World(1, b, a_coordinator, b_coordinator,
                 make_user(client, "wangfang", "volunteer", volunteer_id="BV1",
                           community_id=b),
                 make_user(client, "b-other", "volunteer", volunteer_id="BV2", community_id=b),
                 make_user(client, "a-volunteer", "volunteer", volunteer_id="AV1",
                           community_id=1),
                 *ids)



def _balances(client: TestClient, her: dict[str, str]) -> tuple[int, int]:
    points = client.get("/v1/me/statement", headers=her)
    minutes = client.get("/v1/me/timebank/statement", headers=her)
    assert points.status_code == 200 and minutes.status_code == 200, (points.text,
                                                                      minutes.text)
    return points.json()["balance"], minutes.json()["balance"]


def test_her_task_in_a_is_listed_in_her_week_and_her_calendar(client: TestClient,
                                                             world: World) -> None:
    mine = client.get("/v1/me/tasks", params={"week": str(WEEK)}, headers=world.her)
    assert mine.status_code == 200, mine.text
    assert [(t["id"], t["need_id"], t["state"]) for t in mine.json()] == [
        (world.task_id, "AN1", "offered")]
    feed = client.get("/v1/calendar/cal-wangfang-token.ics")
    assert feed.status_code == 200, feed.text
    assert "meal_delivery" in feed.text


def test_her_whole_journey_and_the_pay_lands_in_her_home_community(client: TestClient,
                                                                  world: World) -> None:
    """Accept, check in, complete from her own account (scoped to B); A confirms; A issues
    the points and minutes and her accounts in B receive them; both books balance per
    currency; a second confirmation pays nothing."""
    before = _balances(client, world.her)
    assert before == (0, 0)
    accepted = client.post(f"/v1/me/tasks/{world.task_id}/accept", headers=world.her)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    set_clock(client, WEEK.monday, "08:45")
    checked = client.post(f"/v1/me/tasks/{world.task_id}/check-in", headers=world.her)
    assert checked.status_code == 200 and checked.json()["state"] == "checked_in", checked.text
    set_clock(client, WEEK.monday, "09:40")
    done = client.post(f"/v1/me/tasks/{world.task_id}/complete", headers=world.her)
    assert done.status_code == 200 and done.json()["state"] == "completed", done.text
    # A's coordinators heard of the completion, in A; her actions are in A's audit trail.
    with _db(client).session() as session:
        told = session.execute(select(OutboxEvent.community_id, OutboxEvent.recipient).where(
            OutboxEvent.kind == "task.completed")).all()
        audited = session.execute(select(AuditEntry.community_id, AuditEntry.action).where(
            AuditEntry.target == f"task:{world.task_id}")).all()
    assert told == [(world.a, "coordinators")]
    assert {c for c, _ in audited} == {world.a}
    assert {action for _, action in audited} >= {"accepted", "checked_in", "completed"}

    confirmed = client.post(f"/v1/tasks/{world.task_id}/confirm",
                            headers=world.a_coordinator | key())
    assert confirmed.status_code == 200, confirmed.text
    paid = confirmed.json()
    assert paid["state"] == "confirmed" and paid["points"] == 60 and paid["minutes"] == 30
    assert _balances(client, world.her) == (60, 30)
    with _db(client).session() as session:
        assert all(v == 0 for v in books(session).values()), books(session)
        homes = dict(session.execute(select(Account.kind, Account.community_id).where(
            Account.owner == "BV1")).all())
        clearing = {(c, k): bal for c, k, bal in session.execute(select(
            Account.community_id, Account.kind, Account.balance).where(
            Account.kind.in_((POINTS_CLEARING, TIME_CLEARING))))}
        told = session.execute(select(OutboxEvent.community_id).where(
            OutboxEvent.kind == "points.credited",
            OutboxEvent.recipient == "volunteer:BV1")).scalars().all()
    assert homes == {"volunteer": world.b, "time_volunteer": world.b}  # none opened in A
    # A owes B what B's volunteer was paid (B's side below zero: what A owes it).
    assert clearing == {(world.a, POINTS_CLEARING): 60, (world.b, POINTS_CLEARING): -60,
                        (world.a, TIME_CLEARING): 30, (world.b, TIME_CLEARING): -30}
    # Her own community's receiver tells her (its mini program knows her).
    assert told == [world.b]

    again = client.post(f"/v1/tasks/{world.task_id}/confirm",
                        headers=world.a_coordinator | key())
    assert again.status_code == 409, again.text
    assert _balances(client, world.her) == (60, 30)

    # The month's settlement shows the minutes (and points) of her work, from A to B.
    month = WEEK.monday.strftime("%Y-%m")
    settled = client.get("/v1/timebank/settlement", params={"month": month},
                         headers=world.a_coordinator)
    assert settled.status_code == 200, settled.text
    pairs = settled.json()["pairs"]
    assert [(p["from"], p["to"], p["minutes_from_to"], p["owed_at_end"]) for p in pairs] == [
        ("default", "yi", 30, 30)]
    assert (pairs[0]["points_from_to"], pairs[0]["points_owed_at_end"]) == (60, 60)


def test_nobody_else_touches_her_task(client: TestClient, world: World) -> None:
    """Another volunteer of B, or one of A: 404 that says nothing, and the task unchanged."""
    for headers in (world.b_other, world.a_volunteer):
        for action in ("accept", "check-in", "complete"):
            response = client.post(f"/v1/me/tasks/{world.task_id}/{action}", headers=headers)
            assert response.status_code == 404, (action, response.text)
            assert "AN1" not in response.text and "BV1" not in response.text
        response = client.post(f"/v1/me/tasks/{world.task_id}/decline",
                               json={"reason": "有事"}, headers=headers)
        assert response.status_code == 404, response.text
    # B's coordinator neither confirms nor cancels A's task.
    assert client.post(f"/v1/tasks/{world.task_id}/cancel",
                       headers=world.b_coordinator).status_code == 404
    with _db(client).session() as session:
        task = session.get(TaskRow, world.task_id)
        assert task is not None and task.state == "offered"


def test_her_decline_is_re_planned_in_a(client: TestClient, world: World) -> None:
    """Her decline frees the place in A's week; A's volunteer AV2 (free, nearby) is offered
    it in A's schedule, and she never sees who."""
    declined = client.post(f"/v1/me/tasks/{world.task_id}/decline", json={"reason": "孩子生病"},
                           headers=world.her)
    assert declined.status_code == 200, declined.text
    assert declined.json()["outcome"] == "offered_to_another_volunteer"
    assert "AV2" not in declined.text
    tasks = client.get(f"/v1/schedules/{world.schedule_id}/tasks",
                       headers=world.a_coordinator).json()["items"]
    assert sorted((t["volunteer_id"], t["state"]) for t in tasks) == [
        ("AV2", "offered"), ("BV1", "declined")]
    with _db(client).session() as session:
        offered = session.execute(select(OutboxEvent.community_id).where(
            OutboxEvent.kind == "task.offered", OutboxEvent.recipient == "volunteer:AV2")
        ).scalars().all()
    assert offered == [world.a]


def test_a_coordinator_sees_her_task_everywhere(client: TestClient, world: World) -> None:
    """A's views of the week show B's volunteer on her task: the tasks, the map, an edit's
    at-risk review (which must not take her for someone who left), the candidates and cancel."""
    a = world.a_coordinator
    listed = client.get(f"/v1/schedules/{world.schedule_id}/tasks",
                        params={"volunteer_id": "BV1"}, headers=a)
    assert listed.status_code == 200 and [t["id"] for t in listed.json()["items"]] == [
        world.task_id]
    shown = client.get(f"/v1/schedules/{world.schedule_id}/map", headers=a)
    assert shown.status_code == 200, shown.text
    busy = [f for f in shown.json()["layers"]["circles"]["features"]
            if f["properties"].get("volunteer_id") == "BV1"]
    assert busy, "her walking circle is missing from A's map"
    # An edit of A's need that keeps every rule leaves her task alone.
    need = client.get("/v1/needs/AN1", headers=a).json()
    edited = client.put("/v1/needs/AN1", json=need | {"phone": "13800000002"}, headers=a)
    assert edited.status_code == 200, edited.text
    assert edited.json().get("at_risk", []) == []
    at_risk = client.get(f"/v1/schedules/{world.schedule_id}/tasks",
                         params={"at_risk": True}, headers=a)
    assert at_risk.status_code == 200 and at_risk.json()["items"] == []
    candidates = client.get(
        f"/v1/schedules/{world.schedule_id}/occurrences/AN1/mon/candidates", headers=a)
    assert candidates.status_code == 200, candidates.text
    cancelled = client.post(f"/v1/tasks/{world.task_id}/cancel", headers=a)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    with _db(client).session() as session:
        told = session.execute(select(OutboxEvent.recipient).where(
            OutboxEvent.kind == "task.cancelled")).scalars().all()
    assert told == ["volunteer:BV1"]


def test_her_own_community_shows_nothing_of_as_need(client: TestClient, world: World) -> None:
    """B's coordinator does not see A's schedule, task or need through her volunteer."""
    b = world.b_coordinator
    assert client.get(f"/v1/schedules/{world.schedule_id}", headers=b).status_code == 404
    assert client.get(f"/v1/schedules/{world.schedule_id}/tasks",
                      headers=b).status_code == 404
    assert client.get("/v1/needs/AN1", headers=b).status_code == 404


def test_b_edit_of_her_availability_puts_her_task_in_a_at_risk(client: TestClient,
                                                               world: World) -> None:
    """Her task in A follows her row in B: when B's coordinator narrows her hours, her task in
    A is marked at risk at once (A's week kept in this process is not stale) and A's
    coordinators are told; B's answer lists only B's own tasks."""
    a = world.a_coordinator
    assert client.get(f"/v1/schedules/{world.schedule_id}/occurrences/AN1/mon/candidates",
                      headers=a).status_code == 200  # A's week built and kept
    narrowed = _volunteer("BV1", "乙志愿者王芳") | {"availability": "mon 10:00-12:00"}
    edited = client.put("/v1/volunteers/BV1", json=narrowed, headers=world.b_coordinator)
    assert edited.status_code == 200, edited.text
    assert edited.json()["at_risk"] == []  # not B's task to show
    at_risk = client.get(f"/v1/schedules/{world.schedule_id}/tasks",
                         params={"at_risk": True}, headers=a).json()["items"]
    assert [t["id"] for t in at_risk] == [world.task_id]
    assert "BV1" in at_risk[0]["at_risk"]
    with _db(client).session() as session:
        told = set(session.execute(select(OutboxEvent.community_id, OutboxEvent.recipient)
                                   .where(OutboxEvent.kind == "task.at_risk")).all())
    # A's coordinators in A; she, through her own community's receiver.
    assert told == {(world.a, "coordinators"), (world.b, "volunteer:BV1")}
    # Her hours back: the mark is cleared, in A.
    restored = client.put("/v1/volunteers/BV1", json=_volunteer("BV1", "乙志愿者王芳"),
                          headers=world.b_coordinator)
    assert restored.status_code == 200, restored.text
    assert client.get(f"/v1/schedules/{world.schedule_id}/tasks", params={"at_risk": True},
                      headers=a).json()["items"] == []
    assert dt.date.fromisoformat(at_risk[0]["date"]) == WEEK.monday


def test_her_notices_go_through_her_own_communitys_receiver(client: TestClient,
                                                            world: World) -> None:
    # A's publication offered her the task: the notice is queued in B's outbox (B's mini program
    # knows her; with a receiver per community, A's would not), A's own volunteers' in A.
    with _db(client).session() as session:
        offered = session.execute(select(OutboxEvent.community_id, OutboxEvent.payload).where(
            OutboxEvent.kind == "task.offered",
            OutboxEvent.recipient == "volunteer:BV1")).all()
    assert [(c, p["task_id"]) for c, p in offered] == [(world.b, world.task_id)]
    cancelled = client.post(f"/v1/tasks/{world.task_id}/cancel", headers=world.a_coordinator)
    assert cancelled.status_code == 200, cancelled.text
    with _db(client).session() as session:
        told = session.scalars(select(OutboxEvent.community_id).where(
            OutboxEvent.kind == "task.cancelled",
            OutboxEvent.recipient == "volunteer:BV1")).all()
    assert told == [world.b]
