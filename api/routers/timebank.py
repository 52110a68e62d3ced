"""The time bank (时间银行): members without a login, family links with recorded consent,
transfers of minutes, service requests paid from a time account, statements and the
community's monthly figures. The rules live in :mod:`api.timebank`; routes authorise and
answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from api import timebank
from api.community import audit
from api.idempotency import idempotent
from api.lifecycle import Now
from api.models import FamilyLink, MemberRow
from api.params import Id, Key
from api.security import (
    Caller,
    Coordinator,
    Role,
    SessionDep,
    SettingsDep,
    VolunteerUser,
    require,
)
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


class ConsentIn(BaseModel):
    note: str = Field(min_length=2, max_length=500,
                      examples=["王阿姨本人到居委会签了同意书"])


class GiveIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=ID_MAX)
    minutes: int = Field(gt=0, le=100_000)


class RequestIn(BaseModel):
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


def member_view(row: MemberRow) -> dict[str, Any]:
    return {"member_id": row.member_id, "name": row.name, "phone": row.phone,
            "address": row.address, "lat": row.lat, "lon": row.lon}


def link_view(row: FamilyLink) -> dict[str, Any]:
    return {"id": row.id, "volunteer_id": row.volunteer_id, "member_id": row.member_id,
            "relation": row.relation, "consented": row.consent_at is not None,
            "consent_at": row.consent_at.isoformat() if row.consent_at else None,
            "consent_note": row.consent_note}


@router.post("/timebank/members", status_code=201,
             summary="Register a resident with a time account and no login (coordinator)")
def add_member(body: MemberIn, session: SessionDep, user: Coordinator) -> dict[str, Any]:
    return member_view(timebank.add_member(session, user, body.model_dump()))


@router.get("/timebank/members", summary="Residents with a time account (coordinator)")
def list_members(session: SessionDep, user: Coordinator) -> list[dict[str, Any]]:
    rows = session.scalars(select(MemberRow).order_by(MemberRow.member_id).limit(1000)).all()
    audit(session, user, "read", "members")
    session.commit()
    return [member_view(r) for r in rows]


@router.post("/me/family", status_code=201,
             summary="Link a family member (a coordinator then records her consent)")
def link_family(body: LinkIn, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    return link_view(timebank.link_family(session, user, body.member_id, body.relation))


@router.get("/me/family", summary="My family members and whether their consent is recorded")
def my_family(session: SessionDep, user: VolunteerUser) -> list[dict[str, Any]]:
    rows = session.scalars(select(FamilyLink).filter_by(volunteer_id=user.volunteer_id)
                           .order_by(FamilyLink.id)).all()
    return [link_view(r) for r in rows]


@router.post("/timebank/links/{link_id}/consent",
             summary="Record a family member's consent to a link (coordinator)")
def consent(link_id: Id, body: ConsentIn, session: SessionDep,
            user: Coordinator, now: Now) -> dict[str, Any]:
    return link_view(timebank.record_consent(session, user, link_id, body.note, now))


@router.post("/me/timebank/transfers", status_code=201,
             summary="Give minutes of my time account to a family member")
def give(body: GiveIn, session: SessionDep, user: VolunteerUser, now: Now,
         idempotency_key: IdempotencyKey, request: Request) -> Any:
    return idempotent(session, user, request, idempotency_key, lambda: (
        201, timebank.give(session, user, body.member_id, body.minutes, now)), body)


@router.post("/timebank/requests", status_code=201,
             summary="Request a service for a member, paid from a time account")
def file_request(body: RequestIn, session: SessionDep, user: Filer, settings: SettingsDep,
                 now: Now, idempotency_key: IdempotencyKey, request: Request) -> Any:
    """A volunteer files for a family member whose consent is recorded (paid by the member, or
    by the volunteer herself); a coordinator files for any member, and only she may mark a
    request red. It becomes a need of the next schedule of its week (or of every week)."""
    return idempotent(session, user, request, idempotency_key, lambda: (
        201, timebank.file_request(session, user, body.model_dump(),
                                   timebank.TimeRules.of(settings), now)), body)


@router.get("/me/timebank/statement", summary="My time account: balance and movements by month")
def my_statement(session: SessionDep, user: VolunteerUser,
                 month: MonthQuery = None) -> dict[str, Any]:
    assert user.volunteer_id is not None
    body = timebank.statement(session, timebank.VOLUNTEER, user.volunteer_id,
                              timebank.parse_month(month))
    session.commit()
    return body


@router.get("/timebank/members/{member_id}/statement",
            summary="A member's time account (coordinator, or her linked family)")
def member_statement(member_id: Key, session: SessionDep, user: Filer,
                     month: MonthQuery = None) -> dict[str, Any]:
    timebank.may_read_member(session, user, member_id)
    body = timebank.statement(session, timebank.MEMBER, member_id,
                              timebank.parse_month(month))
    session.commit()
    return body


@router.get("/timebank/report/{month}",
            summary="The community's minutes issued, drawn and still owed, for a month")
def community_report(month: Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                                examples=["2026-11"])],
                     session: SessionDep, user: Coordinator) -> dict[str, Any]:
    timebank.parse_month(month)
    return {"month": month} | timebank.community_month(session, month)
