"""Typed query and path parameters, validated once here and reused by every router, so that
anything a person can type into a URL is either a value the routes can use or a 422 naming the
parameter (never an overflow or a parse error deep inside a route)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

from matcher.domain import Week

# Ids are the tables' integer keys (32 bits on PostgreSQL); offsets are 64-bit on every
# database.
MAX_ID = 2**31 - 1
MAX_OFFSET = 2**63 - 1
# The months whose first day and the first day of the next one are calendar dates.
FIRST_YEAR, LAST_YEAR = 1, 9998
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _iso_week(text: str) -> str:
    return str(Week.parse(text))  # its ValueError says what is wrong: pydantic makes it a 422


def _year_month(text: str) -> str:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month like 2026-11")
    if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
        raise ValueError(f"{text!r} is outside the years {FIRST_YEAR:04d}-{LAST_YEAR}")
    return text


def _utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except OverflowError as exc:
        raise ValueError("is not a time in UTC (out of range)") from exc


UtcDateTime = Annotated[dt.datetime, AfterValidator(_utc)]
"""A point in time, in UTC (a time without a zone is taken as UTC)."""

IsoWeek = Annotated[str, StringConstraints(pattern=r"^\d{4}-W\d{2}$"),
                    AfterValidator(_iso_week)]
"""An ISO week such as ``2026-W48`` that exists (no week 60, no week 53 in a 52-week year)."""

YearMonth = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$"),
                      AfterValidator(_year_month)]
"""A calendar month ``YYYY-MM``."""

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a numeric id")]
"""A numeric id in a path."""

Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many items")]

Key = Annotated[str, Path(min_length=1, max_length=64, description="a record's id")]
"""A volunteer's, need's, merchant's, donation's or request's id in a path (the columns hold
64 characters)."""
