"""The time bank (时间银行): members without a login, family links with recorded consent,
transfers of minutes, service requests paid from a time account, statements and the
community's monthly figures. The rules live in :mod:`api.timebank`; routes authorise and
answer."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api import timebank
from api.idempotency import idempotent
from api.lifecycle import Now
from api.models import FamilyLink
from api.paging import Page
from api.params import Id, Key, Limit, Offset
from api.security import (
    Caller,
    Coordinator,
    Role,
    SessionDep,
    SettingsDep,
    VolunteerUser,
    require,
)
from api.tenancy import NO_COMMUNITY, CommunityScope, Scope, communities_of
from matcher.domain import ADDRESS_MAX, ID_MAX, NAME_MAX, PHONE_MAX

router = APIRouter(prefix="/v1", tags=["time bank"])
IdempotencyKey = Annotated[str, Header(min_length=8, max_length=128,
                                       description="a fresh random key per action; a retry "
                                       "sends the same key and moves nothing twice")]
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                         examples=["2026-11"])]
Filer = Annotated[Caller, Depends(require(Role.COORDINATOR, Role.VOLUNTEER))]


class MemberIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=ID_MAX, pattern=r"^[A-Za-z0-9_-]+$",
                           examples=["F001"])
    name: str = Field(min_length=1, max_length=NAME_MAX, examples=["王阿姨"])
    phone: str = Field("", max_length=PHONE_MAX)
    address: str = Field("", max_length=ADDRESS_MAX)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class LinkIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=ID_MAX)
    relation: str = Field(min_length=1, max_length=32, examples=["母亲"])
    community: str | None = Field(
        None, max_length=40, examples=["jingtian"],
        description="the code of the member's community when she lives in another community "
        "of the same city (today: of the same district); her coordinator records the consent")


class ConsentIn(BaseModel):
    note: str = Field(min_length=2, max_length=500,
                      examples=["王阿姨本人到居委会签了同意书"])


class GiveIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=ID_MAX)
    minutes: int = Field(gt=0, le=100_000)


class ServiceRequestIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=ID_MAX)
    kind: Literal["elderly", "childcare"] = "elderly"
    service: str = Field(examples=["companionship"])
    days: str = Field(examples=["tue"])
    window: str = Field(examples=["09:00-11:00"])
    duration_min: int
    skills: str = ""
    volunteers_needed: int = 1
    priority: Literal["red", "yellow", "blue"] = "blue"
    week: str | None = Field(None, examples=["2026-W49"],
                             description="a one-off need of this ISO week; none: every week")
    paid_by: Literal["member", "me"] = Field(
        "member", description="the member's own time account, or the filing volunteer's")


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "member_id": "F001", "name": "王阿姨", "phone": "13800000001",
        "address": "景田北 12 栋 301", "lat": 22.5352, "lon": 114.0183}]})
    member_id: str
    name: str
    phone: str
    address: str
    lat: float
    lon: float


class LinkOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "volunteer_id": "V0007", "member_id": "F001", "relation": "母亲",
        "consented": True, "consent_at": "2026-11-20T02:00:00Z",
        "consent_note": "王阿姨本人到居委会签了同意书"}]})
    id: int
    volunteer_id: str
    member_id: str
    relation: str
    consented: bool
    consent_at: dt.datetime | None
    consent_note: str | None

    @classmethod
    def of(cls, row: FamilyLink) -> LinkOut:
        return cls(id=row.id, volunteer_id=row.volunteer_id, member_id=row.member_id,
                   relation=row.relation, consented=row.consent_at is not None,
                   consent_at=row.consent_at, consent_note=row.consent_note)


class GiftOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "transfer": "6f1c0d7e", "minutes": 60, "member_id": "F001", "balance": 240}]})
    transfer: str
    minutes: int
    member_id: str
    balance: int = Field(description="my time account's balance after the gift")


class ServiceRequestOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "need_id": "TB3F9A0C12DE", "member_id": "F001", "week": "2026-W49",
        "paid_by": "member:F001", "minutes_per_week": 120, "priority": "blue"}]})
    need_id: str
    member_id: str
    week: str | None
    paid_by: str
    minutes_per_week: int
    priority: str


class MonthTotals(BaseModel):
    month: str
    earned: int
    bonus: int
    transferred_in: int
    transferred_out: int
    drawn: int


class TimeEntryOut(BaseModel):
    at: dt.datetime
    minutes: int = Field(description="in (positive) or out (negative)")
    kind: str = Field(description="earned, bonus, transferred_in, transferred_out or drawn")
    memo: str
    transfer: str


class TimeStatementOut(BaseModel):
    """A time account: balance, totals by month and one page of the entries (of ``month``
    only, if asked)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account": "volunteer:V0007", "currency": "minutes", "balance": 240, "floor": 0,
        "month": "2026-11",
        "months": [{"month": "2026-11", "earned": 300, "bonus": 0, "transferred_in": 0,
                    "transferred_out": 60, "drawn": 0}],
        "entries": {"items": [{"at": "2026-11-23T12:00:00+08:00", "minutes": 30,
                               "kind": "earned", "memo": "task 41 N0031 2026-11-23",
                               "transfer": "6f1c0d7e"}],
                    "total": 1, "limit": 100, "offset": 0}}]})
    account: str
    currency: str
    balance: int
    floor: int
    month: str | None
    months: list[MonthTotals]
    entries: Page[TimeEntryOut]


class CommunityMonthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "month": "2026-11", "issued": 12000, "drawn": 900, "subsidised": 60,
        "liability": 30500, "owed": 120}]})
    month: str
    issued: int
    drawn: int
    subsidised: int
    liability: int = Field(description="minutes people hold and may still draw")
    owed: int = Field(description="minutes members owe (overdrafts)")
    owed_to_others: int = Field(0, description="minutes the community owes other communities "
                                "(hours their members received from here)")
    owed_by_others: int = Field(0, description="minutes other communities owe the community")


class TimeSettlementPairOut(BaseModel):
    from_: str = Field(alias="from", description="a community's code (the lower of the two)")
    to: str
    minutes_from_to: int = Field(description="minutes that went from the first to the "
                                 "second in the month")
    minutes_to_from: int
    net: int = Field(description="minutes_from_to minus minutes_to_from")
    owed_at_end: int = Field(description="what the first owes the second at the month's end "
                             "(below zero: the second owes the first)")
    points_from_to: int = Field(0, description="points the first paid in the month to "
                                "volunteers of the second for work done in the first")
    points_to_from: int = Field(0)
    points_owed_at_end: int = Field(0, description="points the first owes the second at the "
                                    "month's end (below zero: the second owes the first)")
    model_config = ConfigDict(populate_by_name=True)


class TimeSettlementCommunityOut(BaseModel):
    community: str
    name: str
    issued: int = Field(description="minutes issued for confirmed service in the month")
    spent: int = Field(description="minutes drawn by requests in the month")
    outstanding: int = Field(description="minutes people hold at the month's end")
    owed_to_others: int
    owed_by_others: int


class TimeSettlementOut(BaseModel):
    """The month's inter-community settlement of the time bank (通存通兑)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "month": "2026-11", "currency": "minutes",
        "pairs": [{"from": "jiatian", "to": "yicun", "minutes_from_to": 120,
                   "minutes_to_from": 30, "net": 90, "owed_at_end": 90,
                   "points_from_to": 60, "points_to_from": 0, "points_owed_at_end": 60}],
        "communities": [{"community": "jiatian", "name": "甲田社区", "issued": 600,
                         "spent": 30, "outstanding": 450, "owed_to_others": 90,
                         "owed_by_others": 0}]}]})
    month: str
    currency: str
    pairs: list[TimeSettlementPairOut]
    communities: list[TimeSettlementCommunityOut]


@router.post("/timebank/members", status_code=201, response_model=MemberOut,
             summary="Register a resident with a time account and no login (coordinator)")
def add_member(body: MemberIn, session: SessionDep, user: Coordinator) -> MemberOut:
    return MemberOut.model_validate(timebank.add_member(session, user, body.model_dump()))


@router.get("/timebank/members", response_model=Page[MemberOut],
            summary="Residents with a time account (coordinator)")
def list_members(session: SessionDep, user: Coordinator, limit: Limit = 100,
                 offset: Offset = 0) -> Page[MemberOut]:
    rows, total = timebank.members(session, user, limit, offset)
    return Page(items=[MemberOut.model_validate(r) for r in rows], total=total, limit=limit,
                offset=offset)


@router.post("/me/family", status_code=201, response_model=LinkOut,
             summary="Link a family member (a coordinator then records her consent)")
def link_family(body: LinkIn, session: SessionDep, user: VolunteerUser) -> LinkOut:
    return LinkOut.of(timebank.link_family(session, user, body.member_id, body.relation,
                                           body.community))


@router.get("/me/family", response_model=Page[LinkOut],
            summary="My family members and whether their consent is recorded")
def my_family(session: SessionDep, user: VolunteerUser, limit: Limit = 100,
              offset: Offset = 0) -> Page[LinkOut]:
    rows, total = timebank.family(session, user, limit, offset)
    return Page(items=[LinkOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/timebank/links/{link_id}/consent", response_model=LinkOut,
             summary="Record a family member's consent to a link (coordinator)")
def consent(link_id: Id, body: ConsentIn, session: SessionDep,
            user: Coordinator, now: Now) -> LinkOut:
    return LinkOut.of(timebank.record_consent(session, user, link_id, body.note, now))


@router.post("/me/timebank/transfers", status_code=201, response_model=GiftOut,
             summary="Give minutes of my time account to a family member")
def give(body: GiveIn, session: SessionDep, user: VolunteerUser, now: Now,
         idempotency_key: IdempotencyKey, request: Request) -> JSONResponse:
    return idempotent(session, user, request, idempotency_key, lambda: (
        201, GiftOut(**timebank.give(session, user, body.member_id, body.minutes, now))
        .model_dump(mode="json")), body)


@router.post("/timebank/requests", status_code=201, response_model=ServiceRequestOut,
             summary="Request a service for a member, paid from a time account")
def file_request(body: ServiceRequestIn, session: SessionDep, user: Filer, settings: SettingsDep,
                 now: Now, idempotency_key: IdempotencyKey, request: Request) -> JSONResponse:
    """A volunteer files for a family member whose consent is recorded (paid by the member, or
    by the volunteer herself); a coordinator files for any member, and only she may mark a
    request red. It becomes a need of the next schedule of its week (or of every week)."""
    return idempotent(session, user, request, idempotency_key, lambda: (
        201, ServiceRequestOut(**timebank.file_request(session, user, body.model_dump(),
                                                timebank.TimeRules.of(settings), now))
        .model_dump(mode="json")), body)


def _statement(found: dict[str, Any], limit: int, offset: int) -> TimeStatementOut:
    entries = found["entries"]
    return TimeStatementOut(**{k: v for k, v in found.items() if k != "entries"},
                            entries=Page(items=entries[offset:offset + limit],
                                         total=len(entries), limit=limit, offset=offset))


@router.get("/me/timebank/statement", response_model=TimeStatementOut,
            summary="My time account: balance and movements by month")
def my_statement(session: SessionDep, user: VolunteerUser, month: MonthQuery = None,
                 limit: Limit = 100, offset: Offset = 0) -> TimeStatementOut:
    assert user.volunteer_id is not None
    return _statement(timebank.account_statement(session, timebank.VOLUNTEER,
                                                 user.volunteer_id, month), limit, offset)


@router.get("/timebank/members/{member_id}/statement", response_model=TimeStatementOut,
            summary="A member's time account (coordinator, or her linked family)")
def member_statement(member_id: Key, session: SessionDep, user: Filer,
                     month: MonthQuery = None, limit: Limit = 100,
                     offset: Offset = 0) -> TimeStatementOut:
    timebank.may_read_member(session, user, member_id)
    return _statement(timebank.account_statement(session, timebank.MEMBER, member_id, month),
                      limit, offset)


@router.get("/timebank/report/{month}", response_model=CommunityMonthOut,
            summary="The community's minutes issued, drawn and still owed, for a month")
def community_report(month: Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                                examples=["2026-11"])],
                     session: SessionDep, user: Coordinator) -> CommunityMonthOut:
    timebank.parse_month(month)
    return CommunityMonthOut(month=month, **timebank.community_month(session, month))


SettlementMonth = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]
SettlementReader = Annotated[Caller, Depends(require(Role.COORDINATOR, Role.STREET_ADMIN,
                                                     Role.DISTRICT_ADMIN))]


def _settlement(session: Session, user: Caller, scope: CommunityScope,
                month: str) -> dict[str, Any]:
    """A coordinator reads her community's lines; an admin those of every community of hers,
    or of the one her header names."""
    timebank.parse_month(month)
    communities = communities_of(session, user)
    if scope.id != NO_COMMUNITY:
        communities = [c for c in communities if c.id == scope.id]
    found = timebank.settlement(session, communities, month)
    session.commit()
    return found


@router.get("/timebank/settlement", response_model=TimeSettlementOut, response_model_by_alias=True,
            summary="Minutes that crossed between communities in a month, and what each owes")
def settlement(month: SettlementMonth, session: SessionDep, user: SettlementReader,
               scope: Scope) -> TimeSettlementOut:
    """Hours earned in one community and given to a member of another (of the same city) pass
    through both communities' clearing accounts: per pair of communities, the minutes each way
    and the net; per community, minutes issued, spent and outstanding."""
    return TimeSettlementOut.model_validate(_settlement(session, user, scope, month))


@router.get("/timebank/settlement.csv", response_class=Response,
            summary="The month's settlement between communities as CSV",
            responses={200: {"content": {"text/csv": {}}}})
def settlement_csv(month: SettlementMonth, session: SessionDep, user: SettlementReader,
                   scope: Scope, table: Annotated[Literal["pairs", "communities"], Query(
                       description="one row per pair of communities, or per community")]
                   = "pairs") -> Response:
    found = _settlement(session, user, scope, month)
    columns = {"pairs": list(TimeSettlementPairOut.model_fields),
               "communities": list(TimeSettlementCommunityOut.model_fields)}[table]
    columns = ["from" if c == "from_" else c for c in columns]
    frame = pd.DataFrame(found[table], columns=columns)
    name = re.sub(r"[^0-9-]", "", month)
    # UTF-8 with a byte-order mark, as the other reports: Excel on Chinese Windows opens it.
    return Response(frame.to_csv(index=False).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="timebank-settlement-{name}-{table}.csv"'})
