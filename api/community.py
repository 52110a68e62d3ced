"""The community stored in the database, seen as the matcher's domain, and as each role may see
it (privacy: beneficiaries' names and exact places only for the volunteer serving them)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import AuditEntry, MerchantRow, NeedRow, OutboxEvent, User, VolunteerRow
from matcher.domain import Merchant, Need, Problem, Volunteer, Week
from matcher.spreadsheets import RESOURCE_COLUMNS, parse_records

TZ = ZoneInfo("Asia/Shanghai")
ROWS: dict[str, type[VolunteerRow] | type[NeedRow] | type[MerchantRow]] = {
    "volunteers": VolunteerRow, "needs": NeedRow, "merchants": MerchantRow}


def row_record(row: VolunteerRow | NeedRow | MerchantRow, kind: str) -> dict[str, Any]:
    """A stored row as a SCHEMA.md record (column -> value)."""
    return {c: getattr(row, c) for c in RESOURCE_COLUMNS[kind]}


def load_problem(session: Session, week: Week) -> Problem:
    """The whole community for ``week``, re-validated by the spreadsheet parser."""
    parsed: dict[str, list[Any]] = {}
    for kind, cls in ROWS.items():
        rows = session.scalars(select(cls)).all()
        parsed[kind] = parse_records(kind, [row_record(r, kind) for r in rows], f"{kind} table")
    return Problem(week,
                   [v for v in parsed["volunteers"] if isinstance(v, Volunteer)],
                   [n for n in parsed["needs"] if isinstance(n, Need)],
                   [m for m in parsed["merchants"] if isinstance(m, Merchant)])


def coarse(value: float) -> float:
    """About 100 m: enough to see the neighbourhood, not the door."""
    return round(value, 3)


def masked(name: str) -> str:
    """张奶奶 -> 张**: the family name stays, so a coordinator can still talk about the case."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def today() -> dt.date:
    return dt.datetime.now(TZ).date()


def audit(session: Session, user: User | None, action: str, target: str,
          detail: str = "") -> None:
    """Record an access to personal data or a change (in the caller's transaction)."""
    session.add(AuditEntry(user_id=user.id if user else None, action=action, target=target,
                           detail=detail))


def notify(session: Session, recipient: str, kind: str, payload: dict[str, Any]) -> None:
    """Queue an event for the webhook (in the caller's transaction: sent only if it commits)."""
    session.add(OutboxEvent(recipient=recipient, kind=kind, payload=payload))
