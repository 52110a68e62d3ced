"""Double-entry ledger of points and of the time bank's minutes: every transfer is two entries
summing to zero, within one currency.

Balances are kept on the account row and changed only here, under a row lock taken in a fixed
order (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serialises writers with ``BEGIN
IMMEDIATE``), so two concurrent redemptions or draws see each other's effect and can never
overspend. A CHECK constraint refuses a balance below the account's floor as a last line of
defence: 0 for points, minus the community's overdraft limit for a time account.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.errors import Problem
from api.models import Account, LedgerEntry, session_community, sole_community
from matcher.i18n import _

ISSUER = ("issuer", "community")  # where earned points come from (its balance goes negative)
ESCROW = ("escrow", "redemptions")  # points held while a merchant confirms a redemption
# The time bank: minutes are issued for confirmed work by the community's own issuer; its
# subsidy account pays a red need whose requester has too few hours. The owner is the
# community, so a second community (see the district issue) gets a pair of its own.
TIME_ISSUER = ("time_issuer", "community")
TIME_SUBSIDY = ("time_subsidy", "community")
UNBOUNDED = frozenset({"issuer", "time_issuer", "time_subsidy"})


CURRENCY_WORDS = {"points": lambda: _("points"), "minutes": lambda: _("minutes")}


class Overdrawn(Problem):
    """The source account would go below its floor (409)."""


def currency_of(kind: str) -> str:
    return "minutes" if kind.startswith("time_") else "points"


def account(session: Session, kind: str, owner: str) -> Account:
    """The account, created on first use (safely when two requests create it at once)."""
    found = session.scalars(select(Account).filter_by(kind=kind, owner=owner)).one_or_none()
    if found is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        community = session_community(session) or sole_community(session)
        session.execute(insert(Account).values(kind=kind, owner=owner, balance=0, floor=0,
                                               currency=currency_of(kind),
                                               community_id=community)
                        .on_conflict_do_nothing(
                            index_elements=["community_id", "kind", "owner"]))
        found = session.scalars(select(Account).filter_by(kind=kind, owner=owner)).one()
    return found


def transfer(session: Session, source: tuple[str, str], target: tuple[str, str], amount: int,
             memo: str, *, purpose: str = "", overdraft: int = 0,
             at: dt.datetime | None = None) -> str:
    """Move ``amount`` points (or minutes, between time accounts); raises :class:`Overdrawn`
    (409) when the source would go below its floor. ``overdraft`` is the community's limit for
    time accounts (minutes a balance may go below zero), applied to the source now; ``at`` is
    the community's clock (statements count months by it; default: the database's time).
    Returns the transfer id. The caller commits."""
    if amount <= 0:
        raise Problem(422, _("a transfer moves a positive amount"))
    if currency_of(source[0]) != currency_of(target[0]):
        raise Problem(422, _("points and minutes are never exchanged"))
    accounts = [account(session, *source), account(session, *target)]
    ids = sorted(a.id for a in accounts)
    locked = {a.id: a for a in session.scalars(
        select(Account).where(Account.id.in_(ids)).order_by(Account.id)
        .with_for_update().execution_options(populate_existing=True))}
    src, dst = locked[accounts[0].id], locked[accounts[1].id]
    if src.currency == "minutes" and src.kind not in UNBOUNDED:
        # The limit is the community's setting today; a balance already lower stays the floor.
        src.floor = min(-max(overdraft, 0), src.balance)
    if src.kind not in UNBOUNDED and src.balance - amount < src.floor:
        raise Overdrawn(409, _("{owner} has {balance} {currency} (lowest allowed {floor}), "
                               "{amount} needed").format(
            owner=src.owner, balance=src.balance, currency=CURRENCY_WORDS[src.currency](),
            floor=src.floor, amount=amount))
    src.balance -= amount
    dst.balance += amount
    transfer_id = uuid.uuid4().hex
    stamp = {} if at is None else {"created_at": at}
    session.add_all([LedgerEntry(transfer=transfer_id, account_id=src.id, amount=-amount,
                                 memo=memo, purpose=purpose, **stamp),
                     LedgerEntry(transfer=transfer_id, account_id=dst.id, amount=amount,
                                 memo=memo, purpose=purpose, **stamp)])
    session.flush()
    return transfer_id


def spendable(session: Session, kind: str, owner: str, overdraft: int) -> int:
    """What a time account may still pay: its balance down to the community's limit."""
    acct = account(session, kind, owner)
    return acct.balance + max(overdraft, 0)
