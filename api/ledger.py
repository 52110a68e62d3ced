"""Double-entry ledger of points and of the time bank's minutes: every transfer is two entries
summing to zero, within one currency.

Balances are kept on the account row and changed only here, under a row lock taken in a fixed
order (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serialises writers with ``BEGIN
IMMEDIATE``), so two concurrent redemptions or draws see each other's effect and can never
overspend. A CHECK constraint refuses a balance below the account's floor as a last line of
defence: 0 for points, minus the community's overdraft limit for a time account.

Across communities (of one district, :func:`transfer_across`) a movement of minutes or points
is four entries under one transfer id: out of the source and into the source community's
clearing account for the target community, out of the target community's clearing account for
the source community and into the target. So each community's entries sum to zero per
currency, the deployment's too, and a community's clearing account for another holds what it
owes that one (the other's clearing account holds the same below zero). Minutes cross for a
gift to family in another community and for work done in another community than the
volunteer's own; points only for such work (:func:`transfer_home`): the community served
issues them, and they land where she redeems them, in her own community.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.errors import Problem
from api.models import Account, LedgerEntry, VolunteerRow, session_community, sole_community
from matcher.i18n import _

ISSUER = ("issuer", "community")  # where earned points come from (its balance goes negative)
ESCROW = ("escrow", "redemptions")  # points held while a merchant confirms a redemption
# The time bank: minutes are issued for confirmed work by the community's own issuer; its
# subsidy account pays a red need whose requester has too few hours. The owner is the
# community, so a second community (see the district issue) gets a pair of its own.
TIME_ISSUER = ("time_issuer", "community")
TIME_SUBSIDY = ("time_subsidy", "community")
# Minutes that cross from one community to another pass through a clearing account in each,
# owned by the other community's id (see :func:`transfer_across`).
TIME_CLEARING = "time_clearing"
POINTS_CLEARING = "points_clearing"  # the same for points (a volunteer's work elsewhere)
CLEARING = {"minutes": TIME_CLEARING, "points": POINTS_CLEARING}
UNBOUNDED = frozenset({"issuer", "time_issuer", "time_subsidy", TIME_CLEARING,
                       POINTS_CLEARING})
# The tables, for plain statements that must not bring rows of another community into a
# scoped session.
ACCOUNTS = cast(Table, Account.__table__)
ENTRIES = cast(Table, LedgerEntry.__table__)


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


def _account_id(session: Session, community_id: int, kind: str, owner: str) -> int:
    """The id of ``community_id``'s account, created on first use. Plain statements: the
    request's session is scoped to one of the two communities, and no row of the other may
    enter it."""
    table = ACCOUNTS
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    where = (table.c.community_id == community_id, table.c.kind == kind,
             table.c.owner == owner)
    found = session.execute(select(table.c.id).where(*where)).scalar()
    if found is None:
        session.execute(upsert(table).values(
            kind=kind, owner=owner, balance=0, floor=0, currency=currency_of(kind),
            community_id=community_id).on_conflict_do_nothing(
                index_elements=["community_id", "kind", "owner"]))
        found = session.execute(select(table.c.id).where(*where)).scalar_one()
    return int(found)


def transfer_across(session: Session, source: tuple[int, str, str],
                    target: tuple[int, str, str], amount: int, memo: str, *,
                    purpose: str = "", overdraft: int = 0,
                    at: dt.datetime | None = None) -> str:
    """Move ``amount`` minutes (or points) from ``source`` (community id, kind, owner) to
    ``target`` of another community, through the two communities' clearing accounts of the
    currency (of one community: directly, without creating a clearing account); the same rules
    as :func:`transfer` (a positive amount, one currency, the source's floor under a lock taken
    in id order). Returns the transfer id. The caller commits."""
    if amount <= 0:
        raise Problem(422, _("a transfer moves a positive amount"))
    currency = currency_of(source[1])
    if currency != currency_of(target[1]):
        raise Problem(422, _("points and minutes are never exchanged"))
    legs = [(_account_id(session, *source), -amount)]
    if source[0] != target[0]:
        clearing = CLEARING[currency]
        legs += [(_account_id(session, source[0], clearing, str(target[0])), amount),
                 (_account_id(session, target[0], clearing, str(source[0])), -amount)]
    legs.append((_account_id(session, *target), amount))
    table = ACCOUNTS
    locked = {row.id: row for row in session.execute(
        select(table).where(table.c.id.in_([leg for leg, _ in legs])).order_by(table.c.id)
        .with_for_update())}
    src = locked[legs[0][0]]
    floor = int(src.floor)
    if src.kind not in UNBOUNDED:
        floor = min(-max(overdraft, 0), int(src.balance))
        if src.balance - amount < floor:
            raise Overdrawn(409, _("{owner} has {balance} {currency} (lowest allowed {floor}), "
                                   "{amount} needed").format(
                owner=src.owner, balance=src.balance, currency=CURRENCY_WORDS[currency](),
                floor=floor, amount=amount))
    transfer_id = uuid.uuid4().hex
    stamp = {} if at is None else {"created_at": at}
    for account_id, change in legs:
        values: dict[str, object] = {"balance": table.c.balance + change}
        if account_id == src.id:
            values["floor"] = floor
        session.execute(update(table).where(table.c.id == account_id).values(**values))
    session.execute(insert(ENTRIES), [
        {"transfer": transfer_id, "account_id": account_id, "amount": change, "memo": memo,
         "purpose": purpose, **stamp} for account_id, change in legs])
    # Accounts of the scoped community the session already holds read their new balances.
    for held in list(session.identity_map.values()):
        if isinstance(held, Account) and held.id in locked:
            session.expire(held)
    return transfer_id


def volunteer_community(session: Session, volunteer_id: str) -> int | None:
    """The community a volunteer is registered in, whichever it is (a plain statement: the
    session's scope would hide her when she serves another community)."""
    table = cast(Table, VolunteerRow.__table__)
    found = session.execute(select(table.c.community_id)
                            .where(table.c.volunteer_id == volunteer_id)).scalar()
    return None if found is None else int(found)


def transfer_home(session: Session, source: tuple[str, str], volunteer: tuple[str, str],
                  amount: int, memo: str, *, purpose: str = "", overdraft: int = 0,
                  at: dt.datetime | None = None) -> str:
    """Pay ``volunteer`` (kind, volunteer id) from ``source`` of the session's community into
    her account in her own community: :func:`transfer` when she is registered here,
    :func:`transfer_across` (through both clearing accounts) when she served here from another
    community. Returns the transfer id. The caller commits."""
    here = session_community(session)
    home = volunteer_community(session, volunteer[1])
    if home is None or here is None or home == here:  # unscoped: the deployment's own books
        return transfer(session, source, volunteer, amount, memo, purpose=purpose,
                        overdraft=overdraft, at=at)
    return transfer_across(session, (here, *source), (home, *volunteer), amount, memo,
                           purpose=purpose, overdraft=overdraft, at=at)
