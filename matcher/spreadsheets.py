"""Read and write the coordinators' spreadsheets (the SCHEMA.md exchange format).

A community is a folder of CSV files (``volunteers.csv``, ``needs.csv``, ``merchants.csv``) or one
``.xlsx`` workbook with sheets of the same names. Every row is validated and every problem is
reported at once with file, row, column and value; nothing is returned unless all of it is valid.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import pandas as pd

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


def read_community(source: Path | str, week: Week, coords: CoordSystem = CoordSystem.WGS84,
                   china_only: bool = True) -> ImportedCommunity:
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

    Raises
    ------
    InputError
        With every problem found, each naming file, row, column and value.
    """
    source = Path(source)
    tables, notes = read_tables(source, ("volunteers", "needs", "merchants"))
    issues: list[DataIssue] = []
    for required in ("volunteers", "needs"):
        if required not in tables:
            issues.append(DataIssue(f"{required}.csv", None, None, None,
                                    f"is missing from {source}"))
    if issues:
        raise InputError(issues)

    def volunteer(row: _Row) -> Volunteer:
        return Volunteer(
            id=row.text("volunteer_id"),
            name=row.text("name"),
            location=row.location(coords, china_only),
            skills=row.tokens("skills"),
            availability=row.availability("availability"),
            max_hours_week=row.number_("max_hours_week", 0, 80, default=4.0),
        )

    def need(row: _Row) -> Need | None:
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

    def merchant(row: _Row) -> Merchant | None:
        return Merchant(
            id=row.text("merchant_id"),
            name=row.text("name"),
            location=row.location(coords, china_only),
            services=row.tokens("services", required=True),
            capacity_per_day=row.integer("capacity_per_day", 0, 100_000),
            open=row.window("open") or TimeWindow(0, 1),
        )

    specs: list[tuple[str, tuple[str, ...], tuple[str, ...], str, RowParser]] = [
        ("volunteers", ("volunteer_id", "name", "lat", "lon", "availability"),
         VOLUNTEER_COLUMNS, "volunteer_id", volunteer),
        ("needs", ("need_id", "kind", "service", "beneficiary", "lat", "lon", "days", "window",
                   "duration_min"), NEED_COLUMNS, "need_id", need),
        ("merchants", ("merchant_id", "name", "lat", "lon", "services", "capacity_per_day",
                       "open"), MERCHANT_COLUMNS, "merchant_id", merchant),
    ]
    parsed: dict[str, list[object]] = {"volunteers": [], "needs": [], "merchants": []}
    for name, required_cols, known, id_column, parse in specs:
        table = tables.get(name)
        if table is None:
            continue
        # A community may have no partner merchants yet; it always has volunteers and needs.
        if _check_columns(table, required_cols, known, issues, notes,
                          allow_empty=name == "merchants"):
            parsed[name] = _parse_table(table, id_column, parse, issues)
    if issues:
        raise InputError(issues)
    volunteers = [v for v in parsed["volunteers"] if isinstance(v, Volunteer)]
    needs = [n for n in parsed["needs"] if isinstance(n, Need)]
    merchants = [m for m in parsed["merchants"] if isinstance(m, Merchant)]
    offered = {s for m in merchants for s in m.services}
    for n in needs:
        if n.merchant_service and n.merchant_service not in offered:
            notes.append(f"need {n.id}: no merchant offers {n.merchant_service!r}; "
                         "its occurrences cannot be covered")
    return ImportedCommunity(Problem(week, volunteers, needs, merchants), notes)


def _join(items: frozenset[str] | tuple[object, ...]) -> str:
    return ";".join(sorted(str(i) for i in items))


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
    needs = pd.DataFrame(
        [{
            "need_id": n.id, "kind": n.kind.value, "service": n.service,
            "beneficiary": n.beneficiary,
            "lat": round(n.location.lat, 6), "lon": round(n.location.lon, 6),
            "days": ";".join(d.value for d in n.days), "window": str(n.window),
            "duration_min": n.duration_min, "skills": _join(n.skills),
            "volunteers_needed": n.volunteers_needed, "priority": n.priority.value,
            "merchant_service": n.merchant_service or "",
        } for n in problem.needs],
        columns=list(NEED_COLUMNS),
    )
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
