"""The community stored in the database, seen as the matcher's domain, and as each role may see
it (privacy: beneficiaries' names and exact places only for the volunteer serving them)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, func, or_, select
from sqlalchemy.orm import Session

from api.models import (
    AllocationLineRow,
    AllocationRow,
    AuditEntry,
    Base,
    DonationRow,
    MerchantRow,
    NeedRow,
    OutboxEvent,
    RequestRow,
    User,
    VolunteerRow,
)
from api.security import Caller
from matcher.charity import CharityProblem, Donation, Request
from matcher.domain import Location, Merchant, Need, Problem, Volunteer, Week
from matcher.errors import DataIssue, InputError
from matcher.spreadsheets import COLUMNS, Table, check_header, community_notes, parse_records

TZ = ZoneInfo("Asia/Shanghai")
Row = VolunteerRow | NeedRow | MerchantRow | DonationRow | RequestRow
ROWS: dict[str, type[Row]] = {
    "volunteers": VolunteerRow, "needs": NeedRow, "merchants": MerchantRow,
    "donations": DonationRow, "requests": RequestRow}


def row_record(row: Base, kind: str) -> dict[str, Any]:
    """A stored row as a SCHEMA.md record (column -> value)."""
    return {c: getattr(row, c) for c in COLUMNS[kind]}


def _parsed(session: Session, kind: str, *where: Any) -> list[Any]:
    rows = session.scalars(select(ROWS[kind]).where(*where)).all()
    return parse_records(kind, [row_record(r, kind) for r in rows], f"{kind} table")


def load_problem(session: Session, week: Week) -> Problem:
    """The whole community for ``week``, re-validated by the spreadsheet parser: standing needs
    and the one-off needs of this week (deliveries of a published allocation)."""
    published = select(AllocationRow.id).where(AllocationRow.status == "published")
    parsed = {kind: _parsed(session, kind) for kind in ("volunteers", "merchants")}
    parsed["needs"] = _parsed(
        session, "needs",
        or_(NeedRow.only_week.is_(None), NeedRow.only_week == str(week)),
        or_(NeedRow.allocation_id.is_(None), NeedRow.allocation_id.in_(published)))
    return Problem(week,
                   [v for v in parsed["volunteers"] if isinstance(v, Volunteer)],
                   [n for n in parsed["needs"] if isinstance(n, Need)],
                   [m for m in parsed["merchants"] if isinstance(m, Merchant)])


def load_charity(session: Session, week: Week) -> CharityProblem:
    """Donations and requests for an allocation of ``week``, less what published allocations
    of other weeks already gave out (stock gone, requests partly or wholly filled)."""
    given = (select(AllocationLineRow.donation_id, AllocationLineRow.request_id,
                    AllocationLineRow.quantity)
             .join(AllocationRow, AllocationRow.id == AllocationLineRow.allocation_id)
             .where(AllocationRow.status == "published", AllocationRow.week != str(week))
             .subquery())
    taken = dict(session.execute(select(given.c.donation_id, func.sum(given.c.quantity))
                                 .group_by(given.c.donation_id)).all())
    filled = dict(session.execute(select(given.c.request_id, func.sum(given.c.quantity))
                                  .group_by(given.c.request_id)).all())
    donations = [replace(d, quantity=d.quantity - taken.get(d.id, 0))
                 for d in _parsed(session, "donations") if isinstance(d, Donation)]
    requests = [replace(r, quantity=r.quantity - filled.get(r.id, 0))
                for r in _parsed(session, "requests") if isinstance(r, Request)]
    return CharityProblem(week, [d for d in donations if d.quantity > 0],
                          [r for r in requests if r.quantity > 0])


def table_records(table: Table) -> list[dict[str, object]]:
    """A spreadsheet table's rows as records, header and cells trimmed."""
    frame = table.frame.rename(columns=lambda c: str(c).strip())
    return [{str(k): str(v).strip() for k, v in r.items()} for r in frame.to_dict("records")]


# What the database's integer columns hold (32 bits on PostgreSQL).
INT_RANGE = (-(2**31), 2**31 - 1)


def column_issues(kind: str, records: list[dict[str, Any]], file: str,
                  numbers: list[int] | None = None) -> list[DataIssue]:
    """Cells the table's columns cannot hold: text longer than its column, a whole number out
    of an integer column's range (SQLite would keep them, PostgreSQL refuses them). ``numbers``
    are the records' spreadsheet rows (blank rows skipped); a JSON body has none."""
    table = ROWS[kind].__table__
    issues = []
    for index, record in enumerate(records):
        row = numbers[index] if numbers is not None else None if file == "body" else index + 2
        for name, value in record.items():
            if name not in table.c or value is None:
                continue
            column = table.c[name]
            length = getattr(column.type, "length", None)
            text = str(value)
            if "\x00" in text:
                issues.append(DataIssue(file, row, name, text[:40].replace("\x00", "\\0"),
                                        "contains a NUL character"))
            elif isinstance(column.type, String) and length and len(text) > length:
                issues.append(DataIssue(file, row, name, text[:40] + "...",
                                        f"is longer than {length} characters"))
            elif isinstance(column.type, Integer) and text.strip().lstrip("+-").isdecimal() \
                    and not INT_RANGE[0] <= int(text) <= INT_RANGE[1]:
                issues.append(DataIssue(file, row, name, text[:40],
                                        f"is out of range ({INT_RANGE[0]} to {INT_RANGE[1]})"))
    return issues


def save_tables(session: Session, tables: dict[str, Table], notes: list[str] | None = None
                ) -> tuple[dict[str, int], dict[str, int]]:
    """Validate every row of every table, then insert or replace them by id (the caller commits:
    all rows or none). Returns how many rows were created and updated per kind; notes about
    the headers (ignored columns) go to ``notes``.

    Raises
    ------
    InputError
        With every bad cell of every table; nothing is written then.
    """
    issues: list[DataIssue] = []
    valid: dict[str, list[tuple[dict[str, object], Any]]] = {}
    for kind, table in tables.items():
        if not check_header(table, kind, issues, [] if notes is None else notes):
            continue
        records = table_records(table)
        try:
            parsed = parse_records(kind, records, table.name, numbers=table.numbers())
        except InputError as exc:
            issues.extend(exc.issues)
            continue
        # A backstop behind the parser (whose own rules, where it has them, speak first).
        unfit = column_issues(kind, records, table.name, table.numbers())
        issues.extend(unfit)
        if not unfit:
            valid[kind] = list(zip(records, parsed, strict=True))
    if issues:
        raise InputError(issues)
    created: dict[str, int] = {}
    updated: dict[str, int] = {}
    for kind in ("merchants", "volunteers", "needs", "donations", "requests"):  # foreign keys
        for record, item in valid.get(kind, []):
            values = stored(kind, {c: record.get(c, "") for c in COLUMNS[kind]}, item)
            row = session.get(ROWS[kind], values[f"{kind[:-1]}_id"])
            if row is None:
                session.add(ROWS[kind](**values))
                created[kind] = created.get(kind, 0) + 1
            else:
                for key, value in values.items():
                    setattr(row, key, value)
                updated[kind] = updated.get(kind, 0) + 1
    return created, updated


def import_notes(session: Session, tables: dict[str, Table], week: Week) -> list[str]:
    """Notes about the rows just imported, weighed against the whole community on file as
    ``week`` sees it (an import may bring needs alone): skills and services nobody offers,
    places far from all."""
    where = {(kind[:-1], str(ident)): f"{table.name} row {number}"
             for kind, table in tables.items() if kind in ("volunteers", "needs", "merchants")
             for ident, number in zip(table.frame[f"{kind[:-1]}_id"].str.strip(),
                                      table.numbers(), strict=True)}
    if not where:
        return []
    session.flush()
    try:
        problem = load_problem(session, week)
    except InputError as exc:  # rows stored before today's checks: say so, keep the import
        return [f"the community on file was not checked for far places and unknown skills: "
                f"{exc.issues[0]}" + (f" (and {len(exc.issues) - 1} more)"
                                      if len(exc.issues) > 1 else "")]
    return community_notes(problem.volunteers, problem.needs, problem.merchants, where,
                           only=set(where))


def stored(kind: str, values: dict[str, object], parsed: Any) -> dict[str, object]:
    """The values to store for a validated record: numbers as numbers, defaults filled in, and
    times, days and lists in their normal form (``9:30 - 20:30`` is stored ``09:30-20:30``), so
    the database holds what the parser understood, not what was typed."""
    out = dict(values)
    out["lat"], out["lon"] = parsed.location.lat, parsed.location.lon
    if kind == "volunteers":
        out.update(max_hours_week=parsed.max_hours_week, skills=_joined(parsed.skills),
                   availability=";".join(str(a) for a in parsed.availability))
    elif kind == "needs":
        out.update(duration_min=parsed.duration_min, volunteers_needed=parsed.volunteers_needed,
                   priority=parsed.priority.value, kind=parsed.kind.value,
                   service=parsed.service, skills=_joined(parsed.skills),
                   days=";".join(d.value for d in parsed.days), window=str(parsed.window),
                   merchant_service=parsed.merchant_service or "")
    elif kind == "merchants":
        out.update(capacity_per_day=parsed.capacity_per_day, services=_joined(parsed.services),
                   open=str(parsed.open))
    elif kind == "donations":
        out.update(quantity=parsed.quantity, category=parsed.category,
                   expires=parsed.expires.isoformat() if parsed.expires else "")
    else:
        out.update(quantity=parsed.quantity, priority=parsed.priority.value,
                   category=parsed.category)
    return out


def _joined(items: frozenset[str]) -> str:
    return ";".join(sorted(items))


def coarse(value: float) -> float:
    """About 100 m: enough to see the neighbourhood, not the door."""
    return round(value, 3)


def coarse_area(location: Location) -> dict[str, float]:
    """About 1 km (two decimals): the area a public report may name, never the building."""
    return {"area_lat": round(location.lat, 2), "area_lon": round(location.lon, 2)}


def masked(name: str) -> str:
    """张奶奶 -> 张**: the family name stays, so a coordinator can still talk about the case."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def audit(session: Session, user: Caller | User | None, action: str, target: str,
          detail: str = "") -> None:
    """Record an access to personal data or a change (in the caller's transaction)."""
    session.add(AuditEntry(**audit_entry(user, action, target, detail)))


def audit_entry(user: Caller | User | None, action: str, target: str, detail: str = ""
                ) -> dict[str, Any]:
    """The columns of one audit record (:func:`audit` adds it to a session; the hot path
    inserts it with one statement)."""
    return {"user_id": user.id if user else None, "action": action, "target": target,
            "detail": detail}


def notify(session: Session, recipient: str, kind: str, payload: dict[str, Any]) -> None:
    """Queue an event for the webhook (in the caller's transaction: sent only if it commits)."""
    session.add(OutboxEvent(recipient=recipient, kind=kind, payload=payload))
