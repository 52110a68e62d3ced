"""Points and the partner merchants: rewards catalogue, redemptions (held, then confirmed or
refused by the merchant), balances and statements, and a merchant's orders per day. The rules
are in :mod:`api.rewards`; routes authorise, call it and answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import rewards
from api.idempotency import idempotent
from api.lifecycle import Now
from api.models import LedgerEntry, Redemption, Reward
from api.paging import Page, page_of
from api.params import MAX_ID, Id, Key, Limit, Offset, YearMonth
from api.security import CurrentUser, MerchantUser, SessionDep, VolunteerUser

router = APIRouter(prefix="/v1", tags=["points and merchants"])
IdempotencyKey = Annotated[str, Header(min_length=8, max_length=128,
                                       description="any unique string; retries reuse it")]
Month = Annotated[YearMonth | None, Query(examples=["2026-11"])]


class RewardIn(BaseModel):
    name: str = Field(min_length=1, max_length=128, examples=["免费理发一次"])
    points: int = Field(gt=0, le=1_000_000, examples=[120])


class RedeemIn(BaseModel):
    reward_id: int = Field(ge=1, le=MAX_ID)


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": 5, "merchant_id": "M003", "name": "免费理发一次", "points": 120,
        "active": True}]})
    id: int
    merchant_id: str
    name: str
    points: int
    active: bool

    @classmethod
    def of(cls, row: Reward) -> RewardOut:
        return cls.model_validate(row)


class RedemptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": 12, "volunteer_id": "V0007", "merchant_id": "M003", "reward_id": 5,
        "points": 120, "status": "pending", "created_at": "2026-11-24T03:00:00Z"}]})
    id: int
    volunteer_id: str
    merchant_id: str
    reward_id: int
    points: int
    status: str = Field(description="pending, confirmed or refused")
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Redemption) -> RedemptionOut:
        return cls.model_validate(row)


ENTRY_EXAMPLE: dict[str, Any] = {
    "at": "2026-11-23T04:00:00Z", "amount": 30, "memo": "task 41 N0031 2026-11-23",
    "transfer": "6f1c0d7e"}
ORDER_EXAMPLE: dict[str, Any] = {
    "need_id": "N0031", "service": "meal", "pickup": "11:05", "for": "张**", "lat": 22.535,
    "lon": 114.018, "volunteers": ["V0007"]}


class EntryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ENTRY_EXAMPLE]})
    at: dt.datetime
    amount: int = Field(description="points in (positive) or out (negative)")
    memo: str
    transfer: str

    @classmethod
    def of(cls, e: LedgerEntry) -> EntryOut:
        return cls(at=e.created_at, amount=e.amount, memo=e.memo, transfer=e.transfer)


STATEMENT_EXAMPLE: dict[str, Any] = {
    "account": "volunteer:V0007", "balance": 150, "month": "2026-11", "total_in": 270,
    "total_out": 120, "entries": {"items": [ENTRY_EXAMPLE], "total": 1, "limit": 100,
                                  "offset": 0}}


class StatementOut(BaseModel):
    """A points account: balance, totals in and out over the month (or all time), and one page
    of its entries in order."""

    model_config = ConfigDict(json_schema_extra={"examples": [STATEMENT_EXAMPLE]})
    account: str
    balance: int
    month: str | None
    total_in: int
    total_out: int
    entries: Page[EntryOut]

    @classmethod
    def of(cls, s: rewards.Statement, limit: int, offset: int) -> StatementOut:
        return cls(account=s.account, balance=s.balance, month=s.month, total_in=s.total_in,
                   total_out=s.total_out, entries=Page(
                       items=[EntryOut.of(e) for e in s.entries], total=s.entries_total,
                       limit=limit, offset=offset))


class SettlementOut(StatementOut):
    model_config = ConfigDict(json_schema_extra={"examples": [
        STATEMENT_EXAMPLE | {"account": "merchant:M003",
                             "confirmed_redemptions_all_time": 14}]})
    confirmed_redemptions_all_time: int


class OrderOut(BaseModel):
    """One occurrence the merchant serves; the beneficiary masked, the place rounded."""

    model_config = ConfigDict(populate_by_name=True,
                              json_schema_extra={"examples": [ORDER_EXAMPLE]})
    need_id: str
    service: str
    pickup: str = Field(description="HH:MM")
    beneficiary: str = Field(alias="for", serialization_alias="for")
    lat: float
    lon: float
    volunteers: list[str]


class OrdersOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "merchant_id": "M003", "date": "2026-11-23", "counts": {"meal": 1},
        "orders": {"items": [ORDER_EXAMPLE], "total": 1, "limit": 100, "offset": 0}}]})
    merchant_id: str
    date: dt.date
    counts: dict[str, int] = Field(description="orders per service, of the whole day")
    orders: Page[OrderOut]


@router.post("/rewards", status_code=201, response_model=RewardOut,
             summary="Add a reward to my catalogue (merchant)")
def add_reward(body: RewardIn, session: SessionDep, user: MerchantUser) -> RewardOut:
    return RewardOut.of(rewards.add_reward(session, user, body.name, body.points))


@router.get("/rewards", response_model=Page[RewardOut], summary="The rewards catalogue")
def list_rewards(session: SessionDep, user: CurrentUser, merchant_id: str | None = None,
                 limit: Limit = 100, offset: Offset = 0) -> Page[RewardOut]:
    rows, total = rewards.rewards(session, merchant_id, limit, offset)
    return Page(items=[RewardOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/redemptions", status_code=201, response_model=RedemptionOut,
             summary="Redeem points for a reward (volunteer)")
def redeem(body: RedeemIn, session: SessionDep, user: VolunteerUser,
           idempotency_key: IdempotencyKey, request: Request) -> JSONResponse:
    """The points are held at once (the balance can never go below zero, even with many
    redemptions at the same moment) and reach the merchant when it confirms."""
    return idempotent(session, user, request, idempotency_key, lambda: (
        201, RedemptionOut.of(rewards.redeem(session, user, body.reward_id))
        .model_dump(mode="json")), body)


@router.post("/redemptions/{redemption_id}/confirm", response_model=RedemptionOut,
             summary="Merchant: served, take points")
def confirm_redemption(redemption_id: Id, session: SessionDep, user: MerchantUser,
                       idempotency_key: IdempotencyKey, request: Request,
                       now: Now) -> JSONResponse:
    return idempotent(session, user, request, idempotency_key, lambda: (
        200, RedemptionOut.of(rewards.decide(session, user, redemption_id, True, now))
        .model_dump(mode="json")))


@router.post("/redemptions/{redemption_id}/refuse", response_model=RedemptionOut,
             summary="Merchant: refuse, points go back")
def refuse_redemption(redemption_id: Id, session: SessionDep, user: MerchantUser,
                      idempotency_key: IdempotencyKey, request: Request,
                      now: Now) -> JSONResponse:
    return idempotent(session, user, request, idempotency_key, lambda: (
        200, RedemptionOut.of(rewards.decide(session, user, redemption_id, False, now))
        .model_dump(mode="json")))


@router.get("/redemptions", response_model=Page[RedemptionOut],
            summary="My redemptions, newest first (volunteer or merchant; coordinators all)")
def my_redemptions(session: SessionDep, user: CurrentUser, limit: Limit = 100,
                   offset: Offset = 0) -> Page[RedemptionOut]:
    rows, total = rewards.redemptions(session, user, limit, offset)
    return Page(items=[RedemptionOut.of(r) for r in rows], total=total, limit=limit,
                offset=offset)


@router.get("/me/statement", response_model=StatementOut,
            summary="My points: balance and every movement")
def my_statement(session: SessionDep, user: CurrentUser, month: Month = None,
                 limit: Limit = 100, offset: Offset = 0) -> StatementOut:
    return StatementOut.of(rewards.my_statement(session, user, month, limit, offset),
                           limit, offset)


@router.get("/merchants/{merchant_id}/settlement", response_model=SettlementOut,
            summary="Monthly settlement: confirmed redemptions and points taken")
def settlement(merchant_id: Key, session: SessionDep, user: CurrentUser,
               month: Annotated[YearMonth, Query(examples=["2026-11"])],
               limit: Limit = 100, offset: Offset = 0) -> SettlementOut:
    found = rewards.settlement(session, user, merchant_id, month, limit, offset)
    assert found.confirmed_redemptions_all_time is not None  # a settlement counts them
    return SettlementOut(**StatementOut.of(found, limit, offset).model_dump(),
                         confirmed_redemptions_all_time=found.confirmed_redemptions_all_time)


@router.get("/merchant/orders", response_model=OrdersOut,
            summary="Merchant: the occurrences I serve, per day")
def merchant_orders(session: SessionDep, user: MerchantUser,
                    date: Annotated[dt.date, Query(examples=["2026-11-23"])],
                    limit: Limit = 100, offset: Offset = 0) -> OrdersOut:
    found = rewards.orders(session, user, date)
    counts: dict[str, int] = {}
    for order in found:
        counts[order.service] = counts.get(order.service, 0) + 1
    assert user.merchant_id is not None  # a merchant account always has one
    return OrdersOut(merchant_id=user.merchant_id, date=date, counts=counts, orders=page_of(
        [OrderOut(need_id=o.need_id, service=o.service, pickup=o.pickup,
                  beneficiary=o.beneficiary, lat=o.lat, lon=o.lon, volunteers=o.volunteers)
         for o in found], limit, offset))
