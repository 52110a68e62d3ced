"""Points and the partner merchants, as a service the routers call: the rewards catalogue,
redeeming (points held at once, paid to the merchant when it confirms, returned when it
refuses), statements and settlements a page at a time, and a merchant's orders of a day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.community import audit, coarse, masked, notify
from api.errors import Problem, label
from api.ledger import ESCROW, account, transfer
from api.models import LedgerEntry, MerchantRow, Redemption, Reward, TaskRow
from api.paging import page_rows
from api.replanning import STANDING, published_tasks
from api.security import Caller, Role
from matcher.domain import format_hhmm
from matcher.i18n import _


def add_reward(session: Session, user: Caller, name: str, points: int) -> Reward:
    """A merchant adds a reward to its own catalogue."""
    assert user.merchant_id is not None  # a merchant account always has one
    reward = Reward(merchant_id=user.merchant_id, name=name, points=points)
    session.add(reward)
    audit(session, user, "create", f"reward:{name}")
    session.commit()
    return reward


def rewards(session: Session, merchant_id: str | None, limit: int,
            offset: int) -> tuple[list[Reward], int]:
    """One page of the active rewards (of one merchant if given), oldest first."""
    query = select(Reward).where(Reward.active.is_(True)).order_by(Reward.id)
    if merchant_id:
        query = query.where(Reward.merchant_id == merchant_id)
    return page_rows(session, query, limit, offset)


def redeem(session: Session, user: Caller, reward_id: int) -> Redemption:
    """Hold the reward's points from the volunteer at once (the balance can never go below
    zero, even with many redemptions at the same moment). The caller commits (inside its
    idempotency record)."""
    reward = session.get(Reward, reward_id)
    if reward is None or not reward.active:
        raise Problem(404, _("no reward {id}").format(id=reward_id))
    assert user.volunteer_id is not None  # a volunteer account always has one
    transfer(session, ("volunteer", user.volunteer_id), ESCROW, reward.points,
             f"hold for {reward.name} at {reward.merchant_id}")
    redemption = Redemption(volunteer_id=user.volunteer_id, merchant_id=reward.merchant_id,
                            reward_id=reward.id, points=reward.points)
    session.add(redemption)
    session.flush()
    notify(session, f"merchant:{reward.merchant_id}", "redemption.requested",
           {"redemption_id": redemption.id, "reward": reward.name})
    audit(session, user, "redeem", f"redemption:{redemption.id}")
    return redemption


def decide(session: Session, user: Caller, redemption_id: int, accept: bool,
           now: dt.datetime | None = None) -> Redemption:
    """The merchant confirms (the held points become its own) or refuses (they go back), at
    ``now`` on the community's clock (its statements and the district report count the
    points in that week and month; default: the real time). The caller commits (inside its
    idempotency record)."""
    redemption = session.get(Redemption, redemption_id, with_for_update=True)
    if redemption is None or redemption.merchant_id != user.merchant_id:
        raise Problem(404, _("you have no redemption {id}").format(id=redemption_id))
    if redemption.status != "pending":
        raise Problem(409, _("redemption {id} is already {status}").format(
            id=redemption_id, status=label(redemption.status)), code="redemption_decided")
    target = ("merchant", redemption.merchant_id) if accept else \
        ("volunteer", redemption.volunteer_id)
    transfer(session, ESCROW, target, redemption.points,
             f"redemption {redemption_id} {'confirmed' if accept else 'refused'}", at=now)
    redemption.status = "confirmed" if accept else "refused"
    redemption.decided_at = now or dt.datetime.now(dt.UTC)
    notify(session, f"volunteer:{redemption.volunteer_id}", f"redemption.{redemption.status}",
           {"redemption_id": redemption_id})
    audit(session, user, redemption.status, f"redemption:{redemption_id}")
    return redemption


def redemptions(session: Session, user: Caller, limit: int,
                offset: int) -> tuple[list[Redemption], int]:
    """One page of the caller's redemptions, newest first: a volunteer's own, a merchant's
    own, or every one for a coordinator."""
    query = select(Redemption).order_by(Redemption.id.desc())
    if user.role == Role.VOLUNTEER.value:
        query = query.where(Redemption.volunteer_id == user.volunteer_id)
    elif user.role == Role.MERCHANT.value:
        query = query.where(Redemption.merchant_id == user.merchant_id)
    elif not user.reads_all:
        raise Problem(403, _("only volunteers, merchants and coordinators see redemptions"))
    return page_rows(session, query, limit, offset)


@dataclass
class Statement:
    """A points account: its balance, the totals of the month (or of all time) and one page
    of its entries."""

    account: str
    balance: int
    month: str | None
    total_in: int
    total_out: int
    entries: list[LedgerEntry]
    entries_total: int
    confirmed_redemptions_all_time: int | None = field(default=None)


def _month(month: str) -> tuple[dt.datetime, dt.datetime]:
    first = dt.date.fromisoformat(f"{month}-01")  # a YearMonth: a real month
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return (dt.datetime.combine(first, dt.time(), dt.UTC),
            dt.datetime.combine(nxt, dt.time(), dt.UTC))


def statement(session: Session, kind: str, owner: str, month: str | None, limit: int,
              offset: int) -> Statement:
    """The account's balance, totals in and out over the month (or all time) and one page of
    its entries in order."""
    acct = account(session, kind, owner)
    where = [LedgerEntry.account_id == acct.id]
    if month:
        start, end = _month(month)
        where += [LedgerEntry.created_at >= start, LedgerEntry.created_at < end]
    total_in, total_out = session.execute(select(
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.amount > 0), 0),
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.amount < 0), 0))
        .where(*where)).one()
    entries, count = page_rows(session, select(LedgerEntry).where(*where)
                               .order_by(LedgerEntry.id), limit, offset)
    session.commit()  # the account may have been created on first use
    return Statement(f"{kind}:{owner}", acct.balance, month, int(total_in), -int(total_out),
                     entries, count)


def my_statement(session: Session, user: Caller, month: str | None, limit: int,
                 offset: int) -> Statement:
    """The caller's own points: a volunteer's or a merchant's."""
    if user.role == Role.VOLUNTEER.value and user.volunteer_id:
        return statement(session, "volunteer", user.volunteer_id, month, limit, offset)
    if user.role == Role.MERCHANT.value and user.merchant_id:
        return statement(session, "merchant", user.merchant_id, month, limit, offset)
    raise Problem(403, _("only volunteers and merchants have a points account"))


def settlement(session: Session, user: Caller, merchant_id: str, month: str, limit: int,
               offset: int) -> Statement:
    """A merchant's month: its statement and how many redemptions it confirmed in all."""
    # Another community's shop is unknown here (404), not someone else's (403).
    if session.get(MerchantRow, merchant_id) is None:
        raise Problem(404, _("no merchant {id}").format(id=repr(merchant_id)))
    if not user.reads_all and user.merchant_id != merchant_id:
        raise Problem(403, _("a merchant sees only its own settlement"))
    found = statement(session, "merchant", merchant_id, month, limit, offset)
    found.confirmed_redemptions_all_time = session.scalar(
        select(func.count()).select_from(Redemption).where(
            Redemption.merchant_id == merchant_id, Redemption.status == "confirmed")) or 0
    return found


@dataclass
class Order:
    """One occurrence a merchant serves, however many volunteers carry it."""

    need_id: str
    service: str
    pickup: str
    beneficiary: str  # masked
    lat: float  # rounded to ~100 m
    lon: float
    volunteers: list[str] = field(default_factory=list)


def orders(session: Session, user: Caller, date: dt.date) -> list[Order]:
    """The merchant's orders of ``date`` in time order (names masked, places rounded)."""
    rows = session.execute(published_tasks(
        TaskRow.merchant_id == user.merchant_id, TaskRow.date == date,
        TaskRow.state.in_(STANDING)).order_by(TaskRow.start)).all()
    found: dict[tuple[str, str], Order] = {}
    for task, need in rows:
        order = found.setdefault((need.need_id, task.day), Order(
            need.need_id, need.merchant_service, format_hhmm(task.start),
            masked(need.beneficiary), coarse(need.lat), coarse(need.lon)))
        order.volunteers.append(task.volunteer_id)
    return list(found.values())
