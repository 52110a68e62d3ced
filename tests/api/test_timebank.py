"""The time bank: minutes for confirmed work, family members with consent, transfers, requests
paid from a time account, statements and the public report; concurrent draws never overdraw;
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from api import ledger, timebank
from api.community import TZ
from api.errors import Problem
from api.models import Account, LedgerEntry, NeedRow, ScheduleRow, TaskRow, VolunteerRow
from api.timebank import TimeRules
from matcher.domain import Week
from tests.api.conftest import make_user, set_clock, wait_for
from tests.conftest import WEEK

MOTHER = {"member_id": "F1", "name": "王秀英", "phone": "13900000000",
          "address": "香蜜湖街道 5 栋 101", "lat": 22.5352, "lon": 114.0183}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _db(client: TestClient) -> Any:
    return client.app.state.db  # type: ignore[attr-defined]


def _seed(client: TestClient, kind: str, owner: str, minutes: int) -> None:
    with _db(client).session() as session:
        ledger.transfer(session, ledger.TIME_ISSUER, (kind, owner), minutes, "seed",
                        purpose="earned")
        session.commit()


def _family(client: TestClient, coordinator: dict[str, str], volunteer_id: str
            ) -> dict[str, str]:
    """The volunteer's login, her mother registered, linked and consenting."""
    me = make_user(client, f"vol-{volunteer_id}", "volunteer", volunteer_id=volunteer_id)
    assert client.post("/v1/timebank/members", json=MOTHER,
                       headers=coordinator).status_code == 201
    link = client.post("/v1/me/family", json={"member_id": "F1", "relation": "母亲"},
                       headers=me)
    assert link.status_code == 201, link.text
    assert not link.json()["consented"]
    # Without consent nothing moves.
    refused = client.post("/v1/me/timebank/transfers", json={"member_id": "F1", "minutes": 5},
                          headers=me | key())
    assert refused.status_code == 409
    consent = client.post(f"/v1/timebank/links/{link.json()['id']}/consent",
                          json={"note": "王阿姨本人到居委会签了同意书"}, headers=coordinator)
    assert consent.status_code == 200 and consent.json()["consented"]
    return me


def _confirm(client: TestClient, coordinator: dict[str, str], task: dict[str, Any]
             ) -> dict[str, Any]:
    with _db(client).session() as session:
        session.execute(update(TaskRow).where(TaskRow.id == task["id"]).values(
            state="completed"))
        session.commit()
    start = dt.datetime.combine(dt.date.fromisoformat(task["date"]),
                                dt.time.fromisoformat(task["start"]), TZ)
    set_clock(client, start.date(), f"{(start + dt.timedelta(hours=3)):%H:%M}"
              if start.hour < 20 else "23:59")
    response = client.post(f"/v1/tasks/{task['id']}/confirm", headers=coordinator | key())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_hours_earned_given_to_mother_drawn_for_her_and_reported(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    """The issue's whole story: confirmed hours in a volunteer's time account; she gives some
    to her mother, who asks for a service next week; the solve schedules it, and its
    confirmation pays the serving volunteer from the mother's account; statements and the
    public report show it."""
    first = published["tasks"][0]
    served = _confirm(client, coordinator, first)
    minutes = served["minutes"]
    assert minutes >= served["time_bank"]["served"] > 0
    assert served["time_bank"]["paid_by"] == "community"
    daughter = first["volunteer_id"]
    me = _family(client, coordinator, daughter)
    statement = client.get("/v1/me/timebank/statement", headers=me).json()
    assert statement["balance"] == minutes
    gift = min(minutes, 60)
    with _db(client).session() as session:
        model = session.get(NeedRow, first["need_id"])
        assert model is not None
        template = {"service": model.service, "days": first["day"], "window": model.window,
                    "duration_min": min(model.duration_min, gift),
                    "skills": ";".join(model.skills),
                    "kind": "elderly" if model.kind != "childcare" else "childcare"}
    nxt = Week.containing(WEEK.monday + dt.timedelta(days=7))
    too_early = client.post("/v1/timebank/requests", headers=me | key(), json=template | {
        "member_id": "F1", "week": str(nxt)})
    assert too_early.status_code == 409, too_early.text  # her account is still empty
    given = client.post("/v1/me/timebank/transfers", json={"member_id": "F1", "minutes": gift},
                        headers=me | {"Idempotency-Key": "give-to-mother-1"})
    assert given.status_code == 201, given.text
    again = client.post("/v1/me/timebank/transfers", json={"member_id": "F1", "minutes": gift},
                        headers=me | {"Idempotency-Key": "give-to-mother-1"})
    assert again.json() == given.json()  # a retry moves nothing twice
    assert client.get("/v1/me/timebank/statement", headers=me).json()["balance"] == \
        minutes - gift

    # The mother's request, for next week, like a need the week already serves.
    filed = client.post("/v1/timebank/requests", headers=me | key(), json=template | {
        "member_id": "F1", "week": str(nxt), "priority": "yellow"})
    assert filed.status_code == 201, filed.text
    need_id = filed.json()["need_id"]
    job = client.post("/v1/schedules", json={"week": str(nxt)}, headers=coordinator)
    body = wait_for(client, coordinator, job.json()["id"])
    assert body["status"] == "solved", body
    assert client.post(f"/v1/schedules/{body['id']}/publish", json={},
                       headers=coordinator).status_code == 200
    tasks = client.get(f"/v1/schedules/{body['id']}/tasks", params={"limit": 500},
                       headers=coordinator).json()["items"]
    hers = [t for t in tasks if t["need_id"] == need_id]
    assert hers, "the request was not scheduled"
    mother = client.get("/v1/timebank/members/F1/statement", headers=me).json()
    assert mother["balance"] == gift  # scheduled, not yet served: nothing charged
    paid = _confirm(client, coordinator, hers[0])
    assert paid["time_bank"]["paid_by"] == "time_member:F1"
    duration = template["duration_min"]
    mother = client.get("/v1/timebank/members/F1/statement", headers=me).json()
    assert mother["balance"] == gift - duration
    assert [e["kind"] for e in mother["entries"]["items"]] == ["transferred_in", "drawn"]
    month_totals = mother["months"]
    assert sum(m["transferred_in"] for m in month_totals) == gift
    assert sum(m["drawn"] for m in month_totals) == duration
    server = hers[0]["volunteer_id"]
    with _db(client).session() as session:
        acct = session.scalars(select(Account).filter_by(kind="time_volunteer",
                                                         owner=server)).one()
        drawn = session.scalars(select(LedgerEntry).where(
            LedgerEntry.account_id == acct.id, LedgerEntry.purpose == "drawn")).all()
    assert [e.amount for e in drawn] == [duration]

    month = WEEK.monday.strftime("%Y-%m")
    clock_month = f"{dt.date.fromisoformat(hers[0]['date']):%Y-%m}"
    figures = client.get(f"/v1/timebank/report/{clock_month}", headers=coordinator).json()
    assert figures["drawn"] >= duration
    total_issued = sum(client.get(f"/v1/timebank/report/{m}", headers=coordinator).json()[
        "issued"] for m in sorted({month, clock_month}))
    assert total_issued == minutes + paid["minutes"] - duration
    # Liability: everything issued is still held by people (nobody overdrew).
    assert figures["liability"] == total_issued
    page = client.get(f"/v1/reports/allocations/{clock_month}")
    assert "时间银行" in page.text
    csv = client.get(f"/v1/reports/allocations/{clock_month}.csv",
                     params={"table": "timebank"})
    assert csv.status_code == 200 and "liability" in csv.text
    assert f",{figures['liability']}," in csv.text


def _monday_night() -> dt.datetime:
    return dt.datetime.combine(WEEK.monday, dt.time(22), TZ)


def _rows(client: TestClient) -> tuple[int, NeedRow, TaskRow]:
    """A volunteer, a published schedule and one task, written directly (no solve)."""
    with _db(client).session() as session:
        session.add(VolunteerRow(volunteer_id="V1", name="李雷", lat=22.5, lon=114.0,
                                 availability=[{"day": "mon", "start": 480, "end": 1320}]))
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="")
        session.add(schedule)
        session.flush()
        need = NeedRow(need_id="N1", kind="elderly", service="companionship",
                       beneficiary="王秀英", lat=22.5, lon=114.0, days=["mon"],
                       window="19:00-22:00", duration_min=60, priority="red")
        session.add(need)
        session.flush()
        task = TaskRow(schedule_id=schedule.id, need_id="N1", day="mon", date=WEEK.monday,
                       start=20 * 60, end=21 * 60, volunteer_id="V1", walk_min=3.0,
                       state="confirmed")
        session.add(task)
        session.commit()
        return schedule.id, need, task


def test_multipliers_are_issued_on_top_and_named_on_the_statement(
        client: TestClient, coordinator: dict[str, str]) -> None:
    _rows(client)
    rules = TimeRules(night=1.5, red=2.0)
    with _db(client).session() as session:
        task = session.get(TaskRow, 1)
        need = session.get(NeedRow, "N1")
        credited = timebank.credit_task(session, task, need, rules, _monday_night())
        session.commit()
    assert credited == {"minutes": 180, "served": 60, "paid_by": "community",
                        "multipliers": {"night": 1.5, "red": 2.0}}
    me = make_user(client, "v1", "volunteer", volunteer_id="V1")
    statement = client.get("/v1/me/timebank/statement", headers=me).json()
    assert statement["balance"] == 180
    assert [(e["kind"], e["minutes"]) for e in statement["entries"]["items"]] == [
        ("earned", 60), ("bonus", 120)]
    assert "nightx1.5 redx2" in statement["entries"]["items"][1]["memo"]
    assert statement["months"][0]["earned"] == 60 and statement["months"][0]["bonus"] == 120


def test_a_red_request_is_never_refused_and_the_community_pays_what_she_cannot(
        client: TestClient, coordinator: dict[str, str]) -> None:
    _rows(client)
    assert client.post("/v1/timebank/members", json=MOTHER,
                       headers=coordinator).status_code == 201
    body = {"member_id": "F1", "service": "companionship", "days": "mon",
            "window": "19:00-22:00", "duration_min": 60, "week": str(WEEK)}
    blue = client.post("/v1/timebank/requests", json=body, headers=coordinator | key())
    assert blue.status_code == 409  # nothing in her account
    red = client.post("/v1/timebank/requests", json=body | {"priority": "red"},
                      headers=coordinator | key())
    assert red.status_code == 201, red.text
    need_id = red.json()["need_id"]
    with _db(client).session() as session:
        task = session.get(TaskRow, 1)
        task.need_id = need_id
        session.flush()
        need = session.get(NeedRow, need_id)
        credited = timebank.credit_task(session, task, need, TimeRules(overdraft=30),
                                         _monday_night())
        session.commit()
    assert credited["paid_by"] == "subsidy"  # 60 needed, 30 allowed
    with _db(client).session() as session:
        balances = {(a.kind, a.owner): a.balance for a in session.scalars(select(Account))}
    assert balances[("time_member", "F1")] == 0
    assert balances[("time_volunteer", "V1")] == 60
    assert balances[("time_subsidy", "community")] == -60
    figures = client.get(f"/v1/timebank/report/{WEEK.monday:%Y-%m}",
                         headers=coordinator).json()
    assert (figures["issued"], figures["drawn"], figures["subsidised"],
            figures["liability"]) == (0, 0, 60, 60)


@pytest.mark.parametrize("overdraft", [0, 40])
def test_concurrent_draws_never_pass_the_limit(client: TestClient, overdraft: int) -> None:
    _seed(client, "time_member", "F1", 100)

    def draw(n: int) -> int:
        with _db(client).session() as session:
            try:
                ledger.transfer(session, ("time_member", "F1"), ("time_volunteer", f"V{n}"),
                                30, f"draw {n}", purpose="drawn", overdraft=overdraft)
                session.commit()
                return 201
            except Problem as exc:
                session.rollback()
                return exc.status

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(draw, range(8)))
    assert codes.count(201) == (100 + overdraft) // 30
    assert set(codes) == {201, 409}
    with _db(client).session() as session:
        member = session.scalars(select(Account).filter_by(kind="time_member",
                                                           owner="F1")).one()
        assert member.balance == 100 - 30 * codes.count(201) >= -overdraft
        assert member.balance == session.scalar(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.account_id == member.id))
        assert session.scalar(select(func.sum(Account.balance))) == 0


def test_concurrent_gifts_to_family_never_overdraw(client: TestClient,
                                                  coordinator: dict[str, str]) -> None:
    _rows(client)
    me = _family(client, coordinator, "V1")
    _seed(client, "time_volunteer", "V1", 50)

    def give(n: int) -> int:
        return client.post("/v1/me/timebank/transfers", json={"member_id": "F1", "minutes": 20},
                           headers=me | {"Idempotency-Key": f"gift-number-{n}"}).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(give, range(4)))
    assert codes == [201, 201, 409, 409]  # gifts never use the overdraft
    assert client.get("/v1/timebank/members/F1/statement",
                      headers=coordinator).json()["balance"] == 40


def test_the_database_refuses_a_balance_below_the_floor(client: TestClient) -> None:
    _seed(client, "time_member", "F1", 10)
    with _db(client).session() as session:
        ledger.account(session, "volunteer", "V1")
        session.commit()
    cases = [("time_member", -1, None), ("volunteer", -1, None),
             ("volunteer", 0, -5)]  # points never get a floor below zero
    for kind, balance, floor in cases:
        values: dict[str, Any] = {"balance": balance}
        if floor is not None:
            values["floor"] = floor
        with _db(client).session() as session, pytest.raises(IntegrityError):
            session.execute(update(Account).where(Account.kind == kind).values(**values))
            session.commit()
    with _db(client).session() as session:  # a time account may go down to its own floor
        session.execute(update(Account).where(Account.kind == "time_member").values(
            floor=-20, balance=-20))
        session.commit()
        assert session.execute(text("SELECT balance FROM accounts WHERE kind = "
                                    "'time_member'")).scalar() == -20


def test_volunteers_act_only_for_their_own_consented_family(
        client: TestClient, coordinator: dict[str, str]) -> None:
    _rows(client)
    me = _family(client, coordinator, "V1")
    with _db(client).session() as session:
        session.add(VolunteerRow(volunteer_id="V2", name="韩梅梅", lat=22.5, lon=114.0,
                                 availability=[{"day": "mon", "start": 480, "end": 1320}]))
        session.commit()
    stranger = make_user(client, "v2", "volunteer", volunteer_id="V2")
    _seed(client, "time_volunteer", "V2", 100)
    assert client.post("/v1/me/timebank/transfers", json={"member_id": "F1", "minutes": 5},
                       headers=stranger | key()).status_code == 404
    assert client.get("/v1/timebank/members/F1/statement",
                      headers=stranger).status_code == 404
    body = {"member_id": "F1", "service": "companionship", "days": "mon",
            "window": "19:00-22:00", "duration_min": 60}
    assert client.post("/v1/timebank/requests", json=body,
                       headers=stranger | key()).status_code == 404
    assert client.post("/v1/timebank/requests", json=body | {"priority": "red"},
                       headers=me | key()).status_code == 403
    bad = client.post("/v1/timebank/requests", json=body | {"window": "25:00-26:00"},
                      headers=coordinator | key())
    assert bad.status_code == 422
    for week, status in (("2026-W99", 422), ("next week", 422), ("2020-W01", 409)):
        answer = client.post("/v1/timebank/requests", json=body | {"week": week},
                             headers=me | key())
        assert answer.status_code == status, (week, answer.text)
        assert week in answer.text
    assert client.get("/v1/timebank/report/2026-13", headers=coordinator).status_code == 422
    assert client.get("/v1/me/timebank/statement?month=2026-1",
                      headers=me).status_code == 422
