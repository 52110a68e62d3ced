"""The time bank across communities (通存通兑, api/timebank.py and api/ledger.py): a volunteer
of community A gives hours to her mother in community B of the same district, B serves the
mother and pays its volunteer from them; both communities' books balance through their clearing
accounts; the monthly settlement and each community's public report show what A owes B. On
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import ledger, tenancy
from api.community import TZ
from api.errors import Problem
from api.migrate import downgrade, upgrade
from api.models import Account, Base, LedgerEntry, NeedRow, OutboxEvent, StreetOffice
from matcher.domain import Week
from tests.api.conftest import books, make_user, set_clock, wait_for
from tests.api.test_timebank import _confirm
from tests.conftest import WEEK

MOTHER = {"member_id": "BF1", "name": "乙社区王阿姨", "phone": "13900000001",
          "address": "乙社区 5 栋 101", "lat": 22.5352, "lon": 114.0183}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _db(client: TestClient) -> Any:
    return client.app.state.db  # type: ignore[attr-defined]


def _add_community(client: TestClient, code: str, district: str | None = None) -> int:
    """A community of the default street office, or of a street office of another district."""
    with _db(client).session() as session:
        office = (session.get(StreetOffice, 1) if district is None else
                  tenancy.find_street_office(session, f"{district}-office", create=True,
                                             district=district))
        assert office is not None
        community = tenancy.add_community(session, code, f"{code}社区", office)
        session.commit()
        return community.id



def test_hours_earned_in_a_given_to_mother_in_b_pay_bs_volunteer(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    """The issue's done-when across two communities: A's volunteer earns hours, gives some to
    her mother in B (consent recorded by B), B's coordinator files a request for the mother,
    B's schedule serves it, and its confirmation pays B's volunteer from the mother's account;
    statements, the settlement and both public reports show it; both books balance."""
    first = published["tasks"][0]
    earned = _confirm(client, coordinator, first)["minutes"]
    daughter = first["volunteer_id"]
    me = make_user(client, "daughter", "volunteer", volunteer_id=daughter)
    b = _add_community(client, "yi")
    b_coordinator = make_user(client, "b-coordinator", "coordinator", community_id=b)
    assert client.post("/v1/timebank/members", json=MOTHER,
                       headers=b_coordinator).status_code == 201
    # Without naming her community the mother is not found (A has no such member).
    assert client.post("/v1/me/family", json={"member_id": "BF1", "relation": "母亲"},
                       headers=me).status_code == 404
    link = client.post("/v1/me/family", json={"member_id": "BF1", "relation": "母亲",
                                              "community": "yi"}, headers=me)
    assert link.status_code == 201, link.text
    link_id = link.json()["id"]
    # A's coordinator does not record the consent of B's resident; B's does.
    note = {"note": "王阿姨本人到乙社区居委会签了同意书"}
    assert client.post(f"/v1/timebank/links/{link_id}/consent", json=note,
                       headers=coordinator).status_code == 404
    consent = client.post(f"/v1/timebank/links/{link_id}/consent", json=note,
                          headers=b_coordinator)
    assert consent.status_code == 200 and consent.json()["consented"]

    gift = min(earned, 60)
    given_ = client.post("/v1/me/timebank/transfers", json={"member_id": "BF1", "minutes": gift},
                         headers=me | {"Idempotency-Key": "give-across-0001"})
    assert given_.status_code == 201, given_.text
    assert given_.json()["balance"] == earned - gift
    again = client.post("/v1/me/timebank/transfers", json={"member_id": "BF1", "minutes": gift},
                        headers=me | {"Idempotency-Key": "give-across-0001"})
    assert again.json() == given_.json()  # a retry moves nothing twice
    too_much = client.post("/v1/me/timebank/transfers",
                           json={"member_id": "BF1", "minutes": earned}, headers=me | key())
    assert too_much.status_code == 409, too_much.text
    gift_month = client.app.state.clock().strftime("%Y-%m")  # type: ignore[attr-defined]
    mine = client.get("/v1/me/timebank/statement", headers=me).json()
    assert mine["balance"] == earned - gift
    assert [e["kind"] for e in mine["entries"]["items"]][-1] == "transferred_out"
    mother = client.get("/v1/timebank/members/BF1/statement", headers=me).json()
    assert mother["balance"] == gift
    with _db(client).session() as session:  # B's coordinators heard of the link, not A's
        told = session.execute(select(OutboxEvent.community_id).where(
            OutboxEvent.kind == "family.link_requested")).scalars().all()
    assert told == [b]
    assert [e["kind"] for e in mother["entries"]["items"]] == ["transferred_in"]
    assert client.get("/v1/timebank/members/BF1/statement",
                      headers=coordinator).status_code == 404  # A's coordinator: not hers
    with _db(client).session() as session:
        assert all(v == 0 for v in books(session).values()), books(session)
        clearing = dict(session.execute(select(Account.community_id, Account.balance).where(
            Account.kind == ledger.TIME_CLEARING)).all())
    assert clearing == {1: gift, b: -gift}  # A owes B the hours B's volunteers will give

    # The daughter cannot have A schedule her mother: B does.
    elsewhere = client.post("/v1/timebank/requests", headers=me | key(), json={
        "member_id": "BF1", "service": "companionship", "days": "mon",
        "window": "09:00-11:00", "duration_min": 30})
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "member_elsewhere"
    # B serves the mother next week with a volunteer of its own, paid from her hours.
    with _db(client).session() as session:
        model = session.get(NeedRow, first["need_id"])
        assert model is not None
        template = {"service": model.service, "days": first["day"], "window": model.window,
                    "duration_min": min(model.duration_min, gift),
                    "skills": ";".join(model.skills),
                    "kind": "elderly" if model.kind != "childcare" else "childcare"}
    lat, lon = MOTHER["lat"], MOTHER["lon"]
    window = template["window"].split("-")
    assert client.post("/v1/volunteers", headers=b_coordinator, json={
        "volunteer_id": "BV1", "name": "乙社区志愿者", "lat": lat, "lon": lon,
        "skills": template["skills"], "max_hours_week": 6,
        "availability": f"{first['day']} {window[0]}-{window[1]}"}).status_code == 201
    nxt = Week.containing(WEEK.monday + dt.timedelta(days=7))
    set_clock(client, nxt.monday - dt.timedelta(days=3), "09:00")
    filed = client.post("/v1/timebank/requests", headers=b_coordinator | key(),
                        json=template | {"member_id": "BF1", "week": str(nxt),
                                         "priority": "yellow"})
    assert filed.status_code == 201, filed.text
    job = client.post("/v1/schedules", json={"week": str(nxt)}, headers=b_coordinator)
    body = wait_for(client, b_coordinator, job.json()["id"])
    assert body["status"] == "solved", body
    assert client.post(f"/v1/schedules/{body['id']}/publish", json={},
                       headers=b_coordinator).status_code == 200
    tasks = client.get(f"/v1/schedules/{body['id']}/tasks", headers=b_coordinator).json()
    hers = [t for t in tasks["items"] if t["need_id"] == filed.json()["need_id"]]
    assert [t["volunteer_id"] for t in hers] == ["BV1"], tasks
    paid = _confirm(client, b_coordinator, hers[0])
    assert paid["time_bank"]["paid_by"] == "time_member:BF1"
    duration = template["duration_min"]
    mother = client.get("/v1/timebank/members/BF1/statement", headers=b_coordinator).json()
    assert mother["balance"] == gift - duration
    assert [e["kind"] for e in mother["entries"]["items"]] == ["transferred_in", "drawn"]
    served_month = f"{dt.date.fromisoformat(hers[0]['date']):%Y-%m}"
    with _db(client).session() as session:
        assert all(v == 0 for v in books(session).values()), books(session)

    # The settlement of the gift's month: B's coordinator sees her pair, A's hers; the street
    # admin both communities.
    street = make_user(client, "street", "street_admin", street_office_id=1)
    seen = {}
    for who, headers in (("a", coordinator), ("b", b_coordinator), ("street", street)):
        response = client.get("/v1/timebank/settlement", params={"month": gift_month},
                              headers=headers)
        assert response.status_code == 200, response.text
        seen[who] = response.json()
    pair = {"from": "default", "to": "yi", "minutes_from_to": gift, "minutes_to_from": 0,
            "net": gift, "owed_at_end": gift, "points_from_to": 0, "points_to_from": 0,
            "points_owed_at_end": 0}  # no work crossed, only a gift of hours
    assert seen["a"]["pairs"] == seen["b"]["pairs"] == seen["street"]["pairs"] == [pair]
    assert [c["community"] for c in seen["a"]["communities"]] == ["default"]
    assert [c["community"] for c in seen["b"]["communities"]] == ["yi"]
    lines = {c["community"]: c for c in seen["street"]["communities"]}
    assert lines["default"]["owed_to_others"] == gift and lines["yi"]["owed_by_others"] == gift
    named = client.get("/v1/timebank/settlement", params={"month": gift_month},
                       headers=street | {"X-Linli-Community": "yi"}).json()
    assert [c["community"] for c in named["communities"]] == ["yi"]
    served = client.get("/v1/timebank/settlement", params={"month": served_month},
                        headers=street).json()
    spent = {c["community"]: c["spent"] for c in served["communities"]}
    assert spent["yi"] >= duration
    csv = client.get("/v1/timebank/settlement.csv", params={"month": gift_month},
                     headers=street)
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig")
    assert frame.to_dict("records") == [pair]
    per_community = client.get("/v1/timebank/settlement.csv",
                               params={"month": gift_month, "table": "communities"},
                               headers=street)
    assert list(pd.read_csv(io.BytesIO(per_community.content), encoding="utf-8-sig")[
        "community"]) == ["default", "yi"]
    assert client.get("/v1/timebank/settlement", params={"month": "2026-13"},
                      headers=street).status_code == 422

    # Each community's public report (信息公开) says what it owes others and they owe it.
    for code, owed_to, owed_by in (("default", gift, 0), ("yi", 0, gift)):
        report = client.get(f"/v1/reports/allocations/{gift_month}.csv",
                            params={"table": "timebank", "community": code})
        assert report.status_code == 200, report.text
        figures = pd.read_csv(io.BytesIO(report.content), encoding="utf-8-sig").set_index(
            "measure")["minutes"]
        assert (figures["owed_to_others"], figures["owed_by_others"]) == (owed_to, owed_by)
    page = client.get(f"/v1/reports/allocations/{gift_month}", params={"community": "yi"})
    assert "owed_by_others" in page.text


def test_hours_cross_only_within_the_city(client: TestClient,
                                          coordinator: dict[str, str]) -> None:
    """A community of another district is another city: no link, so no transfer."""
    far = _add_community(client, "far", district="elsewhere")
    far_coordinator = make_user(client, "far-coordinator", "coordinator", community_id=far)
    assert client.post("/v1/timebank/members", json=MOTHER,
                       headers=far_coordinator).status_code == 201
    assert client.post("/v1/volunteers", headers=coordinator, json={
        "volunteer_id": "V1", "name": "李雷", "lat": 22.5, "lon": 114.0, "skills": "",
        "max_hours_week": 4, "availability": "mon 08:00-12:00"}).status_code == 201
    me = make_user(client, "daughter", "volunteer", volunteer_id="V1", community_id=1)
    refused = client.post("/v1/me/family", json={"member_id": "BF1", "relation": "母亲",
                                                 "community": "far"}, headers=me)
    assert refused.status_code == 409 and refused.json()["code"] == "another_city"
    unknown = client.post("/v1/me/family", json={"member_id": "BF1", "relation": "母亲",
                                                 "community": "nowhere"}, headers=me)
    assert unknown.status_code == 404
    near = _add_community(client, "near")
    assert near
    missing = client.post("/v1/me/family", json={"member_id": "BF1", "relation": "母亲",
                                                 "community": "near"}, headers=me)
    assert missing.status_code == 404  # she lives in "far", not "near"


_ENGINES: dict[str, tuple[Any, tuple[int, int, int]]] = {}


def _three_communities(database_url: str) -> tuple[Any, tuple[int, int, int]]:
    """A migrated database (made once per test, shared by hypothesis's examples) with three
    communities of one street office."""
    if database_url not in _ENGINES:
        upgrade(database_url)
        engine = create_engine(database_url)
        with Session(engine) as session:
            office = session.scalars(select(StreetOffice)).first()
            assert office is not None
            made = [tenancy.add_community(session, code, f"{code}社区", office).id
                    for code in ("jia", "yi", "bing")]
            session.commit()
        _ENGINES[database_url] = (engine, (made[0], made[1], made[2]))
    return _ENGINES[database_url]


def test_concurrent_gifts_across_communities_never_overdraw(client: TestClient) -> None:
    """Many gifts at once from one volunteer of A to members of B: the ones that fit go
    through, the others are refused; her balance never goes below zero, the books balance."""
    a = 1
    b = _add_community(client, "yi")
    db = _db(client)
    with db.session() as session:
        ledger.transfer_across(session, (a, ledger.TIME_ISSUER[0], "community"),
                               (a, "time_volunteer", "V1"), 100, "seed", purpose="earned")
        session.commit()

    def give(n: int) -> bool:
        with db.session() as session:
            try:
                ledger.transfer_across(session, (a, "time_volunteer", "V1"),
                                       (b, "time_member", f"F{n % 3}"), 30, "gift",
                                       purpose="transfer")
                session.commit()
                return True
            except ledger.Overdrawn:
                session.rollback()
                return False

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(give, range(8)))
    assert sum(results) == 3
    with db.session() as session:
        volunteer = session.scalars(select(Account).filter_by(
            community_id=a, kind="time_volunteer", owner="V1")).one()
        assert volunteer.balance == 10
        assert all(v == 0 for v in books(session).values())
        # The database itself refuses a volunteer's balance below her floor.
        volunteer.balance = -1
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_transfer_across_refuses_points_and_nothing() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for bad in (0, -5):
            with pytest.raises(Problem):
                ledger.transfer_across(session, (1, "time_volunteer", "V1"),
                                       (2, "time_member", "F1"), bad, "none")
        with pytest.raises(Problem):
            ledger.transfer_across(session, (1, "volunteer", "V1"),
                                   (2, "time_member", "F1"), 5, "points")


MOVES = st.lists(st.tuples(
    st.integers(0, 2), st.integers(0, 3), st.integers(0, 2), st.integers(0, 3),
    st.integers(1, 90)), min_size=1, max_size=25)
# Accounts of each community: the issuer, the subsidy, two volunteers and two members.
KINDS = (("time_issuer", "community"), ("time_subsidy", "community"),
         ("time_volunteer", "V1"), ("time_volunteer", "V2"), ("time_member", "F1"),
         ("time_member", "F2"))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=MOVES, overdraft=st.sampled_from([0, 30]))
def test_every_communitys_books_balance_after_random_movements(
        database_url: str, moves: list[tuple[int, int, int, int, int]],
        overdraft: int) -> None:
    """Random movements (issued, given, drawn, within and across three communities, refused
    when they would overdraw): every community's accounts sum to zero, and the deployment's;
    every balance is the sum of its entries; a community's clearing account for another is
    the negative of the other's for it; none but the unbounded accounts is below its floor."""
    engine, ids = _three_communities(database_url)
    with Session(engine) as session:  # every example starts from empty books
        session.execute(delete(LedgerEntry))
        session.execute(delete(Account))
        session.commit()
    moment = dt.datetime(2026, 11, 20, 10, tzinfo=TZ)
    with Session(engine) as session:
        for source_c, source_k, target_c, target_k, minutes in moves:
            source = (ids[source_c], *KINDS[[0, 2, 3, 4][source_k]])
            target = (ids[target_c], *KINDS[[1, 2, 4, 5][target_k]])
            try:
                with session.begin_nested():
                    ledger.transfer_across(session, source, target, minutes, "move",
                                           purpose="transfer", overdraft=overdraft, at=moment)
            except ledger.Overdrawn:
                pass
        session.commit()
        sums = books(session)
        assert all(v == 0 for v in sums.values()), sums
        accounts = session.scalars(select(Account)).all()
        assert sum(x.balance for x in accounts) == 0
        entries = dict(session.execute(select(LedgerEntry.account_id, func.sum(
            LedgerEntry.amount)).group_by(LedgerEntry.account_id)).all())
        clearing = {}
        for acct in accounts:
            assert acct.balance == entries.get(acct.id, 0)
            assert acct.kind in ledger.UNBOUNDED or acct.balance >= acct.floor >= -overdraft
            if acct.kind == ledger.TIME_CLEARING:
                clearing[(acct.community_id, int(acct.owner))] = acct.balance
        for (here, there), balance in clearing.items():
            assert here != there and clearing[(there, here)] == -balance
        transfers = session.execute(select(LedgerEntry.transfer, func.sum(
            LedgerEntry.amount)).group_by(LedgerEntry.transfer)).all()
        assert all(total == 0 for _, total in transfers)


def test_downgrading_is_refused_while_minutes_sit_in_clearing(tmp_path: Any) -> None:
    """Migration 0019 goes down cleanly on empty clearing, and refuses while a clearing account
    exists (the older CHECK would refuse its balance)."""
    url = f"sqlite:///{tmp_path / 'linli.db'}"
    upgrade(url)
    downgrade(url, "0016")
    upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        office = session.scalars(select(StreetOffice)).one()
        other = tenancy.add_community(session, "yi", "乙社区", office).id
        ledger.transfer_across(session, (1, "time_issuer", "community"),
                               (other, "time_member", "F1"), 30, "gift")
        session.commit()
    engine.dispose()
    with pytest.raises(RuntimeError, match="clearing"):
        downgrade(url, "0016")
