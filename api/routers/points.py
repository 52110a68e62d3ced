"""Points and the partner merchants: rewards catalogue, redemptions (held, then confirmed or
refused by the merchant), balances and statements, and a merchant's orders per day."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.community import audit, coarse, masked, notify
from api.errors import Problem
from api.idempotency import idempotent
from api.ledger import ESCROW, account, transfer
from api.models import (
    LedgerEntry,
    MerchantRow,
    Redemption,
    Reward,
    TaskRow,
)
from api.params import MAX_ID, Id, Key, YearMonth
from api.replanning import STANDING, published_tasks
from api.security import Caller, CurrentUser, MerchantUser, Role, SessionDep, VolunteerUser
from matcher.domain import format_hhmm

router = APIRouter(prefix="/v1", tags=["points and merchants"])
IdempotencyKey = Annotated[str, Header(min_length=8, max_length=128,
                                       description="any unique string; retries reuse it")]


class RewardIn(BaseModel):
    name: str = Field(min_length=1, max_length=128, examples=["免费理发一次"])
    points: int = Field(gt=0, le=1_000_000, examples=[120])


class RedeemIn(BaseModel):
    reward_id: int = Field(ge=1, le=MAX_ID)


def reward_view(r: Reward) -> dict[str, Any]:
    return {"id": r.id, "merchant_id": r.merchant_id, "name": r.name, "points": r.points,
            "active": r.active}


def redemption_view(r: Redemption) -> dict[str, Any]:
    return {"id": r.id, "volunteer_id": r.volunteer_id, "merchant_id": r.merchant_id,
            "reward_id": r.reward_id, "points": r.points, "status": r.status,
            "created_at": r.created_at.isoformat()}


@router.post("/rewards", status_code=201, summary="Add a reward to my catalogue (merchant)")
def add_reward(body: RewardIn, session: SessionDep, user: MerchantUser) -> dict[str, Any]:
    assert user.merchant_id is not None
    reward = Reward(merchant_id=user.merchant_id, name=body.name, points=body.points)
    session.add(reward)
    audit(session, user, "create", f"reward:{body.name}")
    session.commit()
    return reward_view(reward)


@router.get("/rewards", summary="The rewards catalogue")
def list_rewards(session: SessionDep, user: CurrentUser,
                 merchant_id: str | None = None) -> list[dict[str, Any]]:
    query = select(Reward).where(Reward.active.is_(True)).order_by(Reward.id)
    if merchant_id:
        query = query.where(Reward.merchant_id == merchant_id)
    return [reward_view(r) for r in session.scalars(query)]


@router.post("/redemptions", status_code=201, summary="Redeem points for a reward (volunteer)")
def redeem(body: RedeemIn, session: SessionDep, user: VolunteerUser,
           idempotency_key: IdempotencyKey, request: Request) -> Any:
    """The points are held at once (the balance can never go below zero, even with many
    redemptions at the same moment) and reach the merchant when it confirms."""
    def work() -> tuple[int, dict[str, Any]]:
        reward = session.get(Reward, body.reward_id)
        if reward is None or not reward.active:
            raise Problem(404, f"no reward {body.reward_id}")
        assert user.volunteer_id is not None
        transfer(session, ("volunteer", user.volunteer_id), ESCROW, reward.points,
                 f"hold for {reward.name} at {reward.merchant_id}")
        redemption = Redemption(volunteer_id=user.volunteer_id, merchant_id=reward.merchant_id,
                                reward_id=reward.id, points=reward.points)
        session.add(redemption)
        session.flush()
        notify(session, f"merchant:{reward.merchant_id}", "redemption.requested",
               {"redemption_id": redemption.id, "reward": reward.name})
        audit(session, user, "redeem", f"redemption:{redemption.id}")
        return 201, redemption_view(redemption)

    return idempotent(session, user, request, idempotency_key, work, body)


def _decide(session: Any, user: Caller, request: Request, redemption_id: int, accept: bool,
            key: str) -> Any:
    def work() -> tuple[int, dict[str, Any]]:
        redemption = session.get(Redemption, redemption_id, with_for_update=True)
        if redemption is None or redemption.merchant_id != user.merchant_id:
            raise Problem(404, f"you have no redemption {redemption_id}")
        if redemption.status != "pending":
            raise Problem(409, f"redemption {redemption_id} is already {redemption.status}")
        target = ("merchant", redemption.merchant_id) if accept else \
            ("volunteer", redemption.volunteer_id)
        transfer(session, ESCROW, target, redemption.points,
                 f"redemption {redemption_id} {'confirmed' if accept else 'refused'}")
        redemption.status = "confirmed" if accept else "refused"
        redemption.decided_at = dt.datetime.now(dt.UTC)
        notify(session, f"volunteer:{redemption.volunteer_id}", f"redemption.{redemption.status}",
               {"redemption_id": redemption_id})
        audit(session, user, redemption.status, f"redemption:{redemption_id}")
        return 200, redemption_view(redemption)

    return idempotent(session, user, request, key, work)


@router.post("/redemptions/{redemption_id}/confirm", summary="Merchant: served, take points")
def confirm_redemption(redemption_id: Id, session: SessionDep, user: MerchantUser,
                       idempotency_key: IdempotencyKey, request: Request) -> Any:
    return _decide(session, user, request, redemption_id, True, idempotency_key)


@router.post("/redemptions/{redemption_id}/refuse", summary="Merchant: refuse, points go back")
def refuse_redemption(redemption_id: Id, session: SessionDep, user: MerchantUser,
                      idempotency_key: IdempotencyKey, request: Request) -> Any:
    return _decide(session, user, request, redemption_id, False, idempotency_key)


@router.get("/redemptions", summary="My redemptions (volunteer or merchant)")
def my_redemptions(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    query = select(Redemption).order_by(Redemption.id.desc())
    if user.role == Role.VOLUNTEER.value:
        query = query.where(Redemption.volunteer_id == user.volunteer_id)
    elif user.role == Role.MERCHANT.value:
        query = query.where(Redemption.merchant_id == user.merchant_id)
    elif user.role != Role.COORDINATOR.value:
        raise Problem(403, "only volunteers, merchants and coordinators see redemptions")
    return [redemption_view(r) for r in session.scalars(query.limit(500))]


def _statement(session: Any, kind: str, owner: str, month: str | None) -> dict[str, Any]:
    acct = account(session, kind, owner)
    query = select(LedgerEntry).where(LedgerEntry.account_id == acct.id)
    if month:
        first = dt.date.fromisoformat(f"{month}-01")  # a YearMonth: a real month
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        start = dt.datetime.combine(first, dt.time(), dt.UTC)
        end = dt.datetime.combine(nxt, dt.time(), dt.UTC)
        query = query.where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
    entries = session.scalars(query.order_by(LedgerEntry.id)).all()
    session.commit()
    return {"account": f"{kind}:{owner}", "balance": acct.balance,
            "month": month, "total_in": sum(e.amount for e in entries if e.amount > 0),
            "total_out": -sum(e.amount for e in entries if e.amount < 0),
            "entries": [{"at": e.created_at.isoformat(), "amount": e.amount, "memo": e.memo,
                         "transfer": e.transfer} for e in entries]}


@router.get("/me/statement", summary="My points: balance and every movement")
def my_statement(session: SessionDep, user: CurrentUser,
                 month: Annotated[YearMonth | None, Query(examples=["2026-11"])] = None
                 ) -> dict[str, Any]:
    if user.role == Role.VOLUNTEER.value and user.volunteer_id:
        return _statement(session, "volunteer", user.volunteer_id, month)
    if user.role == Role.MERCHANT.value and user.merchant_id:
        return _statement(session, "merchant", user.merchant_id, month)
    raise Problem(403, "only volunteers and merchants have a points account")


@router.get("/merchants/{merchant_id}/settlement",
            summary="Monthly settlement: confirmed redemptions and points taken")
def settlement(merchant_id: Key, session: SessionDep, user: CurrentUser,
               month: Annotated[YearMonth, Query(examples=["2026-11"])]) -> dict[str, Any]:
    if user.role != Role.COORDINATOR.value and user.merchant_id != merchant_id:
        raise Problem(403, "a merchant sees only its own settlement")
    if session.get(MerchantRow, merchant_id) is None:
        raise Problem(404, f"no merchant {merchant_id!r}")
    statement = _statement(session, "merchant", merchant_id, month)
    count = session.scalar(select(func.count()).select_from(Redemption).where(
        Redemption.merchant_id == merchant_id, Redemption.status == "confirmed")) or 0
    return statement | {"confirmed_redemptions_all_time": count}


@router.get("/merchant/orders", summary="Merchant: the occurrences I serve, per day")
def merchant_orders(session: SessionDep, user: MerchantUser,
                    date: Annotated[dt.date, Query(examples=["2026-11-23"])]
                    ) -> dict[str, Any]:
    rows = session.execute(published_tasks(
        TaskRow.merchant_id == user.merchant_id, TaskRow.date == date,
        TaskRow.state.in_(STANDING)).order_by(TaskRow.start)).all()
    orders: dict[tuple[str, str], dict[str, Any]] = {}
    for task, need in rows:  # one order per occurrence, however many volunteers carry it
        orders.setdefault((need.need_id, task.day), {
            "need_id": need.need_id, "service": need.merchant_service,
            "pickup": format_hhmm(task.start), "for": masked(need.beneficiary),
            "lat": coarse(need.lat), "lon": coarse(need.lon), "volunteers": []})
        orders[(need.need_id, task.day)]["volunteers"].append(task.volunteer_id)
    counts: dict[str, int] = {}
    for order in orders.values():
        counts[order["service"]] = counts.get(order["service"], 0) + 1
    return {"merchant_id": user.merchant_id, "date": date.isoformat(), "counts": counts,
            "orders": list(orders.values())}
