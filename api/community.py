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
from matcher.errors import DataIssue, InputError
from matcher.spreadsheets import RESOURCE_COLUMNS, Table, parse_records

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


def table_records(table: Table) -> list[dict[str, object]]:
    """A spreadsheet table's rows as records, header and cells trimmed."""
    frame = table.frame.rename(columns=lambda c: str(c).strip())
    return [{str(k): str(v).strip() for k, v in r.items()} for r in frame.to_dict("records")]


def save_tables(session: Session, tables: dict[str, Table]
                ) -> tuple[dict[str, int], dict[str, int]]:
    """Validate every row of every table, then insert or replace them by id (the caller commits:
    all rows or none). Returns how many rows were created and updated per kind.

    Raises
    ------
    InputError
        With every bad cell of every table; nothing is written then.
    """
    issues: list[DataIssue] = []
    valid: dict[str, list[tuple[dict[str, object], Any]]] = {}
    for kind, table in tables.items():
        records = table_records(table)
        try:
            valid[kind] = list(zip(records, parse_records(kind, records, table.name),
                                   strict=True))
        except InputError as exc:
            issues.extend(exc.issues)
    if issues:
        raise InputError(issues)
    created: dict[str, int] = {}
    updated: dict[str, int] = {}
    for kind in ("merchants", "volunteers", "needs"):  # order: foreign keys
        for record, item in valid.get(kind, []):
            values = _typed(kind, {c: record.get(c, "") for c in RESOURCE_COLUMNS[kind]}, item)
            row = session.get(ROWS[kind], values[f"{kind[:-1]}_id"])
            if row is None:
                session.add(ROWS[kind](**values))
                created[kind] = created.get(kind, 0) + 1
            else:
                for key, value in values.items():
                    setattr(row, key, value)
                updated[kind] = updated.get(kind, 0) + 1
    return created, updated


def _typed(kind: str, values: dict[str, object], parsed: Any) -> dict[str, object]:
    """Store numbers as numbers and defaults filled in (the parser already checked them)."""
    out = dict(values)
    out["lat"], out["lon"] = parsed.location.lat, parsed.location.lon
    if kind == "volunteers":
        out["max_hours_week"] = parsed.max_hours_week
    elif kind == "needs":
        out.update(duration_min=parsed.duration_min, volunteers_needed=parsed.volunteers_needed,
                   priority=parsed.priority.value, kind=parsed.kind.value)
    else:
        out["capacity_per_day"] = parsed.capacity_per_day
    return out


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
