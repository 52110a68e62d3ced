"""Read and write the coordinators' spreadsheets (the SCHEMA.md exchange format).

A community is a folder of CSV files (``volunteers.csv``, ``needs.csv``, ``merchants.csv``) or one
``.xlsx`` workbook with sheets of the same names. Every row is validated and every problem is
reported at once with file, row, column and value; nothing is returned unless all of it is valid.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

import pandas as pd

from matcher.charity import CharityProblem, Donation, Request
from matcher.coords import CoordSystem, in_china, to_wgs84
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
)
from matcher.errors import DataIssue, InputError

E = TypeVar("E", bound=StrEnum)

VOLUNTEER_COLUMNS = ("volunteer_id", "name", "lat", "lon", "skills", "availability",
                     "max_hours_week")
NEED_COLUMNS = ("need_id", "kind", "service", "beneficiary", "lat", "lon", "days", "window",
                "duration_min", "skills", "volunteers_needed", "priority", "merchant_service")
MERCHANT_COLUMNS = ("merchant_id", "name", "lat", "lon", "services", "capacity_per_day", "open")
DONATION_COLUMNS = ("donation_id", "donor", "category", "quantity", "lat", "lon", "expires")
REQUEST_COLUMNS = ("request_id", "beneficiary", "category", "quantity", "lat", "lon", "priority")

_TOKEN = re.compile(r"^[^\s;,]+$")


@dataclass
class Table:
    """One sheet of input: its display name (``needs.csv``) and rows as text."""

    name: str
    frame: pd.DataFrame

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(spreadsheet row number, {column: text})``; the header is row 1."""
        for offset, record in enumerate(self.frame.to_dict("records")):
            yield offset + 2, {str(k): str(v).strip() for k, v in record.items()}


@dataclass
class ImportedCommunity:
    """A validated problem plus notes a coordinator should see (encoding used, ignored columns)."""

    problem: Problem
    notes: list[str] = field(default_factory=list)


def _decode(raw: bytes, name: str, notes: list[str]) -> str:
    """UTF-8 (with or without BOM) first, then GB18030, the superset of Excel's GBK exports."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InputError(
            [DataIssue(name, None, None, None, f"is neither UTF-8 nor GBK text ({exc.reason})")]
        ) from exc
    notes.append(f"{name} was read as GBK (an Excel export); save as UTF-8 CSV to avoid surprises")
    return text


def _frame_from_csv(path: Path, notes: list[str]) -> pd.DataFrame:
    text = _decode(path.read_bytes(), path.name, notes)
    if not text.strip():
        raise InputError([DataIssue(path.name, None, None, None, "is empty")])
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                           skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise InputError([DataIssue(path.name, None, None, None, f"is not valid CSV: {exc}")]) \
            from exc


def read_tables(source: Path, names: tuple[str, ...]) -> tuple[dict[str, Table], list[str]]:
    """Read the named sheets from a CSV folder or an ``.xlsx`` workbook.

    Returns the tables found (a missing optional one is simply absent) and notes.

    Raises
    ------
    InputError
        When the source does not exist, a file is empty or undecodable.
    """
    notes: list[str] = []
    tables: dict[str, Table] = {}
    if source.is_dir():
        for name in names:
            path = source / f"{name}.csv"
            if path.exists():
                tables[name] = Table(path.name, _frame_from_csv(path, notes))
    elif source.suffix.lower() in {".xlsx", ".xlsm"} and source.exists():
        try:
            sheets = pd.read_excel(source, sheet_name=None, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many types for a broken workbook
            raise InputError([DataIssue(source.name, None, None, None,
                                        f"is not a readable .xlsx workbook: {exc}")]) from exc
        lowered = {str(k).strip().lower(): v for k, v in sheets.items()}
        for name in names:
            if name in lowered:
                tables[name] = Table(f"{source.name}[{name}]", lowered[name])
    else:
        raise InputError([DataIssue(str(source), None, None, None,
                                    "is neither a folder of CSV files nor an .xlsx workbook")])
    return tables, notes


class _Row:
    """Typed access to one row's cells, recording a :class:`DataIssue` for each bad cell."""

    def __init__(self, table: str, number: int, cells: dict[str, str], issues: list[DataIssue]):
        self.table, self.number, self.cells, self.issues = table, number, cells, issues
        self.ok = True

    def fail(self, column: str, value: str | None, message: str) -> None:
        self.ok = False
        self.issues.append(DataIssue(self.table, self.number, column, value, message))

    def text(self, column: str, required: bool = True) -> str:
        value = self.cells.get(column, "")
        if required and not value:
            self.fail(column, None, "is required but empty")
        return value

    def number_(self, column: str, lo: float, hi: float, default: float | None = None) -> float:
        value = self.text(column, required=default is None)
        if not value:
            return default if default is not None else 0.0
        try:
            number = float(value)
        except ValueError:
            self.fail(column, value, "is not a number")
            return 0.0
        if not lo <= number <= hi:
            self.fail(column, value, f"is outside {lo:g}..{hi:g}")
        return number

    def integer(self, column: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.text(column, required=default is None)
        if not value:
            return default if default is not None else 0
        try:
            number = float(value)
        except ValueError:
            self.fail(column, value, "is not a whole number")
            return 0
        if number != int(number):
            self.fail(column, value, "is not a whole number")
        elif not lo <= number <= hi:
            self.fail(column, value, f"is outside {lo}..{hi}")
        return int(number)

    def tokens(self, column: str, required: bool = False) -> frozenset[str]:
        value = self.text(column, required=required)
        out: set[str] = set()
        for token in (t.strip().lower() for t in value.split(";")):
            if not token:
                continue
            if not _TOKEN.match(token):
                self.fail(column, token, "is not a token (use lower_snake_case, ';' between)")
            out.add(token)
        if required and value and not out:
            self.fail(column, value, "lists nothing")
        return frozenset(out)

    def choice(self, column: str, enum: type[E], default: E | None = None) -> E | None:
        value = self.text(column, required=default is None).lower()
        if not value:
            return default
        try:
            return enum(value)
        except ValueError:
            allowed = " / ".join(e.value for e in enum)
            self.fail(column, value, f"is not one of {allowed}")
            return default

    def date(self, column: str) -> dt.date | None:
        value = self.text(column, required=False)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(column, value, "is not a date YYYY-MM-DD")
            return None

    def token(self, column: str) -> str:
        value = self.text(column).lower()
        if value and not _TOKEN.match(value):
            self.fail(column, value, "is not a token (use lower_snake_case)")
        return value

    def window(self, column: str) -> TimeWindow | None:
        value = self.text(column)
        if not value:
            return None
        try:
            return TimeWindow.parse(value)
        except ValueError as exc:
            self.fail(column, value, str(exc))
            return None

    def days(self, column: str) -> tuple[Day, ...]:
        value = self.text(column)
        days: list[Day] = []
        for token in (t.strip().lower() for t in value.split(";")):
            if not token:
                continue
            try:
                day = Day(token[:3] if token in _LONG_DAYS else token)
            except ValueError:
                self.fail(column, token, "is not a day (mon tue wed thu fri sat sun)")
                continue
            if day in days:
                self.fail(column, token, "is listed twice")
            days.append(day)
        if value and not days:
            self.fail(column, value, "lists no day")
        return tuple(days)

    def availability(self, column: str) -> tuple[Availability, ...]:
        value = self.text(column)
        out: list[Availability] = []
        for token in (t.strip() for t in value.split(";")):
            if not token:
                continue
            parts = token.split()
            if len(parts) != 2:
                self.fail(column, token, "is not 'day HH:MM-HH:MM'")
                continue
            try:
                day = Day(parts[0].lower())
            except ValueError:
                self.fail(column, token, "does not start with a day (mon tue wed thu fri sat sun)")
                continue
            try:
                out.append(Availability(day, TimeWindow.parse(parts[1])))
            except ValueError as exc:
                self.fail(column, token, str(exc))
        if value and not out and self.ok:
            self.fail(column, value, "lists no window")
        return merge_availability(out)

    def location(self, coords: CoordSystem, china_only: bool) -> Location:
        lat = self.number_("lat", -180, 180)  # checked below, so swapped columns are named
        lon = self.number_("lon", -180, 180)
        if not self.ok:
            return Location(0.0, 0.0)
        if china_only and not in_china(lat, lon):
            hint = " (lat and lon look swapped)" if in_china(lon, lat) else ""
            self.fail("lat, lon", f"{lat}, {lon}", f"is outside China{hint}")
            return Location(0.0, 0.0)
        if abs(lat) > 90:
            self.fail("lat", str(lat), "is outside -90..90")
            return Location(0.0, 0.0)
        wlat, wlon = to_wgs84(lat, lon, coords)
        return Location(wlat, wlon)


_LONG_DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def merge_availability(windows: list[Availability]) -> tuple[Availability, ...]:
    """Sort windows and merge those of one day that overlap or touch.

    Decision: ``mon 08:00-12:00;mon 12:00-14:00`` means available 08:00-14:00, so a task may run
    across 12:00. Coordinators write split windows when they copy rows, not to forbid that.
    """
    merged: list[Availability] = []
    for a in sorted(windows, key=lambda a: (a.day.number, a.window.start)):
        last = merged[-1] if merged else None
        if last and last.day == a.day and a.window.start <= last.window.end:
            end = max(last.window.end, a.window.end)
            merged[-1] = Availability(a.day, TimeWindow(last.window.start, end))
        else:
            merged.append(a)
    return tuple(merged)


def _check_columns(table: Table, required: tuple[str, ...], known: tuple[str, ...],
                   issues: list[DataIssue], notes: list[str], allow_empty: bool = False) -> bool:
    columns = [str(c).strip() for c in table.frame.columns]
    table.frame.columns = pd.Index(columns)
    missing = [c for c in required if c not in columns]
    for column in missing:
        issues.append(DataIssue(table.name, 1, column, None, "column is missing from the header"))
    extra = [c for c in columns if c not in known]
    if extra:
        notes.append(f"{table.name}: ignored unknown column(s) {', '.join(extra)}")
    if not missing and table.frame.empty and not allow_empty:
        issues.append(DataIssue(table.name, None, None, None, "has a header but no rows"))
    return not missing


RowParser = Callable[[_Row], object]


def _parse_table(table: Table, id_column: str, parse: RowParser,
                 issues: list[DataIssue]) -> list[object]:
    items: list[object] = []
    first_row: dict[str, int] = {}
    for number, cells in table.rows():
        row = _Row(table.name, number, cells, issues)
        ident = row.text(id_column)
        if ident in first_row:
            row.fail(id_column, ident, f"is a duplicate id (first on row {first_row[ident]})")
        elif ident:
            first_row[ident] = number
        item = parse(row)
        if row.ok:
            items.append(item)
    return items



RESOURCE_COLUMNS = {"volunteers": VOLUNTEER_COLUMNS, "needs": NEED_COLUMNS,
                    "merchants": MERCHANT_COLUMNS}
CHARITY_COLUMNS = {"donations": DONATION_COLUMNS, "requests": REQUEST_COLUMNS}
COLUMNS = RESOURCE_COLUMNS | CHARITY_COLUMNS
_REQUIRED = {
    "volunteers": ("volunteer_id", "name", "lat", "lon", "availability"),
    "needs": ("need_id", "kind", "service", "beneficiary", "lat", "lon", "days", "window",
              "duration_min"),
    "merchants": ("merchant_id", "name", "lat", "lon", "services", "capacity_per_day", "open"),
    "donations": ("donation_id", "donor", "category", "quantity", "lat", "lon"),
    "requests": ("request_id", "beneficiary", "category", "quantity", "lat", "lon"),
}
_PARSERS: dict[str, Callable[..., object]] = {}  # (row, coords=, china_only=) -> item


def parse_records(kind: str, records: Sequence[dict[str, object]], source: str,
                  coords: CoordSystem = CoordSystem.WGS84,
                  china_only: bool = True) -> list[object]:
    """Validate rows of one resource kind given as dicts (JSON bodies, database rows) exactly as
    the spreadsheet importer does; ``source`` names them in errors.

    Raises
    ------
    InputError
        With every problem found; ``row`` counts like a spreadsheet (first record = row 2).
    """
    columns = COLUMNS[kind]
    frame = pd.DataFrame([{c: "" if r.get(c) is None else str(r.get(c)) for c in columns}
                          for r in records], columns=list(columns), dtype=str)
    issues: list[DataIssue] = []
    parse = _PARSERS[kind]
    items = _parse_table(Table(source, frame), f"{kind[:-1]}_id",
                         lambda row: parse(row, coords, china_only), issues)
    if issues:
        raise InputError(issues)
    return items


Spec = tuple[str, tuple[str, ...], tuple[str, ...], str, RowParser]


def _parse_all(tables: dict[str, Table], specs: list[Spec], issues: list[DataIssue],
               notes: list[str], may_be_empty: set[str]) -> dict[str, list[object]]:
    """Parse every table of ``specs`` present; raise one :class:`InputError` with all issues."""
    parsed: dict[str, list[object]] = {name: [] for name, *_ in specs}
    for name, required_cols, known, id_column, parse in specs:
        table = tables.get(name)
        if table is None:
            continue
        if _check_columns(table, required_cols, known, issues, notes,
                          allow_empty=name in may_be_empty):
            parsed[name] = _parse_table(table, id_column, parse, issues)
    if issues:
        raise InputError(issues)
    return parsed


def _require(tables: dict[str, Table], names: tuple[str, ...], source: Path) -> None:
    issues = [DataIssue(f"{name}.csv", None, None, None, f"is missing from {source}")
              for name in names if name not in tables]
    if issues:
        raise InputError(issues)


def _volunteer(row: _Row, coords: CoordSystem, china_only: bool) -> Volunteer:
    return Volunteer(
        id=row.text("volunteer_id"),
        name=row.text("name"),
        location=row.location(coords, china_only),
        skills=row.tokens("skills"),
        availability=row.availability("availability"),
        max_hours_week=row.number_("max_hours_week", 0, 80, default=4.0),
    )

def _need(row: _Row, coords: CoordSystem, china_only: bool) -> Need:
    window = row.window("window")
    duration = row.integer("duration_min", 1, 24 * 60)
    if window and row.ok and duration > window.minutes:
        row.fail("duration_min", str(duration),
                 f"is longer than the window {window} ({window.minutes} min)")
    merchant_service = row.text("merchant_service", required=False).lower() or None
    built = Need(
        id=row.text("need_id"),
        kind=row.choice("kind", NeedKind) or NeedKind.ELDERLY,
        service=row.text("service").lower(),
        beneficiary=row.text("beneficiary"),
        location=row.location(coords, china_only),
        days=row.days("days"),
        window=window or TimeWindow(0, 1),
        duration_min=duration,
        skills=row.tokens("skills"),
        volunteers_needed=row.integer("volunteers_needed", 1, 20, default=1),
        priority=row.choice("priority", Priority, Priority.BLUE) or Priority.BLUE,
        merchant_service=merchant_service,
    )
    return built

def _merchant(row: _Row, coords: CoordSystem, china_only: bool) -> Merchant:
    return Merchant(
        id=row.text("merchant_id"),
        name=row.text("name"),
        location=row.location(coords, china_only),
        services=row.tokens("services", required=True),
        capacity_per_day=row.integer("capacity_per_day", 0, 100_000),
        open=row.window("open") or TimeWindow(0, 1),
    )


def _donation(row: _Row, coords: CoordSystem, china_only: bool) -> Donation:
    return Donation(
        id=row.text("donation_id"), donor=row.text("donor"),
        category=row.token("category"), quantity=row.integer("quantity", 1, 10**7),
        location=row.location(coords, china_only), expires=row.date("expires"),
    )


def _request(row: _Row, coords: CoordSystem, china_only: bool) -> Request:
    return Request(
        id=row.text("request_id"), beneficiary=row.text("beneficiary"),
        category=row.token("category"), quantity=row.integer("quantity", 1, 10**7),
        location=row.location(coords, china_only),
        priority=row.choice("priority", Priority, Priority.BLUE) or Priority.BLUE,
    )


_PARSERS.update(volunteers=_volunteer, needs=_need, merchants=_merchant, donations=_donation,
                requests=_request)


def read_community(source: Path | str, week: Week, coords: CoordSystem = CoordSystem.WGS84,
                   china_only: bool = True,
                   extra_needs: Sequence[Path] = ()) -> ImportedCommunity:
    """Import a community's week from a CSV folder or ``.xlsx`` workbook.

    Parameters
    ----------
    source
        Folder holding ``volunteers.csv``, ``needs.csv`` and optionally ``merchants.csv``; or a
        workbook with sheets of those names.
    week
        The ISO week to plan; each need becomes one occurrence per listed day.
    coords
        The system of the ``lat``/``lon`` columns; converted to WGS84.
    china_only
        Refuse coordinates outside China (catches swapped or zeroed columns).
    extra_needs
        More ``needs.csv``-format files to add, such as ``delivery_needs.csv`` from
        ``linli allocate``; a need id may appear only once across all of them.

    Raises
    ------
    InputError
        With every problem found, each naming file, row, column and value.
    """
    source = Path(source)
    tables, notes = read_tables(source, ("volunteers", "needs", "merchants"))
    _require(tables, ("volunteers", "needs"), source)
    issues: list[DataIssue] = []
    for k, path in enumerate(extra_needs):
        if not path.is_file():
            raise InputError([DataIssue(str(path), None, None, None, "is not a file")])
        tables[f"needs+{k}"] = Table(path.name, _frame_from_csv(path, notes))
    first_seen: dict[str, tuple[str, int]] = {}

    def need(row: _Row) -> Need:
        # A file that names its coordinate system (delivery_needs.csv does) is read in it,
        # whatever --coords says: its places are never converted twice.
        system = row.choice("coords", CoordSystem, default=coords) or coords
        built = _need(row, system, china_only)
        where = first_seen.setdefault(built.id, (row.table, row.number))
        if built.id and where[0] != row.table:
            row.fail("need_id", built.id, f"is already a need ({where[0]} row {where[1]})")
        return built

    volunteer = partial(_volunteer, coords=coords, china_only=china_only)
    merchant = partial(_merchant, coords=coords, china_only=china_only)
    need_required = _REQUIRED["needs"]
    specs: list[Spec] = [
        ("volunteers", _REQUIRED["volunteers"], VOLUNTEER_COLUMNS, "volunteer_id", volunteer),
        ("needs", need_required, (*NEED_COLUMNS, "coords"), "need_id", need),
        *((f"needs+{k}", need_required, (*NEED_COLUMNS, "coords"), "need_id", need)
          for k in range(len(extra_needs))),
        ("merchants", _REQUIRED["merchants"], MERCHANT_COLUMNS, "merchant_id", merchant),
    ]
    # A community may have no partner merchants yet; it always has volunteers and needs.
    parsed = _parse_all(tables, specs, issues, notes, may_be_empty={"merchants"})
    volunteers = [v for v in parsed["volunteers"] if isinstance(v, Volunteer)]
    needs = [n for name, items in parsed.items() if name.startswith("needs")
             for n in items if isinstance(n, Need)]
    merchants = [m for m in parsed["merchants"] if isinstance(m, Merchant)]
    offered = {s for m in merchants for s in m.services}
    for n in needs:
        if n.merchant_service and n.merchant_service not in offered:
            notes.append(f"need {n.id}: no merchant offers {n.merchant_service!r}; "
                         "its occurrences cannot be covered")
    return ImportedCommunity(Problem(week, volunteers, needs, merchants), notes)


@dataclass
class ImportedCharity:
    """Validated donations and requests plus notes for the organiser."""

    problem: CharityProblem
    notes: list[str] = field(default_factory=list)


def read_charity(source: Path | str, week: Week, coords: CoordSystem = CoordSystem.WGS84,
                 china_only: bool = True) -> ImportedCharity:
    """Import ``donations.csv`` and ``requests.csv`` (a folder or an ``.xlsx`` workbook).

    Raises
    ------
    InputError
        With every problem found, each naming file, row, column and value.
    """
    source = Path(source)
    tables, notes = read_tables(source, ("donations", "requests"))
    _require(tables, ("donations", "requests"), source)

    specs: list[Spec] = [
        (name, _REQUIRED[name], CHARITY_COLUMNS[name], f"{name[:-1]}_id",
         partial(_PARSERS[name], coords=coords, china_only=china_only))
        for name in ("donations", "requests")
    ]
    # No donations this month is a real situation (every request is then reported unmet).
    parsed = _parse_all(tables, specs, [], notes, may_be_empty={"donations"})
    donations = [d for d in parsed["donations"] if isinstance(d, Donation)]
    requests = [r for r in parsed["requests"] if isinstance(r, Request)]
    expired = [d.id for d in donations if not d.usable_in(week)]
    if expired:
        notes.append(f"{len(expired)} donation(s) expired before {week.monday.isoformat()} and "
                     f"will not be allocated: {', '.join(expired[:10])}"
                     + (" ..." if len(expired) > 10 else ""))
    return ImportedCharity(CharityProblem(week, donations, requests), notes)


def charity_frames(problem: CharityProblem) -> dict[str, pd.DataFrame]:
    """Donations and requests as SCHEMA.md tables (the inverse of :func:`read_charity`)."""
    donations = pd.DataFrame(
        [{"donation_id": d.id, "donor": d.donor, "category": d.category, "quantity": d.quantity,
          "lat": round(d.location.lat, 6), "lon": round(d.location.lon, 6),
          "expires": d.expires.isoformat() if d.expires else ""} for d in problem.donations],
        columns=list(DONATION_COLUMNS),
    )
    requests = pd.DataFrame(
        [{"request_id": r.id, "beneficiary": r.beneficiary, "category": r.category,
          "quantity": r.quantity, "lat": round(r.location.lat, 6),
          "lon": round(r.location.lon, 6), "priority": r.priority.value}
         for r in problem.requests],
        columns=list(REQUEST_COLUMNS),
    )
    return {"donations": donations, "requests": requests}


def _join(items: frozenset[str] | tuple[object, ...]) -> str:
    return ";".join(sorted(str(i) for i in items))


def needs_frame(needs: list[Need]) -> pd.DataFrame:
    """Needs as the SCHEMA.md ``needs.csv`` table."""
    return pd.DataFrame(
        [{
            "need_id": n.id, "kind": n.kind.value, "service": n.service,
            "beneficiary": n.beneficiary,
            "lat": round(n.location.lat, 6), "lon": round(n.location.lon, 6),
            "days": ";".join(d.value for d in n.days), "window": str(n.window),
            "duration_min": n.duration_min, "skills": _join(n.skills),
            "volunteers_needed": n.volunteers_needed, "priority": n.priority.value,
            "merchant_service": n.merchant_service or "",
        } for n in needs],
        columns=list(NEED_COLUMNS),
    )


def problem_frames(problem: Problem) -> dict[str, pd.DataFrame]:
    """The problem as SCHEMA.md tables (the inverse of :func:`read_community` for WGS84)."""
    volunteers = pd.DataFrame(
        [{
            "volunteer_id": v.id, "name": v.name,
            "lat": round(v.location.lat, 6), "lon": round(v.location.lon, 6),
            "skills": _join(v.skills),
            "availability": ";".join(str(a) for a in v.availability),
            "max_hours_week": v.max_hours_week,
        } for v in problem.volunteers],
        columns=list(VOLUNTEER_COLUMNS),
    )
    needs = needs_frame(problem.needs)
    merchants = pd.DataFrame(
        [{
            "merchant_id": m.id, "name": m.name,
            "lat": round(m.location.lat, 6), "lon": round(m.location.lon, 6),
            "services": _join(m.services), "capacity_per_day": m.capacity_per_day,
            "open": str(m.open),
        } for m in problem.merchants],
        columns=list(MERCHANT_COLUMNS),
    )
    return {"volunteers": volunteers, "needs": needs, "merchants": merchants}


def write_community(problem: Problem, folder: Path) -> None:
    """Write the problem as a folder of SCHEMA.md CSV files (UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in problem_frames(problem).items():
        frame.to_csv(folder / f"{name}.csv", index=False)
