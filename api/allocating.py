"""The service behind allocation runs' pages: their lines and short requests a page at a time,
and the public monthly report (信息公开) of the runs published for weeks starting in a month.
Queueing, cancelling and publishing runs are :mod:`api.weekly`'s, shared with schedules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import AllocationLineRow, AllocationRow, ShortRow
from api.paging import page_rows
from api.timebank import community_month
from api.weekly import get_job
from matcher.domain import Week
from matcher.report import (
    LINE_COLUMNS,
    SHORT_COLUMNS,
    MonthReport,
    month_report,
    timebank_table,
)


def lines(session: Session, allocation_id: int, limit: int,
          offset: int) -> tuple[list[AllocationLineRow], int]:
    """One page of the run's lines (units of a donation for a request) and how many."""
    get_job(session, AllocationRow, allocation_id)
    return page_rows(session, select(AllocationLineRow).where(
        AllocationLineRow.allocation_id == allocation_id).order_by(AllocationLineRow.id),
        limit, offset)


def short(session: Session, allocation_id: int, limit: int,
          offset: int) -> tuple[list[ShortRow], int]:
    """One page of the run's requests not filled completely and how many."""
    get_job(session, AllocationRow, allocation_id)
    return page_rows(session, select(ShortRow).where(ShortRow.allocation_id == allocation_id)
                     .order_by(ShortRow.id), limit, offset)


def _month_rows(session: Session, month: str) -> tuple[list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
    """Lines and short requests of the allocations published for weeks starting in ``month``."""
    first = dt.date.fromisoformat(f"{month}-01")
    weeks: set[str] = set()
    day = first - dt.timedelta(days=first.weekday())  # the Monday on or before the 1st
    while day < first + dt.timedelta(days=31):
        if day.strftime("%Y-%m") == month:
            iso = day.isocalendar()
            weeks.add(str(Week(iso.year, iso.week)))
        day += dt.timedelta(days=7)
    runs = dict(session.execute(select(AllocationRow.id, AllocationRow.week).where(
        AllocationRow.status == "published", AllocationRow.week.in_(weeks))).all())
    found_lines = [{c: getattr(r, c, None) for c in LINE_COLUMNS}
                   | {"week": runs[r.allocation_id]}
                   for r in session.scalars(select(AllocationLineRow).where(
                       AllocationLineRow.allocation_id.in_(runs)))]
    found_short = [{c: getattr(r, c, None) for c in SHORT_COLUMNS}
                   | {"week": runs[r.allocation_id]}
                   for r in session.scalars(select(ShortRow).where(
                       ShortRow.allocation_id.in_(runs)))]
    return found_lines, found_short


def report(session: Session, month: str, community: str) -> MonthReport:
    """The public monthly report: allocations and the time bank's minutes, anonymised."""
    found_lines, found_short = _month_rows(session, month)
    result = month_report(pd.DataFrame(found_lines), pd.DataFrame(found_short), month,
                          community)
    result.timebank = timebank_table(community_month(session, month), community)
    return result
