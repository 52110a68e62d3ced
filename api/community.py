"""The community stored in the database, seen as the matcher's domain, and as each role may see
it (privacy: beneficiaries' names and exact places only for the volunteer serving them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, func, or_, select
from sqlalchemy.orm import Session

from api.ledger import volunteer_community
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
    ScheduleRow,
    TaskRow,
    User,
    VolunteerRow,
    session_community,
)
from api.security import Caller
from api.tenancy import check_new_id
from matcher.charity import CharityProblem, Donation, Request
from matcher.domain import (
    Availability,
    Day,
    Location,
    Merchant,
    Need,
    NeedKind,
    Priority,
    Problem,
    TimeWindow,
    Volunteer,
    Week,
    format_hhmm,
)
from matcher.errors import DataIssue, InputError, Invalid
from matcher.spreadsheets import COLUMNS, Table, check_header, community_notes, parse_records

T = TypeVar("T")
TZ = ZoneInfo("Asia/Shanghai")
Row = VolunteerRow | NeedRow | MerchantRow | DonationRow | RequestRow
ROWS: dict[str, type[Row]] = {
    "volunteers": VolunteerRow, "needs": NeedRow, "merchants": MerchantRow,
    "donations": DonationRow, "requests": RequestRow}


def row_record(row: Base, kind: str) -> dict[str, Any]:
    """A stored row as a SCHEMA.md record (column -> value): lists as ``;``-joined text, as a
    spreadsheet cell or a JSON body gives them."""
    record = {c: getattr(row, c) for c in COLUMNS[kind]}
    for column in LIST_COLUMNS.get(kind, ()):
        record[column] = list_text(column, record[column])
    return record


# The columns holding lists (JSON arrays), per kind.
LIST_COLUMNS = {"volunteers": ("skills", "availability"), "needs": ("days", "skills"),
                "merchants": ("services",)}


def list_text(column: str, items: list[Any] | None) -> str:
    """A list column's value as a SCHEMA.md cell: ``a;b``, availability as ``mon 08:00-12:00``."""
    if column == "availability":
        return ";".join(f"{a['day']} {format_hhmm(a['start'])}-{format_hhmm(a['end'])}"
                        for a in items or [])
    return ";".join(str(item) for item in items or [])


def _where(kind: str, ident: object) -> str:
    return f"{kind} table, {kind[:-1]}_id {ident}"


def _built(kind: str, rows: Sequence[Any], build: Callable[[Any], T]) -> list[T]:
    """Domain objects of stored rows; a row that breaks a domain type's rule (stored before
    today's checks, or written around the importer) is named with the rule it breaks.

    Raises
    ------
    InputError
        With every bad row.
    """
    items: list[T] = []
    issues: list[DataIssue] = []
    id_column = f"{kind[:-1]}_id"
    for row in rows:
        try:
            items.append(build(row))
        except Invalid as exc:
            issues.append(DataIssue.of(_where(kind, getattr(row, id_column)), None, None, None,
                                       exc.template, **exc.params))
        except (ValueError, TypeError, KeyError) as exc:
            issues.append(DataIssue(_where(kind, getattr(row, id_column)), None, None, None,
                                    str(exc) or type(exc).__name__))
    if issues:
        raise InputError(issues)
    return items


def volunteer_of(row: Any) -> Volunteer:
    """A volunteer from its stored columns (an ORM row or a selected row)."""
    return Volunteer(
        row.volunteer_id, row.name, Location(row.lat, row.lon), frozenset(row.skills),
        tuple(Availability(Day(a["day"]), TimeWindow(a["start"], a["end"]))
              for a in row.availability),
        row.max_hours_week)


def volunteers_of_rows(rows: Sequence[Any]) -> list[Volunteer]:
    """Volunteers from stored rows (of any community), each row that breaks a rule named.

    Raises
    ------
    InputError
        With every bad row.
    """
    return _built("volunteers", rows, volunteer_of)


def need_of(row: Any) -> Need:
    """A need from its stored columns."""
    return Need(
        row.need_id, NeedKind(row.kind), row.service, row.beneficiary,
        Location(row.lat, row.lon), tuple(Day(d) for d in row.days),
        TimeWindow.parse(row.window), row.duration_min, frozenset(row.skills),
        row.volunteers_needed, Priority(row.priority), row.merchant_service or None)


def merchant_of(row: Any) -> Merchant:
    """A merchant from its stored columns."""
    return Merchant(row.merchant_id, row.name, Location(row.lat, row.lon),
                    frozenset(row.services), row.capacity_per_day, TimeWindow.parse(row.open))


def donation_of(row: Any, taken: int = 0) -> Donation:
    """A donation from its stored columns, less ``taken`` units already given out."""
    return Donation(row.donation_id, row.donor, row.category, row.quantity - taken,
                    Location(row.lat, row.lon),
                    dt.date.fromisoformat(row.expires) if row.expires else None)


def request_of(row: Any, filled: int = 0) -> Request:
    """A request from its stored columns, less ``filled`` units already given."""
    return Request(row.request_id, row.beneficiary, row.category, row.quantity - filled,
                   Location(row.lat, row.lon), Priority(row.priority))


def _rows(session: Session, kind: str, *where: Any) -> Sequence[Any]:
    """The stored rows of ``kind`` as plain rows (no ORM objects: a week reads thousands), in
    id order, so every database gives the solver the same order."""
    table = ROWS[kind].__table__
    community = session_community(session)
    if community is not None:  # plain rows: the session's scope does not reach them
        where = (*where, table.c.community_id == community)
    return session.execute(select(table).where(*where)
                           .order_by(table.c[f"{kind[:-1]}_id"])).all()


def _of_community(session: Session, column: Any) -> tuple[Any, ...]:
    """``column`` is the session's community (nothing when the session is unscoped)."""
    community = session_community(session)
    return () if community is None else (column == community,)


def load_problem(session: Session, week: Week) -> Problem:
    """The whole community for ``week`` as domain objects built from the rows (each checks its
    own rules): standing needs and the one-off needs of this week (deliveries of a published
    allocation).

    Raises
    ------
    InputError
        Naming each stored row that breaks a rule.
    """
    published = select(AllocationRow.id).where(
        AllocationRow.status == "published", *_of_community(session, AllocationRow.community_id))
    needs = NeedRow.__table__.c
    issues: list[DataIssue] = []
    loaded: dict[str, list[Any]] = {}
    for kind, build, where in (
            ("volunteers", volunteer_of, ()), ("merchants", merchant_of, ()),
            ("needs", need_of, (or_(needs.only_week.is_(None), needs.only_week == str(week)),
                                or_(needs.allocation_id.is_(None),
                                    needs.allocation_id.in_(published))))):
        try:
            loaded[kind] = _built(kind, _rows(session, kind, *where), build)
        except InputError as exc:
            issues += exc.issues
    if issues:
        raise InputError(issues)
    return Problem(week, loaded["volunteers"], loaded["needs"], loaded["merchants"])


def guest_volunteers(session: Session, schedule_id: int) -> list[Volunteer]:
    """The volunteers registered in another community than the schedule's who hold a task of
    it (not declined or cancelled): a district run placed them there, inside their circle. A
    view of the schedule's week must know them, or their tasks would look like those of a
    volunteer who left. Plain statements: their rows are another community's, and must not
    enter the scoped session (nor are they its to change)."""
    volunteers, tasks = VolunteerRow.__table__.c, TaskRow.__table__.c
    schedules = ScheduleRow.__table__.c
    holding = select(tasks.volunteer_id).where(tasks.schedule_id == schedule_id,
                                               tasks.state.not_in(("declined", "cancelled")))
    home = select(schedules.community_id).where(schedules.id == schedule_id).scalar_subquery()
    rows = session.execute(select(VolunteerRow.__table__).where(
        volunteers.volunteer_id.in_(holding), volunteers.community_id != home)
        .order_by(volunteers.volunteer_id)).all()
    return volunteers_of_rows(rows)


def with_guests(problem: Problem, guests: Sequence[Volunteer]) -> Problem:
    """``problem`` with ``guests`` (:func:`guest_volunteers`) among its volunteers, in id
    order as the community's own."""
    if not guests:
        return problem
    volunteers = sorted([*problem.volunteers, *guests], key=lambda v: v.id)
    return Problem(problem.week, volunteers, problem.needs, problem.merchants)


def load_charity(session: Session, week: Week) -> CharityProblem:
    """Donations and requests for an allocation of ``week``, less what published allocations
    of other weeks already gave out (stock gone, requests partly or wholly filled)."""
    given = (select(AllocationLineRow.donation_id, AllocationLineRow.request_id,
                    AllocationLineRow.quantity)
             .join(AllocationRow, AllocationRow.id == AllocationLineRow.allocation_id)
             .where(AllocationRow.status == "published", AllocationRow.week != str(week),
                    *_of_community(session, AllocationRow.community_id))
             .subquery())
    taken = dict(session.execute(select(given.c.donation_id, func.sum(given.c.quantity))
                                 .group_by(given.c.donation_id)).all())
    filled = dict(session.execute(select(given.c.request_id, func.sum(given.c.quantity))
                                  .group_by(given.c.request_id)).all())
    donations = [r for r in _rows(session, "donations")
                 if r.quantity > taken.get(r.donation_id, 0)]
    requests = [r for r in _rows(session, "requests")
                if r.quantity > filled.get(r.request_id, 0)]
    return CharityProblem(
        week,
        _built("donations", donations, lambda r: donation_of(r, taken.get(r.donation_id, 0))),
        _built("requests", requests, lambda r: request_of(r, filled.get(r.request_id, 0))))


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
                check_new_id(session, ROWS[kind], kind, str(values[f"{kind[:-1]}_id"]))
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
    """The values to store for a validated record: ``values`` (the record as given) with the
    columns the parsed item knows in their normal form (:func:`columns_of`), so the database
    holds what the parser understood, not what was typed."""
    return dict(values) | columns_of(kind, parsed)


def columns_of(kind: str, item: Any) -> dict[str, object]:
    """A domain object's stored columns: numbers as numbers, times in their normal form
    (``9:30 - 20:30`` is stored ``09:30-20:30``), lists as JSON arrays."""
    out: dict[str, object] = {f"{kind[:-1]}_id": item.id, "lat": item.location.lat,
                              "lon": item.location.lon}
    if kind == "volunteers":
        out.update(name=item.name, max_hours_week=item.max_hours_week,
                   skills=sorted(item.skills),
                   availability=[{"day": a.day.value, "start": a.window.start,
                                  "end": a.window.end} for a in item.availability])
    elif kind == "needs":
        out.update(duration_min=item.duration_min, volunteers_needed=item.volunteers_needed,
                   priority=item.priority.value, kind=item.kind.value,
                   service=item.service, beneficiary=item.beneficiary,
                   skills=sorted(item.skills), days=[d.value for d in item.days],
                   window=str(item.window), merchant_service=item.merchant_service or "")
    elif kind == "merchants":
        out.update(name=item.name, capacity_per_day=item.capacity_per_day,
                   services=sorted(item.services), open=str(item.open))
    elif kind == "donations":
        out.update(donor=item.donor, quantity=item.quantity, category=item.category,
                   expires=item.expires.isoformat() if item.expires else "")
    else:
        out.update(beneficiary=item.beneficiary, quantity=item.quantity,
                   priority=item.priority.value, category=item.category)
    return out


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
    entry = audit_entry(user, action, target, detail)
    if session_community(session) is not None:  # an admin reads a community: it is its record
        entry["community_id"] = session_community(session)
    session.add(AuditEntry(**entry))


def audit_entry(user: Caller | User | None, action: str, target: str, detail: str = ""
                ) -> dict[str, Any]:
    """The columns of one audit record (:func:`audit` adds it to a session; the hot path
    inserts it with one statement)."""
    return {"user_id": user.id if user else None, "action": action, "target": target,
            "detail": detail, "community_id": user.community_id if user else None}


def notify(session: Session, recipient: str, kind: str, payload: dict[str, Any]) -> None:
    """Queue an event for the webhook (in the caller's transaction: sent only if it commits).

    A volunteer hears through her own community's receiver (its mini program knows her), also
    of a task in a neighbouring community: her events go to her home community's outbox."""
    event = OutboxEvent(recipient=recipient, kind=kind, payload=payload)
    home = None
    if recipient.startswith(VOLUNTEER_RECIPIENT):
        home = _home_of(session, recipient.removeprefix(VOLUNTEER_RECIPIENT))
    if home is not None:  # else the session's community, as for every owned row
        event.community_id = home
    session.add(event)


VOLUNTEER_RECIPIENT = "volunteer:"
_HOMES = "linli.volunteer_homes"


def _home_of(session: Session, volunteer_id: str) -> int | None:
    """:func:`api.ledger.volunteer_community`, remembered for the session's life (a
    publication tells hundreds)."""
    homes: dict[str, int | None] = session.info.setdefault(_HOMES, {})
    if volunteer_id not in homes:
        homes[volunteer_id] = volunteer_community(session, volunteer_id)
    return homes[volunteer_id]
