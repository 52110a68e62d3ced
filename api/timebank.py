"""The time bank (时间银行): minutes of service beside the points, in the same ledger.

* Every confirmed task credits its volunteer's time account (``time_volunteer``) with its
  minutes, issued by the community (``time_issuer``), times the multipliers the community sets
  (night, red need, certified skill); the extra is a separate ``bonus`` entry whose memo names
  the multipliers, so the statement shows them.
* A resident who has no login is a *member* (``MemberRow``, account ``time_member``),
  registered by a coordinator. A volunteer links her family members; a coordinator records the
  member's consent, and only then may the volunteer transfer minutes to her or file requests
  for her.
* A request paid from a time account is a need (one-off for a chosen week, or standing). When a
  task of it is confirmed, its minutes move from the payer to the serving volunteer instead of
  being issued; unmet, nothing moves. A payer whose balance (down to the community's overdraft
  limit) cannot cover it is paid for by the community's subsidy account (``time_subsidy``):
  the volunteer's work is always paid, and a red need is never refused for lack of hours.
* Across communities of one city (通存通兑): a volunteer may link a family member registered
  in another community of her district (a city above districts is not modelled yet: the
  district is the city) and give her minutes; the member's coordinator records the consent.
  Such a gift passes through the two communities' clearing accounts
  (:func:`api.ledger.transfer_across`), so each community's books balance and what one owes
  the other is visible; :func:`settlement` reports it by month.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from api.community import TZ, audit, notify, stored
from api.errors import Problem
from api.ledger import (
    ACCOUNTS,
    ENTRIES,
    POINTS_CLEARING,
    TIME_CLEARING,
    TIME_ISSUER,
    TIME_SUBSIDY,
    Overdrawn,
    account,
    spendable,
    transfer,
    transfer_across,
    transfer_home,
)
from api.models import (
    Account,
    Community,
    FamilyLink,
    LedgerEntry,
    MemberRow,
    NeedRow,
    OutboxEvent,
    StreetOffice,
    TaskRow,
    TimeRequest,
    in_community,
    session_community,
    sole_community,
)
from api.paging import page_rows
from api.security import Caller, Role
from api.settings import ApiSettings
from api.tenancy import check_new_id
from matcher.domain import Need, Week
from matcher.i18n import _
from matcher.spreadsheets import parse_records

VOLUNTEER = "time_volunteer"
MEMBER = "time_member"
HOLDERS = (VOLUNTEER, MEMBER)  # accounts of people: what they hold is the bank's liability
NIGHT_START, NIGHT_END = 20 * 60, 6 * 60  # minutes of the day


@dataclass(frozen=True, slots=True)
class TimeRules:
    """What the community decided: the overdraft limit and the multipliers."""

    overdraft: int = 0
    night: float = 1.0
    red: float = 1.0
    skill: float = 1.0

    @classmethod
    def of(cls, settings: ApiSettings) -> TimeRules:
        return cls(settings.time_overdraft_min, settings.time_night_multiplier,
                   settings.time_red_multiplier, settings.time_skill_multiplier)


def multipliers(rules: TimeRules, *, start: int, end: int, priority: str,
                skills: str) -> list[tuple[str, float]]:
    """The multipliers that apply to a task (reason code, factor), those above 1 only."""
    found = [("night", rules.night) if start < NIGHT_END or end > NIGHT_START else None,
             ("red", rules.red) if priority == "red" else None,
             ("skill", rules.skill) if skills.strip() else None]
    return [m for m in found if m is not None and m[1] > 1]


def credited_minutes(minutes: int, factors: list[tuple[str, float]]) -> int:
    """Minutes served times every factor, rounded down (never less than served)."""
    return max(minutes, math.floor(minutes * math.prod(f for _, f in factors) + 1e-9))


def credit_task(session: Session, task: TaskRow, need: NeedRow, rules: TimeRules,
                now: dt.datetime) -> dict[str, Any]:
    """Credit a confirmed task's minutes (in the confirmation's transaction): paid by the
    request's payer for a time-bank need (or the subsidy when the payer cannot), issued by the
    community otherwise; multipliers are issued on top. A volunteer of another community who
    served here is paid into her account there (:func:`api.ledger.transfer_home`)."""
    served = task.end - task.start
    volunteer = (VOLUNTEER, task.volunteer_id)
    memo = f"task {task.id} {task.need_id} {task.date}"
    request = session.get(TimeRequest, need.need_id)
    payer = "community"
    if request is None:
        transfer_home(session, TIME_ISSUER, volunteer, served, memo, purpose="earned", at=now)
    else:
        source = (request.payer_kind, request.payer_owner)
        try:
            with session.begin_nested():
                transfer_home(session, source, volunteer, served, memo, purpose="drawn",
                              overdraft=rules.overdraft, at=now)
            payer = f"{request.payer_kind}:{request.payer_owner}"
        except Overdrawn:
            transfer_home(session, TIME_SUBSIDY, volunteer, served,
                          f"{memo} for {request.payer_owner}", purpose="subsidy", at=now)
            payer = "subsidy"
    factors = multipliers(rules, start=task.start, end=task.end, priority=need.priority,
                          skills=";".join(need.skills))
    total = credited_minutes(served, factors)
    if total > served:
        named = " ".join(f"{code}x{factor:g}" for code, factor in factors)
        transfer_home(session, TIME_ISSUER, volunteer, total - served, f"{memo} {named}",
                      purpose="bonus", at=now)
    return {"minutes": total, "served": served, "multipliers": dict(factors), "paid_by": payer}


# --- members and family ---------------------------------------------------------------------

def add_member(session: Session, user: Caller, values: dict[str, Any]) -> MemberRow:
    if session.get(MemberRow, values["member_id"]) is not None:
        raise Problem(409, _("member {id} already exists").format(id=values["member_id"]))
    check_new_id(session, MemberRow, "members", values["member_id"])
    member = MemberRow(**values)
    session.add(member)
    account(session, MEMBER, member.member_id)
    audit(session, user, "create", f"member:{member.member_id}")
    session.commit()
    return member


def same_city(session: Session, one: int, other: int) -> bool:
    """Whether two communities are of one city, where hours cross (通存通兑): today, of the
    same district (区), the highest level the deployment models."""
    districts = session.execute(
        select(Community.id, StreetOffice.district_id)
        .join(StreetOffice, StreetOffice.id == Community.street_office_id)
        .where(Community.id.in_([one, other]))).all()
    found = {row[0]: row[1] for row in districts}
    return len(found) == 2 and found[one] == found[other]


def home_of(session: Session) -> int:
    """The community a scoped session works in (the deployment's only one when unscoped)."""
    return session_community(session) or sole_community(session)


def member_community(session: Session, member_id: str) -> int | None:
    """The community a member is registered in, whichever it is (a plain statement: the
    session's scope would hide her)."""
    table = MemberRow.__table__
    found = session.execute(select(table.c.community_id)
                            .where(table.c.member_id == member_id)).scalar()
    return None if found is None else int(found)


def link_family(session: Session, user: Caller, member_id: str, relation: str,
                community: str | None = None) -> FamilyLink:
    """The volunteer asks; the link is usable once a coordinator of the member's community
    records the consent. ``community``: the code of the member's community when it is another
    one of the volunteer's city."""
    assert user.volunteer_id is not None
    home = home_of(session)
    where = home
    if community is not None:
        found_id = session.scalar(select(Community.id).where(Community.code == community))
        if found_id is None:
            raise Problem(404, _("no community {code} here").format(code=community),
                          code="community_not_found")
        if not same_city(session, home, found_id):
            raise Problem(409, _("hours cross only between communities of one city; "
                                 "{code} is in another").format(code=community),
                          code="another_city")
        where = found_id
    if (session.get(MemberRow, member_id) is None if where == home
            else member_community(session, member_id) != where):
        raise Problem(404, _("no member {id}").format(id=member_id))
    found = session.scalars(select(FamilyLink).filter_by(
        volunteer_id=user.volunteer_id, member_id=member_id)).one_or_none()
    if found is not None:
        return found
    link = FamilyLink(volunteer_id=user.volunteer_id, member_id=member_id, relation=relation)
    session.add(link)
    session.flush()
    if where == home:
        notify(session, "coordinators", "family.link_requested", {"link_id": link.id})
    else:  # the member's coordinators record her consent
        session.execute(insert(cast(Table, OutboxEvent.__table__)).values(
            community_id=where, recipient="coordinators", kind="family.link_requested",
            payload={"link_id": link.id}))
    audit(session, user, "link", f"member:{member_id}", relation)
    session.commit()
    return link


def record_consent(session: Session, user: Caller, link_id: int, note: str,
                   now: dt.datetime) -> FamilyLink:
    link = session.get(FamilyLink, link_id, with_for_update=True)
    # The member's own community records her consent (a link from a volunteer of this
    # community to a member of another is seen here, not consented here).
    if link is None or session.get(MemberRow, link.member_id) is None:
        raise Problem(404, _("no family link {id}").format(id=link_id))
    if link.consent_at is None:
        link.consent_note, link.consent_by, link.consent_at = note, user.id, now
        notify(session, f"volunteer:{link.volunteer_id}", "family.consented",
               {"link_id": link.id, "member_id": link.member_id})
        audit(session, user, "consent", f"member:{link.member_id}", note)
    session.commit()
    return link


def consented(session: Session, volunteer_id: str | None, member_id: str) -> FamilyLink:
    """The caller's consented link to ``member_id``, or 404 / 409 saying what is missing."""
    link = session.scalars(select(FamilyLink).filter_by(
        volunteer_id=volunteer_id, member_id=member_id)).one_or_none()
    if link is None:
        raise Problem(404, _("{id} is not one of your family members").format(id=member_id))
    if link.consent_at is None:
        raise Problem(409, _("the consent of {id} is not recorded yet; a coordinator records "
                             "it").format(id=member_id))
    return link


def give(session: Session, user: Caller, member_id: str, minutes: int,
         now: dt.datetime) -> dict[str, Any]:
    """A volunteer transfers minutes of her own to a family member (never into overdraft: the
    limit is for services received, not for gifts). The caller commits."""
    consented(session, user.volunteer_id, member_id)
    assert user.volunteer_id is not None
    memo = f"from {user.volunteer_id} to {member_id}"
    home, theirs = home_of(session), member_community(session, member_id)
    if theirs is None or theirs == home:
        transfer_id = transfer(session, (VOLUNTEER, user.volunteer_id), (MEMBER, member_id),
                               minutes, memo, purpose="transfer", at=now)
    else:  # her mother in another community of the city: through both clearing accounts
        transfer_id = transfer_across(session, (home, VOLUNTEER, user.volunteer_id),
                                      (theirs, MEMBER, member_id), minutes, memo,
                                      purpose="transfer", at=now)
    audit(session, user, "transfer", f"member:{member_id}", f"{minutes} minutes")
    return {"transfer": transfer_id, "minutes": minutes, "member_id": member_id,
            "balance": account(session, VOLUNTEER, user.volunteer_id).balance}


# --- requests -----------------------------------------------------------------------------

def file_request(session: Session, user: Caller, body: dict[str, Any], rules: TimeRules,
                 now: dt.datetime) -> dict[str, Any]:
    """A service request for a member, paid from a time account: it becomes a need (of the
    chosen week only, or standing). Refused when the payer cannot cover one week of it, except
    for red needs (the community pays what the payer cannot). The caller commits."""
    member = session.get(MemberRow, body["member_id"])
    if member is None:
        if user.role == Role.VOLUNTEER.value and member_community(
                session, body["member_id"]) is not None:
            # Her family member of another community: that community schedules her requests.
            consented(session, user.volunteer_id, body["member_id"])
            raise Problem(409, _("{id} lives in another community: her coordinator there "
                                 "files her requests, paid from the hours you gave "
                                 "her").format(id=body["member_id"]),
                          code="member_elsewhere")
        raise Problem(404, _("no member {id}").format(id=body["member_id"]))
    if user.role == Role.VOLUNTEER.value:
        consented(session, user.volunteer_id, member.member_id)
        if body["priority"] == "red":
            raise Problem(403, _("only a coordinator marks a request red"))
        assert user.volunteer_id is not None
        payer = ((VOLUNTEER, user.volunteer_id) if body["paid_by"] == "me"
                 else (MEMBER, member.member_id))
    else:
        if body["paid_by"] == "me":
            raise Problem(422, _("a coordinator has no time account; the member pays"),
                          errors=[{"path": ["body", "paid_by"], "message": "member"}])
        payer = (MEMBER, member.member_id)
    week = body.get("week")
    if week:
        try:
            parsed_week = Week.parse(week)
        except ValueError as exc:
            raise Problem(422, _("week {week} is not like 2026-W48").format(week=week),
                          errors=[{"path": ["body", "week"], "message": str(exc)}]) from exc
        if parsed_week.monday + dt.timedelta(days=6) < now.astimezone(TZ).date():
            raise Problem(409, _("week {week} is over").format(week=week))
    need_id = f"TB{uuid.uuid4().hex[:10].upper()}"
    record = {"need_id": need_id, "kind": body["kind"], "service": body["service"],
              "beneficiary": member.name, "phone": member.phone, "address": member.address,
              "lat": member.lat, "lon": member.lon, "days": body["days"],
              "window": body["window"], "duration_min": body["duration_min"],
              "skills": body["skills"], "volunteers_needed": body["volunteers_needed"],
              "priority": body["priority"], "merchant_service": ""}
    parsed = parse_records("needs", [record], "body")[0]
    if not isinstance(parsed, Need):  # the parser keeps what it cannot use as a note
        raise Problem(422, _("this request cannot be scheduled: {why}").format(why=parsed))
    values = stored("needs", record, parsed)
    weekly = parsed.duration_min * parsed.volunteers_needed * len(parsed.days)
    can_pay = spendable(session, *payer, rules.overdraft)
    if values["priority"] != "red" and can_pay < weekly:
        raise Problem(409, _("this request takes {need} minutes a week; the account can pay "
                             "{can} minutes").format(need=weekly, can=can_pay))
    session.add(NeedRow(**values, only_week=str(parsed_week) if week else None))
    session.add(TimeRequest(need_id=need_id, member_id=member.member_id, payer_kind=payer[0],
                            payer_owner=payer[1], filed_by=user.id))
    session.flush()
    notify(session, "coordinators", "timebank.request_filed", {"need_id": need_id})
    audit(session, user, "request", f"need:{need_id}", f"for member:{member.member_id}")
    return {"need_id": need_id, "member_id": member.member_id, "week": week,
            "paid_by": f"{payer[0]}:{payer[1]}", "minutes_per_week": weekly,
            "priority": values["priority"]}


# --- statements and reports ---------------------------------------------------------------

def _month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    first = dt.date.fromisoformat(f"{month}-01")
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), TZ)
    if first == dt.date.min:  # its midnight in Shanghai lies before the first UTC moment
        start = dt.datetime.min.replace(tzinfo=dt.UTC)
    return start, dt.datetime.combine(nxt, dt.time(), TZ)


def parse_month(month: str | None) -> str | None:
    if month is None:
        return None
    try:
        _month_bounds(month)
    except ValueError as exc:
        raise Problem(422, _("month {month} is not YYYY-MM").format(month=month),
                      errors=[{"path": ["query", "month"], "message": "YYYY-MM"}]) from exc
    return month


def _heading(purpose: str, amount: int) -> str:
    if purpose == "transfer":
        return "transferred_in" if amount > 0 else "transferred_out"
    if purpose == "bonus":
        return "bonus"
    return "earned" if amount > 0 else "drawn"


def statement(session: Session, kind: str, owner: str, month: str | None) -> dict[str, Any]:
    """A time account: balance, totals by month (earned, bonus, transferred in and out,
    drawn) and every entry (of ``month`` only, if given). The caller commits."""
    acct = account(session, kind, owner)
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == acct.id)
                              .order_by(LedgerEntry.id)).all()
    months: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("earned", "bonus", "transferred_in", "transferred_out", "drawn"), 0))
    shown = []
    for e in entries:
        at = e.created_at.astimezone(TZ)
        key = f"{at:%Y-%m}"
        months[key][_heading(e.purpose, e.amount)] += abs(e.amount)
        if month is None or key == month:
            shown.append({"at": at.isoformat(), "minutes": e.amount,
                          "kind": _heading(e.purpose, e.amount), "memo": e.memo,
                          "transfer": e.transfer})
    return {"account": f"{kind}:{owner}", "currency": "minutes", "balance": acct.balance,
            "floor": acct.floor, "month": month,
            "months": [{"month": m} | totals for m, totals in sorted(months.items())
                       if month is None or m == month],
            "entries": shown}


def account_statement(session: Session, kind: str, owner: str,
                      month: str | None) -> dict[str, Any]:
    """:func:`statement` of a month given as text (422 unless YYYY-MM), committed: the
    account may have been created on first use."""
    parsed = parse_month(month)
    theirs = member_community(session, owner) if kind == MEMBER else None
    if theirs is not None and theirs != home_of(session):  # a linked member elsewhere
        with in_community(session, theirs):
            found = statement(session, kind, owner, parsed)
    else:
        found = statement(session, kind, owner, parsed)
    session.commit()
    return found


def members(session: Session, user: Caller, limit: int,
            offset: int) -> tuple[list[MemberRow], int]:
    """One page of the members, by id (a read of personal data: audited)."""
    found = page_rows(session, select(MemberRow).order_by(MemberRow.member_id), limit, offset)
    audit(session, user, "read", "members", f"offset {offset} limit {limit}")
    session.commit()
    return found


def family(session: Session, user: Caller, limit: int,
           offset: int) -> tuple[list[FamilyLink], int]:
    """One page of the volunteer's family links, oldest first."""
    return page_rows(session, select(FamilyLink).filter_by(volunteer_id=user.volunteer_id)
                     .order_by(FamilyLink.id), limit, offset)


def community_month(session: Session, month: str) -> dict[str, int]:
    """The community's time bank in ``month``: minutes issued (for confirmed work, with
    bonuses), minutes drawn by requests, minutes the subsidy paid; and at the month's end the
    liability (minutes people hold and may still draw), what members owe (overdrafts), and
    what the community owes other communities (minutes their members received from here and
    will draw there) and they owe it."""
    start, end = _month_bounds(month)

    def out_of(kinds: tuple[str, ...], *purposes: str) -> int:
        """Minutes that left accounts of ``kinds`` for ``purposes`` in the month."""
        return -int(session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(Account, Account.id == LedgerEntry.account_id)
            .where(Account.kind.in_(kinds), LedgerEntry.purpose.in_(purposes),
                   LedgerEntry.amount < 0,
                   LedgerEntry.created_at >= start, LedgerEntry.created_at < end)) or 0)

    held = session.execute(
        select(func.sum(LedgerEntry.amount))
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.kind.in_(HOLDERS), LedgerEntry.created_at < end)
        .group_by(LedgerEntry.account_id)).scalars().all()
    clearing = session.execute(
        select(func.sum(LedgerEntry.amount))
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.kind == TIME_CLEARING, LedgerEntry.created_at < end)
        .group_by(LedgerEntry.account_id)).scalars().all()
    return {"issued": out_of((TIME_ISSUER[0],), "earned", "bonus"),
            "drawn": out_of(HOLDERS, "drawn"),
            "subsidised": out_of((TIME_SUBSIDY[0],), "subsidy"),
            "liability": sum(int(h) for h in held if h > 0),
            "owed": -sum(int(h) for h in held if h < 0),
            "owed_to_others": sum(int(c) for c in clearing if c > 0),
            "owed_by_others": -sum(int(c) for c in clearing if c < 0)}


def may_read_member(session: Session, user: Caller, member_id: str) -> None:
    """A member of the caller's community (a coordinator), or one she is linked to with
    consent (a volunteer; the member may live in another community of the city)."""
    if user.reads_all:
        if session.get(MemberRow, member_id) is None:
            raise Problem(404, _("no member {id}").format(id=member_id))
        return
    consented(session, user.volunteer_id, member_id)



# --- across communities -------------------------------------------------------------------

def settlement(session: Session, communities: list[Community], month: str) -> dict[str, Any]:
    """The month's settlement between communities, as seen by whoever may read
    ``communities``: one line per pair of communities that minutes (or points) crossed between
    (at least one of the two in ``communities``): the minutes that went each way in the month,
    the net, and what the first owes the second at the month's end, and the same of the points
    paid for work done in the other community; and each community's minutes
    issued, drawn and outstanding, with what it owes others and they owe it. The caller
    commits."""
    start, end = _month_bounds(month)
    ours = {c.id: c for c in communities}
    accounts, entries = ACCOUNTS, ENTRIES
    rows = session.execute(
        select(accounts.c.community_id, accounts.c.owner, accounts.c.kind, entries.c.amount,
               entries.c.created_at)
        .join(entries, entries.c.account_id == accounts.c.id)
        .where(accounts.c.kind.in_((TIME_CLEARING, POINTS_CLEARING)),
               accounts.c.community_id.in_(list(ours)), entries.c.created_at < end)).all()
    # Per pair (x, y), x the lower id, per currency: what went x to y and y to x in the month,
    # and what x owes y at its end; read from one side only when both are in ``communities``.
    flows: dict[tuple[int, int], dict[str, list[int]]] = {}
    for community_id, owner, kind, amount, created_at in rows:
        here, there = int(community_id), int(owner)
        if there in ours and there < here:
            continue
        x, y = min(here, there), max(here, there)
        flow = flows.setdefault((x, y), {TIME_CLEARING: [0, 0, 0], POINTS_CLEARING: [0, 0, 0]})[
            kind]
        flow[2] += int(amount) if here == x else -int(amount)
        if created_at >= start:
            outward = amount > 0  # a positive entry: value left ``here`` for ``there``
            flow[0 if outward == (here == x) else 1] += abs(int(amount))
    ids = {i for pair in flows for i in pair} | set(ours)
    codes = {c.id: c.code for c in session.scalars(select(Community).where(
        Community.id.in_(ids)))}
    pairs = []
    for (x, y), by_kind in flows.items():
        (x_to_y, y_to_x, x_owes), (p_x_to_y, p_y_to_x, p_x_owes) = (
            by_kind[TIME_CLEARING], by_kind[POINTS_CLEARING])
        if codes[x] > codes[y]:
            x, y, x_to_y, y_to_x, x_owes = y, x, y_to_x, x_to_y, -x_owes
            p_x_to_y, p_y_to_x, p_x_owes = p_y_to_x, p_x_to_y, -p_x_owes
        pairs.append({"from": codes[x], "to": codes[y], "minutes_from_to": x_to_y,
                      "minutes_to_from": y_to_x, "net": x_to_y - y_to_x,
                      "owed_at_end": x_owes, "points_from_to": p_x_to_y,
                      "points_to_from": p_y_to_x, "points_owed_at_end": p_x_owes})
    pairs.sort(key=lambda p: (p["from"], p["to"]))
    lines = []
    for community in sorted(communities, key=lambda c: c.code):
        with in_community(session, community.id):
            figures = community_month(session, month)
        lines.append({"community": community.code, "name": community.name,
                      "issued": figures["issued"], "spent": figures["drawn"],
                      "outstanding": figures["liability"],
                      "owed_to_others": figures["owed_to_others"],
                      "owed_by_others": figures["owed_by_others"]})
    return {"month": month, "currency": "minutes", "pairs": pairs, "communities": lines}
