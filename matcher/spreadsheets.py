"""Read and write the coordinators' spreadsheets (the SCHEMA.md exchange format).

A community is a folder of CSV files (``volunteers.csv``, ``needs.csv``, ``merchants.csv``) or one
``.xlsx`` workbook with sheets of the same names. Every row is validated and every problem is
reported at once with file, row, column and value; nothing is returned unless all of it is valid.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import openpyxl
import pandas as pd
from scipy.spatial import cKDTree

from matcher.charity import CharityProblem, Donation, Request
from matcher.coords import CoordSystem, in_china, to_wgs84
from matcher.domain import (
    ID_MAX,
    LIST_MAX,
    NAME_MAX,
    NEED_ID_MAX,
    TOKEN_MAX,
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
    check_id,
    check_text,
)
from matcher.errors import DataIssue, InputError, Invalid
from matcher.i18n import N_

E = TypeVar("E", bound=StrEnum)

VOLUNTEER_COLUMNS = ("volunteer_id", "name", "lat", "lon", "skills", "availability",
                     "max_hours_week")
NEED_COLUMNS = ("need_id", "kind", "service", "beneficiary", "lat", "lon", "days", "window",
                "duration_min", "skills", "volunteers_needed", "priority", "merchant_service")
MERCHANT_COLUMNS = ("merchant_id", "name", "lat", "lon", "services", "capacity_per_day", "open")
DONATION_COLUMNS = ("donation_id", "donor", "category", "quantity", "lat", "lon", "expires")
REQUEST_COLUMNS = ("request_id", "beneficiary", "category", "quantity", "lat", "lon", "priority")

_TOKEN = re.compile(r"^[^\s;,]+$")

# What a Chinese coordinator's sheet says, beside the English names (both are read; the English
# name is the one the code uses). Per kind, since 编号, 名称 and 服务 mean a different column in
# each sheet.
_COMMON_ALIASES = {"纬度": "lat", "经度": "lon", "技能": "skills", "坐标系": "coords",
                   "优先级": "priority", "优先等级": "priority"}
HEADER_ALIASES: dict[str, dict[str, str]] = {
    "volunteers": {"编号": "volunteer_id", "志愿者编号": "volunteer_id", "姓名": "name",
                   "可服务时间": "availability", "空闲时间": "availability",
                   "每周最多小时": "max_hours_week", "每周最多小时数": "max_hours_week"},
    "needs": {"编号": "need_id", "需求编号": "need_id", "类别": "kind", "服务": "service",
              "服务项目": "service", "服务对象": "beneficiary", "日期": "days", "星期": "days",
              "服务日": "days", "时间段": "window", "时长(分钟)": "duration_min",
              "时长": "duration_min", "所需人数": "volunteers_needed",
              "商家服务": "merchant_service"},
    "merchants": {"编号": "merchant_id", "商家编号": "merchant_id", "名称": "name",
                  "商家名称": "name", "服务": "services", "服务项目": "services",
                  "每日容量": "capacity_per_day", "营业时间": "open"},
    "donations": {"编号": "donation_id", "捐赠编号": "donation_id", "捐赠人": "donor",
                  "物资类别": "category", "类别": "category", "数量": "quantity",
                  "有效期至": "expires", "保质期至": "expires"},
    "requests": {"编号": "request_id", "求助编号": "request_id", "服务对象": "beneficiary",
                 "物资类别": "category", "类别": "category", "数量": "quantity"},
}
# Sheet names of a workbook in Chinese.
SHEET_ALIASES = {"志愿者": "volunteers", "需求": "needs", "商家": "merchants",
                 "捐赠": "donations", "求助": "requests"}
# Cell values a Chinese sheet holds for the English codes.
_PRIORITY_WORDS = {"红": "red", "红色": "red", "黄": "yellow", "黄色": "yellow", "蓝": "blue",
                   "蓝色": "blue"}
_KIND_WORDS = {"养老": "elderly", "为老": "elderly", "托育": "childcare", "托幼": "childcare",
               "慈善": "charity", "帮扶": "charity"}
_DAY_WORDS = {f"{prefix}{number}": day
              for number, day in zip("一二三四五六日", ("mon", "tue", "wed", "thu", "fri", "sat",
                                                       "sun"), strict=True)
              for prefix in ("周", "星期", "礼拜", "")}
_DAY_WORDS |= {"周天": "sun", "星期天": "sun", "礼拜天": "sun", "天": "sun"}

# Limits on a file, checked before it is parsed: well above a district's files, and refused with
# a message beyond, since the walking table and the solver would not finish on such a file.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
# A need, merchant or volunteer farther than this (straight line) from every place of the kinds it
# works with is most likely a typo (swapped digits, a point in the sea): it gets a note.
FAR_M = 3_000.0


@dataclass
class Table:
    """One sheet of input: its display name (``needs.csv``) and rows as text.

    The frame's index is the spreadsheet row number less 2 (the header is row 1), so rows keep
    their numbers when blank rows are dropped.
    """

    name: str
    frame: pd.DataFrame

    def numbers(self) -> list[int]:
        """The spreadsheet row number of each row of the frame."""
        return [int(i) + 2 for i in self.frame.index]

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(spreadsheet row number, {column: text})``; the header is row 1."""
        for number, record in zip(self.numbers(), self.frame.to_dict("records"), strict=True):
            yield number, {str(k): str(v).strip() for k, v in record.items()}


@dataclass
class ImportedCommunity:
    """A validated problem plus notes a coordinator should see (encoding used, ignored columns)."""

    problem: Problem
    notes: list[str] = field(default_factory=list)


def _file_issue(name: str, message: str, row: int | None = None) -> InputError:
    return InputError([DataIssue(name, row, None, None, message)])


def _decode(raw: bytes, name: str, notes: list[str]) -> str:
    """Strictly, per file: UTF-8 (with or without BOM) when every line is UTF-8, else GB18030 (the
    superset of Excel's GBK exports) when every byte is; a file mixing the two is refused, naming
    the first line that is not UTF-8, since reading it either way garbles the other lines."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    first_utf8: int | None = None
    first_other: int | None = None
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            first_other = first_other or number
            continue
        # Some GBK text is valid UTF-8 by chance (GBK 小 is the bytes of UTF-8 С), but only as
        # two-byte characters: a line counts as UTF-8 when all its characters are ASCII or
        # three-byte and longer (Chinese), as Chinese in UTF-8 is.
        if all(ord(c) < 0x80 or ord(c) >= 0x800 for c in text):
            first_utf8 = first_utf8 or number
    if first_utf8 is not None and first_other is not None:
        raise _file_issue(name, f"mixes encodings: row {first_utf8} is UTF-8 but row "
                          f"{first_other} is not (a cell pasted from a GBK file?); retype that "
                          "row or save the whole file again as UTF-8 CSV", first_other)
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("gb18030")
            except UnicodeDecodeError:
                raise _file_issue(name, "is neither UTF-8 nor GBK text (this row); save "
                                  "the file as UTF-8 CSV", number) from None
        raise _file_issue(name, "is neither UTF-8 nor GBK text; save it as UTF-8 CSV") from None
    notes.append(f"{name} was read as GBK (an Excel export); save as UTF-8 CSV to avoid surprises")
    return text


def _is_blank(cells: Sequence[object]) -> bool:
    return all(c is None or not str(c).strip() for c in cells)


def _frame(name: str, header: Sequence[object], rows: list[tuple[int, list[str]]],
           issues: list[DataIssue], kind: str | None = None) -> pd.DataFrame:
    """A table of text from a header and ``(row number, cells)``: blank rows dropped, a row with
    more cells than the header refused (a ',' typed inside a cell)."""
    columns = [_header_name(h, kind) for h in header]
    while columns and not columns[-1]:
        columns.pop()  # Excel's trailing empty header cells
    width = len(columns)
    kept: list[list[str]] = []
    index: list[int] = []
    for number, cells in rows:
        if _is_blank(cells):
            continue
        if any(str(c).strip() for c in cells[width:]):
            issues.append(DataIssue(name, number, None, None,
                                    f"has {len(cells)} cells but the header names {width} "
                                    "columns; use ';' between items inside a cell, not ','"))
            continue
        kept.append((list(cells) + [""] * width)[:width])
        index.append(number - 2)
    return pd.DataFrame(kept, columns=columns, index=pd.Index(index, dtype="int64"), dtype=str)


def _header_name(value: object, kind: str | None = None) -> str:
    """A header cell as a column name: full-width characters folded, spaces trimmed, lower case;
    a Chinese name (:data:`HEADER_ALIASES`) of a ``kind`` table as its English one."""
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    name = text.replace("\ufeff", "").strip().lower()
    if kind is None:
        return name
    kind = kind.split("+")[0]
    name = re.sub(r"\s+", "", name) if not name.isascii() else name
    return HEADER_ALIASES.get(kind, {}).get(name) or _COMMON_ALIASES.get(name, name)


def _sheet_name(title: str) -> str:
    """A sheet's table: its English name, or the Chinese one of :data:`SHEET_ALIASES`."""
    name = _header_name(title)
    return SHEET_ALIASES.get(name, name)


def _check_size(path: Path, name: str) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _file_issue(name, f"is {size / 1024 / 1024:.1f} MB: at most "
                          f"{MAX_FILE_BYTES // 1024 // 1024} MB per file is read")


def _find_header(numbered: Iterator[tuple[int, Sequence[object]]], kind: str
                 ) -> tuple[Sequence[object], int]:
    """Consume rows up to the header of a table of ``kind``; return it and its row number.

    Blank rows and a title (社区志愿者名单) above the header are allowed: the header is the first
    row naming a known column, else the first non-blank row (refused later as no header).
    """
    first: tuple[Sequence[object], int] | None = None
    for number, cells in numbered:
        if _is_blank(cells):
            continue
        first = first or (cells, number)
        if {_header_name(c, kind) for c in cells} & set(COLUMNS.get(kind, ())):
            return cells, number
        if number >= _HEADER_SEARCH:
            break
    return first or ((), 1)


def _too_many(name: str) -> DataIssue:
    return DataIssue(name, None, None, None,
                     f"has more than {MAX_ROWS:,} rows: at most {MAX_ROWS:,} rows per file are "
                     "read; split the community into smaller ones")


def _frame_from_csv(path: Path, notes: list[str], kind: str) -> pd.DataFrame:
    """A CSV file of ``kind`` (``needs``) as a table of text (see :func:`read_tables`)."""
    _check_size(path, path.name)
    text = _decode(path.read_bytes(), path.name, notes)
    if not text.strip():
        raise _file_issue(path.name, N_("is empty"))
    issues: list[DataIssue] = []
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        numbered = enumerate(reader, start=1)
        header, _ = _find_header(numbered, kind)
        for number, cells in numbered:
            if _is_blank(cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise InputError([_too_many(path.name)])
            rows.append((number, cells))
    except csv.Error as exc:
        raise _file_issue(path.name, f"is not valid CSV: {exc}", reader.line_num) from exc
    frame = _frame(path.name, header, rows, issues, kind)
    if issues:
        raise InputError(issues)
    return frame


def _cell_text(value: object) -> str:
    """An .xlsx cell as the text a person sees: date cells as YYYY-MM-DD, times as HH:MM, whole
    numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_workbook(source: Path, names: tuple[str, ...], notes: list[str]) -> dict[str, Table]:
    _check_size(source, source.name)
    try:
        book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise _file_issue(source.name, f"is not a readable .xlsx workbook: {exc}") from exc
    tables: dict[str, Table] = {}
    header_rows: dict[str, int] = {}
    issues: list[DataIssue] = []
    ignored: list[str] = []
    try:
        for sheet in book.worksheets:
            key = _sheet_name(sheet.title)
            if key not in names or key in tables:
                ignored.append(sheet.title)
                continue
            display = f"{source.name}[{key}]"
            values = enumerate(sheet.iter_rows(values_only=True), start=1)
            header, header_rows[key] = _find_header(values, key)
            rows: list[tuple[int, list[str]]] = []
            for number, cells in values:
                if _is_blank(cells):
                    continue
                if len(rows) >= MAX_ROWS:
                    issues.append(_too_many(display))
                    break
                rows.append((number, [_cell_text(c) for c in cells]))
            if not _is_blank(header):
                tables[key] = Table(display, _frame(display, header, rows, issues, key))
            else:
                issues.append(DataIssue.of(display, None, None, None, N_("is empty")))
    finally:
        book.close()
    if not issues and _sheets_contain(source, rb"<(?:\w+:)?mergeCell "):
        issues.extend(_merged_cells(source, tables, header_rows))
    if not issues and _sheets_contain(source, rb"<(?:\w+:)?f[ >]"):
        issues.extend(_uncalculated_formulas(source, tables))
    if issues:
        raise InputError(issues)
    if ignored:
        notes.append(f"{source.name}: ignored sheet(s) {', '.join(ignored)} (expected "
                     f"{', '.join(names)})")
    return tables


def _sheets_contain(source: Path, tag: bytes) -> bool:
    """Whether the XML of any sheet of the workbook matches ``tag`` (a cheap scan, so the slower
    checks below run only on workbooks that need them)."""
    try:
        with zipfile.ZipFile(source) as book:
            return any(re.search(tag, book.read(name))
                       for name in book.namelist() if name.startswith("xl/worksheets/"))
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def _merged_cells(source: Path, tables: dict[str, Table],
                  header_rows: dict[str, int]) -> list[DataIssue]:
    """Merged cells inside a table: only the first row of a merge holds the value, so the
    others would read as empty (or a merge across columns would shift nothing but hide one)."""
    issues: list[DataIssue] = []
    book = openpyxl.load_workbook(source, read_only=False, data_only=True)
    try:
        for sheet in book.worksheets:
            key = _sheet_name(sheet.title)
            table = tables.get(key)
            if table is None:
                continue
            columns = list(table.frame.columns)
            for merged in sorted(sheet.merged_cells.ranges, key=lambda r: (r.min_row, r.min_col)):
                if merged.max_row <= header_rows.get(key, 1):
                    continue  # a title above the header
                position = merged.min_col - 1
                column = columns[position] if position < len(columns) else None
                issues.append(DataIssue(table.name, merged.min_row, column, None,
                                        f"cells {merged.coord} are merged: unmerge them and type "
                                        "the value in every row"))
    finally:
        book.close()
    return issues


def _uncalculated_formulas(source: Path, tables: dict[str, Table]) -> list[DataIssue]:
    """Formula cells without a value: a workbook written by a program other than Excel stores
    the formula only, and the cell would silently read as empty."""
    issues: list[DataIssue] = []
    book = openpyxl.load_workbook(source, read_only=True, data_only=False)
    try:
        for sheet in book.worksheets:
            table = tables.get(_sheet_name(sheet.title))
            if table is None or not table.frame.columns.is_unique:
                continue
            columns = list(table.frame.columns)
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number - 2 not in table.frame.index:
                    continue
                for position, value in enumerate(cells[:len(columns)]):
                    column = columns[position]
                    if (isinstance(value, str) and value.startswith("=")
                            and not table.frame.at[number - 2, column]):
                        issues.append(DataIssue(
                            table.name, number, column, value,
                            "is a formula that was never calculated (the workbook was not "
                            "saved by Excel): open and save it in Excel, or type the value"))
    finally:
        book.close()
    return issues


def read_tables(source: Path, names: tuple[str, ...]) -> tuple[dict[str, Table], list[str]]:
    """Read the named sheets from a CSV folder or an ``.xlsx`` workbook.

    Returns the tables found (a missing optional one is simply absent) and notes. Blank rows are
    dropped (rows keep their spreadsheet numbers); header names are trimmed and lower-cased.

    Raises
    ------
    InputError
        When the source does not exist, a file is too large, empty, undecodable or has a row
        wider than its header.
    """
    notes: list[str] = []
    tables: dict[str, Table] = {}
    if source.is_dir():
        for name in names:
            path = source / f"{name}.csv"
            if path.exists():
                tables[name] = Table(path.name, _frame_from_csv(path, notes, name))
    elif source.suffix.lower() in {".xlsx", ".xlsm"} and source.exists():
        tables = _read_workbook(source, names, notes)
    else:
        raise _file_issue(str(source), "is neither a folder of CSV files nor an .xlsx workbook")
    return tables, notes


class _Row:
    """Typed access to one row's cells, recording a :class:`DataIssue` for each bad cell."""

    def __init__(self, table: str, number: int, cells: dict[str, str], issues: list[DataIssue]):
        self.table, self.number, self.cells, self.issues = table, number, cells, issues
        self.ok = True

    def fail(self, column: str | None, value: str | None, message: str, /,
             **args: object) -> None:
        """Record a bad cell; ``message`` is marked with ``N_`` and formatted with ``args``
        (a domain error's text is passed as it is, and translated where the catalog has it)."""
        self.ok = False
        self.issues.append(DataIssue.of(self.table, self.number, column, value, message, **args))

    def invalid(self, column: str | None, value: str | None, exc: ValueError) -> None:
        """Record a value a domain type refused, in its words."""
        if isinstance(exc, Invalid):
            self.fail(column, value, exc.template, **exc.params)
        else:
            self.fail(column, value, str(exc))

    def text(self, column: str, required: bool = True, max_len: int = NAME_MAX,
             what: str = "this cell") -> str:
        value = self.cells.get(column, "")
        if required and not value:
            self.fail(column, None, N_("is required but empty"))
        try:
            check_text(value, max_len, what)
        except ValueError as exc:
            self.invalid(column, _shown(value), exc)
            return ""
        return value

    def ident(self, column: str, max_len: int = ID_MAX) -> str:
        """An id (the rule is :func:`matcher.domain.check_id`)."""
        value = self.cells.get(column, "")
        if not value:
            self.fail(column, None, N_("is required but empty"))
            return ""
        try:
            return check_id(value, max_len)
        except ValueError as exc:
            self.invalid(column, _shown(value), exc)
            return ""

    def number_(self, column: str, lo: float, hi: float, default: float | None = None) -> float:
        value = self.text(column, required=default is None)
        if not value:
            return default if default is not None else 0.0
        try:
            number = float(value)
        except ValueError:
            self.fail(column, value, N_("is not a number"))
            return 0.0
        if not lo <= number <= hi:
            self.fail(column, value, N_("is outside {lo:g}..{hi:g}"), lo=lo, hi=hi)
        return number

    def integer(self, column: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.text(column, required=default is None)
        if not value:
            return default if default is not None else 0
        try:
            number = float(value)
        except ValueError:
            self.fail(column, value, N_("is not a whole number"))
            return 0
        if number != int(number):
            self.fail(column, value, N_("is not a whole number"))
        elif not lo <= number <= hi:
            self.fail(column, value, N_("is outside {lo}..{hi}"), lo=lo, hi=hi)
        return int(number)

    def tokens(self, column: str, required: bool = False) -> frozenset[str]:
        value = self.text(column, required=required, max_len=LIST_MAX)
        out: set[str] = set()
        for token in (t.strip().lower() for t in _split(value)):
            if not token:
                continue
            if not _TOKEN.match(token):
                self.fail(column, token,
                          N_("is not a token (use lower_snake_case, ';' between)"))
            elif len(token) > TOKEN_MAX:
                self.fail(column, _shown(token), N_("is longer than {n} characters"), n=TOKEN_MAX)
            out.add(token)
        if required and value and not out:
            self.fail(column, value, N_("lists nothing"))
        return frozenset(out)

    def choice(self, column: str, enum: type[E], default: E | None = None) -> E | None:
        value = self.text(column, required=default is None).lower()
        if not value:
            return default
        try:
            return enum(_CHOICE_WORDS.get(unicodedata.normalize("NFKC", value), value))
        except ValueError:
            allowed = " / ".join(e.value for e in enum)
            self.fail(column, value, N_("is not one of {allowed}"), allowed=allowed)
            return default

    def date(self, column: str) -> dt.date | None:
        value = self.text(column, required=False)
        if not value:
            return None
        m = _DATE.match(unicodedata.normalize("NFKC", value))
        try:
            if not m:
                raise ValueError(value)
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            self.fail(column, value, N_("is not a date YYYY-MM-DD (type e.g. 2026-11-20)"))
            return None

    def token(self, column: str, required: bool = True) -> str:
        value = self.text(column, required=required, max_len=TOKEN_MAX, what="a code").lower()
        if value and not _TOKEN.match(value):
            self.fail(column, value, N_("is not a token (use lower_snake_case)"))
        return value

    def window(self, column: str) -> TimeWindow | None:
        value = self.text(column)
        if not value:
            return None
        try:
            return TimeWindow.parse(value)
        except ValueError as exc:
            self.invalid(column, value, exc)
            return None

    def days(self, column: str) -> tuple[Day, ...]:
        value = self.text(column, max_len=LIST_MAX)
        days: list[Day] = []
        for token in (unicodedata.normalize("NFKC", t).strip().lower() for t in _split(value)):
            if not token:
                continue
            try:
                day = Day(token[:3] if token in _LONG_DAYS else _DAY_WORDS.get(token, token))
            except ValueError:
                self.fail(column, token, N_("is not a day (mon tue wed thu fri sat sun)"))
                continue
            if day in days:
                self.fail(column, token, N_("is listed twice"))
            days.append(day)
        if value and not days:
            self.fail(column, value, N_("lists no day"))
        return tuple(days)

    def availability(self, column: str) -> tuple[Availability, ...]:
        value = self.text(column, max_len=LIST_MAX)
        out: list[Availability] = []
        for token in (t.strip() for t in _split(value)):
            if not token:
                continue
            parts = unicodedata.normalize("NFKC", token).split(maxsplit=1)
            glued = _GLUED_DAY.match(parts[0]) if len(parts) == 1 else None
            if glued:  # 周一09:00-12:00, typed without a space
                parts = [glued.group(1), glued.group(2)]
            if len(parts) != 2:
                self.fail(column, token, N_("is not 'day HH:MM-HH:MM'"))
                continue
            try:
                day = Day(_DAY_WORDS.get(parts[0].lower(), parts[0].lower()))
            except ValueError:
                self.fail(column, token,
                          N_("does not start with a day (mon tue wed thu fri sat sun)"))
                continue
            try:
                out.append(Availability(day, TimeWindow.parse(parts[1])))
            except ValueError as exc:
                words = {w.lower().strip(",") for w in parts[1].split()}
                if words & {d.value for d in Day}:
                    self.fail(column, token, N_("holds several windows: put ';' between them "
                                                 "(mon 08:00-12:00;wed 14:00-18:00)"))
                else:
                    self.invalid(column, token, exc)
        if value and not out and self.ok:
            self.fail(column, value, N_("lists no window"))
        return merge_availability(out)

    def location(self, coords: CoordSystem, china_only: bool) -> Location:
        lat = self.number_("lat", -180, 180)  # checked below, so swapped columns are named
        lon = self.number_("lon", -180, 180)
        if not self.ok:
            return Location(0.0, 0.0)
        if china_only and not in_china(lat, lon):
            self.fail("lat, lon", f"{lat}, {lon}",
                      N_("is outside China (lat and lon look swapped)") if in_china(lon, lat)
                      else N_("is outside China"))
            return Location(0.0, 0.0)
        if abs(lat) > 90:
            self.fail("lat", str(lat), N_("is outside -90..90"))
            return Location(0.0, 0.0)
        wlat, wlon = to_wgs84(lat, lon, coords)
        return Location(wlat, wlon)


def _shown(value: str) -> str:
    """A cell's value as quoted in a message: a very long one cut short."""
    return value if len(value) <= 60 else f"{value[:40]}... ({len(value)} characters)"


def _split(value: str) -> list[str]:
    """Items of a list cell: ``;`` between them; the full-width ``；`` and ``、`` of a Chinese
    keyboard count too."""
    return re.split(r"[;；、]", value)


_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                   r"(?:[ T]00:00(?::00)?)?\s*$")
_GLUED_DAY = re.compile(r"^((?:周|星期|礼拜)[一二三四五六日天])(\d.*)$")
_CHOICE_WORDS = _PRIORITY_WORDS | _KIND_WORDS
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
    columns = [_header_name(c) for c in table.frame.columns]
    table.frame.columns = pd.Index(columns)
    missing = [c for c in required if c not in columns]
    if missing and not set(columns) & set(known):
        split = {sep for sep in (";", "\t", "|") for c in columns
                 if set(re.split(r"\s*" + re.escape(sep) + r"\s*", c)) & set(known)}
        if split:
            issues.append(DataIssue(table.name, 1, None, None,
                                    f"separates its columns with {sorted(split)[0]!r}: save it "
                                    "as CSV with ',' between columns (CSV UTF-8 in Excel)"))
        else:
            issues.append(DataIssue(table.name, 1, None, None,
                                    "is not a header: the first row must name the columns "
                                    f"({', '.join(known)})"))
        return False
    for column in missing:
        issues.append(DataIssue.of(table.name, 1, column, None,
                                  N_("column is missing from the header")))
    extra = [c for c in columns if c not in known]
    if extra:
        notes.append(f"{table.name}: ignored unknown column(s) {', '.join(extra)}")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    for column in twice:
        issues.append(DataIssue.of(table.name, 1, column, None,
                                  N_("column appears twice in the header")))
    if twice:
        return False
    if not missing and table.frame.empty and not allow_empty:
        issues.append(DataIssue.of(table.name, None, None, None, N_("has a header but no rows")))
    return not missing


RowParser = Callable[[_Row], object]


def _parse_table(table: Table, id_column: str, parse: RowParser,
                 issues: list[DataIssue], where: dict[str, int] | None = None) -> list[object]:
    """Parse every row; ``where`` (when given) receives each valid item's row number by id."""
    items: list[object] = []
    first_row: dict[str, int] = {}
    max_len = NEED_ID_MAX if id_column == "need_id" else ID_MAX
    for number, cells in table.rows():
        row = _Row(table.name, number, cells, issues)
        ident = row.ident(id_column, max_len)
        if ident in first_row:
            row.fail(id_column, ident, N_("is a duplicate id (first on row {row})"),
                     row=first_row[ident])
        elif ident:
            first_row[ident] = number
        try:
            item = parse(row)
        except ValueError as exc:  # a domain invariant the cell checks above did not catch
            if row.ok:
                row.fail(None, None, str(exc))
            continue
        if row.ok:
            items.append(item)
            if where is not None:
                where[ident] = number
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
                  china_only: bool = True, numbers: Sequence[int] | None = None) -> list[object]:
    """Validate rows of one resource kind given as dicts (JSON bodies, database rows) exactly as
    the spreadsheet importer does; ``source`` names them in errors, ``numbers`` gives their row
    numbers (default: the first record is row 2).

    Raises
    ------
    InputError
        With every problem found; ``row`` counts like a spreadsheet (first record = row 2).
    """
    columns = COLUMNS[kind]
    index = pd.Index([n - 2 for n in numbers] if numbers is not None else range(len(records)),
                     dtype="int64")
    frame = pd.DataFrame([{c: "" if r.get(c) is None else str(r.get(c)) for c in columns}
                          for r in records], columns=list(columns), dtype=str, index=index)
    issues: list[DataIssue] = []
    parse = _PARSERS[kind]
    items = _parse_table(Table(source, frame), f"{kind[:-1]}_id",
                         lambda row: parse(row, coords, china_only), issues)
    if issues:
        raise InputError(issues)
    return items


def check_header(table: Table, kind: str, issues: list[DataIssue], notes: list[str]) -> bool:
    """Check a table's header for ``kind`` as the importers do (missing, doubled or unknown
    columns, no header at all); header names are normalised in place. False when its rows cannot
    be read."""
    return _check_columns(table, _REQUIRED[kind], COLUMNS[kind], issues, notes,
                          allow_empty=kind in _MAY_BE_EMPTY)


_MAY_BE_EMPTY = {"merchants", "donations"}
_HEADER_SEARCH = 10  # rows of a sheet searched for its header
Spec = tuple[str, tuple[str, ...], tuple[str, ...], str, RowParser]


def _parse_all(tables: dict[str, Table], specs: list[Spec], issues: list[DataIssue],
               notes: list[str], may_be_empty: set[str],
               rows: dict[str, dict[str, int]] | None = None) -> dict[str, list[object]]:
    """Parse every table of ``specs`` present; raise one :class:`InputError` with all issues.
    ``rows`` (when given) receives, per table, each item's row number by id."""
    parsed: dict[str, list[object]] = {name: [] for name, *_ in specs}
    for name, required_cols, known, id_column, parse in specs:
        table = tables.get(name)
        if table is None:
            continue
        if _check_columns(table, required_cols, known, issues, notes,
                          allow_empty=name in may_be_empty):
            parsed[name] = _parse_table(table, id_column, parse, issues,
                                        None if rows is None else rows.setdefault(name, {}))
    if issues:
        raise InputError(issues)
    return parsed


def _require(tables: dict[str, Table], names: tuple[str, ...], source: Path) -> None:
    issues = [DataIssue.of(f"{name}.csv", None, None, None, N_("is missing from {source}"),
                           source=source)
              for name in names if name not in tables]
    if issues:
        raise InputError(issues)


def _volunteer(row: _Row, coords: CoordSystem, china_only: bool) -> Volunteer:
    return Volunteer(
        id=row.cells.get("volunteer_id", ""),
        name=row.text("name", what="a name"),
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
                 N_("is longer than the window {window} ({minutes} min)"), window=window,
                 minutes=window.minutes)
    merchant_service = row.token("merchant_service", required=False) or None
    built = Need(
        id=row.cells.get("need_id", ""),
        kind=row.choice("kind", NeedKind) or NeedKind.ELDERLY,
        service=row.text("service", max_len=TOKEN_MAX).lower(),
        beneficiary=row.text("beneficiary", what="a name"),
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
        id=row.cells.get("merchant_id", ""),
        name=row.text("name", what="a name"),
        location=row.location(coords, china_only),
        services=row.tokens("services", required=True),
        capacity_per_day=row.integer("capacity_per_day", 0, 100_000),
        open=row.window("open") or TimeWindow(0, 1),
    )


def _donation(row: _Row, coords: CoordSystem, china_only: bool) -> Donation:
    return Donation(
        id=row.cells.get("donation_id", ""), donor=row.text("donor", what="a name"),
        category=row.token("category"), quantity=row.integer("quantity", 1, 10**7),
        location=row.location(coords, china_only), expires=row.date("expires"),
    )


def _request(row: _Row, coords: CoordSystem, china_only: bool) -> Request:
    return Request(
        id=row.cells.get("request_id", ""), beneficiary=row.text("beneficiary", what="a name"),
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
        tables[f"needs+{k}"] = Table(path.name, _frame_from_csv(path, notes, "needs"))
    first_seen: dict[str, tuple[str, int]] = {}

    def need(row: _Row) -> Need:
        # A file that names its coordinate system (delivery_needs.csv does) is read in it,
        # whatever --coords says: its places are never converted twice.
        system = row.choice("coords", CoordSystem, default=coords) or coords
        built = _need(row, system, china_only)
        where = first_seen.setdefault(built.id, (row.table, row.number))
        if built.id and where[0] != row.table:
            row.fail("need_id", built.id, N_("is already a need ({file} row {row})"),
                     file=where[0], row=where[1])
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
    rows: dict[str, dict[str, int]] = {}
    parsed = _parse_all(tables, specs, issues, notes, may_be_empty=_MAY_BE_EMPTY, rows=rows)
    where = {(name.split("+")[0][:-1], ident): f"{tables[name].name} row {number}"
             for name, numbers in rows.items() for ident, number in numbers.items()}
    volunteers = [v for v in parsed["volunteers"] if isinstance(v, Volunteer)]
    needs = [n for name, items in parsed.items() if name.startswith("needs")
             for n in items if isinstance(n, Need)]
    merchants = [m for m in parsed["merchants"] if isinstance(m, Merchant)]
    notes.extend(community_notes(volunteers, needs, merchants, where))
    return ImportedCommunity(Problem(week, volunteers, needs, merchants), notes)


_EARTH_M = 6_371_008.8  # mean radius: a note's distance needs no ellipsoid


def _unit_xyz(places: Sequence[Location]) -> np.ndarray:
    """Points on the unit sphere: chord lengths there order pairs like great-circle distances."""
    lat = np.radians([p.lat for p in places])
    lon = np.radians([p.lon for p in places])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _spelling(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def community_notes(volunteers: list[Volunteer], needs: list[Need], merchants: list[Merchant],
                    where: dict[tuple[str, str], str],
                    only: set[tuple[str, str]] | None = None) -> list[str]:
    """Notes a coordinator should see about a valid community: needs asking for a skill or a
    merchant service nobody offers (with the nearest spelling), and places far from everything
    they work with. ``where`` names the row of each ``(kind, id)`` (``("need", "N1")`` ->
    ``needs.csv row 2``); ``only`` limits the notes to those items (an import's rows)."""
    notes = _unknown_names(volunteers, needs, merchants, where, only)
    return notes + _far_places(volunteers, needs, merchants, where, only)


def _label(where: dict[tuple[str, str], str], kind: str, ident: str) -> str:
    return where.get((kind, ident), f"{kind}s")


def _unknown_names(volunteers: list[Volunteer], needs: list[Need], merchants: list[Merchant],
                   where: dict[tuple[str, str], str],
                   only: set[tuple[str, str]] | None) -> list[str]:
    """Notes for needs asking for a skill no volunteer has, or a service no merchant offers: most
    often a typo, and their occurrences can never be covered."""
    notes: list[str] = []
    offered = {s for m in merchants for s in m.services}
    skills = {s for v in volunteers for s in v.skills}
    for n in needs:
        if only is not None and ("need", n.id) not in only:
            continue
        row = _label(where, "need", n.id)
        if n.merchant_service and n.merchant_service not in offered:
            notes.append(f"{row}: no merchant offers {n.merchant_service!r}"
                         f"{_spelling(n.merchant_service, offered)}, which need {n.id} asks "
                         "for; its occurrences cannot be covered")
        for skill in sorted(n.skills - skills):
            notes.append(f"{row}: no volunteer has the skill {skill!r}"
                         f"{_spelling(skill, skills)}, which need {n.id} asks for; its "
                         "occurrences cannot be covered")
    return notes


def _far_places(volunteers: list[Volunteer], needs: list[Need], merchants: list[Merchant],
                where: dict[tuple[str, str], str],
                only: set[tuple[str, str]] | None) -> list[str]:
    """Notes for a need or merchant farther than ``FAR_M`` from every volunteer, and a volunteer
    that far from every need: most likely a wrong coordinate (a point in the sea, swapped
    digits), which would otherwise show up only as an unmet reason blaming the volunteers.

    A KD-tree on the unit sphere finds each place's nearest partner; never a table of all
    pairs.
    """
    notes: list[str] = []
    groups: list[tuple[str, list[tuple[str, Location]], str, list[tuple[str, Location]]]] = [
        ("need", [(n.id, n.location) for n in needs], "volunteer",
         [(v.id, v.location) for v in volunteers]),
        ("merchant", [(m.id, m.location) for m in merchants], "volunteer",
         [(v.id, v.location) for v in volunteers]),
        ("volunteer", [(v.id, v.location) for v in volunteers], "need",
         [(n.id, n.location) for n in needs]),
    ]
    for kind, places, other_kind, others in groups:
        if not places or not others:
            continue
        tree = cKDTree(_unit_xyz([p for _, p in others]))
        chord, nearest = tree.query(_unit_xyz([p for _, p in places]))
        nearest = np.asarray(nearest, dtype=np.int64)
        metres = 2 * _EARTH_M * np.arcsin(np.minimum(np.asarray(chord) / 2, 1.0))
        for k in np.flatnonzero(metres > FAR_M):
            ident = places[k][0]
            if only is not None and (kind, ident) not in only:
                continue
            notes.append(f"{_label(where, kind, ident)}: {kind} {ident} is "
                         f"{metres[k] / 1000:.1f} km from the nearest {other_kind} "
                         f"({others[nearest[k]][0]}); check its lat/lon")
    return notes


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
    parsed = _parse_all(tables, specs, [], notes, may_be_empty=_MAY_BE_EMPTY)
    donations = [d for d in parsed["donations"] if isinstance(d, Donation)]
    requests = [r for r in parsed["requests"] if isinstance(r, Request)]
    expired = [d.id for d in donations if not d.usable_in(week)]
    if expired:
        notes.append(f"{len(expired)} donation(s) expired before {week.monday.isoformat()} and "
                     f"will not be allocated: {', '.join(expired[:10])}"
                     + (" ..." if len(expired) > 10 else ""))
    problem = CharityProblem(week, donations, requests)
    try:
        problem.check_size()
    except ValueError as exc:
        raise _file_issue(str(source), str(exc)) from exc
    return ImportedCharity(problem, notes)


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
