"""Double-entry points: every transfer is two entries summing to zero.

Balances are kept on the account row and changed only here, under a row lock taken in a fixed
order (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serialises writers with ``BEGIN
IMMEDIATE``), so two concurrent redemptions see each other's effect and can never overspend. A
CHECK constraint refuses a negative balance as a last line of defence.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.errors import Problem
from api.models import Account, LedgerEntry

ISSUER = ("issuer", "community")  # where earned points come from (its balance goes negative)
ESCROW = ("escrow", "redemptions")  # points held while a merchant confirms a redemption


def account(session: Session, kind: str, owner: str) -> Account:
    """The account, created on first use (safely when two requests create it at once)."""
    found = session.scalars(select(Account).filter_by(kind=kind, owner=owner)).one_or_none()
    if found is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(Account).values(kind=kind, owner=owner, balance=0)
                        .on_conflict_do_nothing(index_elements=["kind", "owner"]))
        found = session.scalars(select(Account).filter_by(kind=kind, owner=owner)).one()
    return found


def transfer(session: Session, source: tuple[str, str], target: tuple[str, str], amount: int,
             memo: str) -> str:
    """Move ``amount`` points; raises 409 when the source would go negative. Returns the
    transfer id. The caller commits."""
    if amount <= 0:
        raise Problem(422, "a transfer moves a positive number of points")
    accounts = [account(session, *source), account(session, *target)]
    ids = sorted(a.id for a in accounts)
    locked = {a.id: a for a in session.scalars(
        select(Account).where(Account.id.in_(ids)).order_by(Account.id)
        .with_for_update().execution_options(populate_existing=True))}
    src, dst = locked[accounts[0].id], locked[accounts[1].id]
    if src.kind != ISSUER[0] and src.balance < amount:
        raise Problem(409, f"{src.owner} has {src.balance} points, {amount} needed")
    src.balance -= amount
    dst.balance += amount
    transfer_id = uuid.uuid4().hex
    session.add_all([LedgerEntry(transfer=transfer_id, account_id=src.id, amount=-amount,
                                 memo=memo),
                     LedgerEntry(transfer=transfer_id, account_id=dst.id, amount=amount,
                                 memo=memo)])
    session.flush()
    return transfer_id
